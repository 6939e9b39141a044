"""Inside the tickets: which layers keep how much, and whether two tickets keep the same weights.

For a set of labelled masks: the fraction each layer keeps (a figure, layers on x, one line per
ticket) and, for every pair, the intersection over union of their masks per layer and in total,
next to what two random masks with the same per-layer counts would share by chance
(:mod:`oneticket.sparsity.overlap`). ``oneticket compare`` prints it for ticket files; the report
draws it for the tickets each experiment compares.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from oneticket.report.figures import SOURCE_COLORS, save_figure  # noqa: E402
from oneticket.sparsity import Mask  # noqa: E402
from oneticket.sparsity.overlap import Overlap, mask_overlap  # noqa: E402


@dataclass(frozen=True)
class LabelledMask:
    label: str
    mask: Mask


@dataclass(frozen=True)
class PairOverlap:
    a: str
    b: str
    layers: list[Overlap]  # per layer, then the total

    @property
    def total(self) -> Overlap:
        return self.layers[-1]


def short_layer(name: str) -> str:
    """``features.12.weight`` -> ``features.12``."""
    return name.removesuffix(".weight")


def kept_fractions(mask: Mask) -> list[float]:
    return [layer.alive / layer.total if layer.total else 0.0 for layer in mask.layers()]


def pair_overlaps(masks: list[LabelledMask]) -> list[PairOverlap]:
    return [PairOverlap(x.label, y.label, mask_overlap(x.mask, y.mask)) for x, y in combinations(masks, 2)]


def draw_layer_profile(title: str, masks: list[LabelledMask], out_stem: Path) -> dict[str, Path]:
    """Fraction of weights kept per layer (log y), one line per ticket; PNG, SVG and the numbers as JSON."""
    names = list(masks[0].mask)
    fig, ax = plt.subplots(figsize=(max(6.0, 0.38 * len(names) + 2), 3.8))
    record: dict[str, object] = {"title": title, "layers": [short_layer(n) for n in names], "tickets": []}
    for i, item in enumerate(masks):
        fractions = kept_fractions(item.mask)
        ax.plot(range(len(names)), [100 * f for f in fractions], marker="o", markersize=3, linewidth=1.2,
                color=SOURCE_COLORS[i % len(SOURCE_COLORS)], label=f"{item.label} ({100 * (1 - item.mask.fraction_pruned()):.1f}% kept)")
        record["tickets"].append({"label": item.label, "kept_fraction": fractions})  # type: ignore[union-attr]
    ax.set_xticks(range(len(names)), [short_layer(n) for n in names], rotation=60, ha="right", fontsize=6)
    ax.set_yscale("log")
    ax.set_ylabel("weights kept (%)")
    ax.set_title(title, fontsize=9)
    ax.grid(True, alpha=0.3, which="both")
    ax.legend(fontsize=6, framealpha=0.85)
    fig.tight_layout()
    return save_figure(fig, record, out_stem, dpi=120)


def overlap_table(pairs: list[PairOverlap]) -> tuple[list[str], list[list[str]]]:
    """One row per pair: total IoU, the chance IoU, and their ratio."""
    header = ["ticket", "ticket", "IoU", "chance IoU", "IoU / chance"]
    rows = [[p.a, p.b, f"{p.total.iou:.3f}", f"{p.total.chance_iou:.3f}",
             f"{p.total.iou / p.total.chance_iou:.2f}" if p.total.chance_iou else "-"] for p in pairs]
    return header, rows


def layer_table(masks: list[LabelledMask], pairs: list[PairOverlap]) -> tuple[list[str], list[list[str]]]:
    """Per layer: its size, each ticket's kept %, and each pair's IoU (chance in brackets)."""
    header = ["layer", "weights"] + [f"{m.label}: kept %" for m in masks] + [f"IoU {p.a} / {p.b} (chance)" for p in pairs]
    layers = masks[0].mask.layers()
    rows = []
    for i, layer in enumerate(layers):
        kept = [f"{100 * kept_fractions(m.mask)[i]:.2f}" for m in masks]
        overlaps = [f"{p.layers[i].iou:.3f} ({p.layers[i].chance_iou:.3f})" for p in pairs]
        rows.append([short_layer(layer.name), str(layer.total)] + kept + overlaps)
    total = [f"{100 * (1 - m.mask.fraction_pruned()):.2f}" for m in masks]
    rows.append(["total", str(masks[0].mask.total())] + total + [f"{p.total.iou:.3f} ({p.total.chance_iou:.3f})" for p in pairs])
    return header, rows
