"""How much two masks keep the same weights: intersection over union, per layer and in total,
next to what two random masks with the same per-layer counts would share by chance.

For a layer of ``n`` weights whose masks keep ``a`` and ``b``, two uniformly random masks with
those counts share ``a * b / n`` weights on average; the chance overlap is that over the expected
union ``a + b - a * b / n`` (per layer, and summed over layers for the total).
"""

from __future__ import annotations

from dataclasses import dataclass

from oneticket.sparsity.mask import Mask


@dataclass(frozen=True)
class Overlap:
    name: str  # a layer's weight name, or "total"
    kept_a: int
    kept_b: int
    shared: int
    union: int
    chance_shared: float  # expected shared count of two random masks with these counts
    size: int

    @property
    def iou(self) -> float:
        return self.shared / self.union if self.union else 1.0

    @property
    def chance_iou(self) -> float:
        union = self.kept_a + self.kept_b - self.chance_shared
        return self.chance_shared / union if union else 1.0


def mask_overlap(a: Mask, b: Mask) -> list[Overlap]:
    """Per layer (in ``a``'s order) and a last ``total`` row; both masks must cover the same weights."""
    if list(a) != list(b) or any(a[k].shape != b[k].shape for k in a):
        raise ValueError("the masks cover different weights (tickets of different models or widths?)")
    rows = []
    for name in a:
        x, y = a[name].cpu(), b[name].cpu()
        kept_a, kept_b, n = int(x.sum()), int(y.sum()), x.numel()
        rows.append(Overlap(name, kept_a, kept_b, int((x & y).sum()), int((x | y).sum()), kept_a * kept_b / n, n))
    rows.append(Overlap("total", sum(r.kept_a for r in rows), sum(r.kept_b for r in rows), sum(r.shared for r in rows),
                        sum(r.union for r in rows), sum(r.chance_shared for r in rows), sum(r.size for r in rows)))
    return rows
