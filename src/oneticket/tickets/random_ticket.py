"""Random tickets: the paper's baseline and its two half-random ablations.

The random ticket compared with a winning ticket keeps only the *number* of surviving weights: its
mask is a seeded permutation of the ticket's mask over the prunable weights (global by default, so
per-layer counts change; layerwise as an option), and every weight is freshly initialized from a
seed that differs from the ticket's. The output layer is never shuffled into the other layers: when
it is prunable it is permuted on its own.
"""

from __future__ import annotations

from oneticket.sparsity import Mask, permute_mask


def random_mask(mask: Mask, seed: int, output_name: str | None, layerwise: bool = False) -> Mask:
    """A seeded random mask with ``mask``'s count of surviving weights.

    ``output_name`` is the output layer's weight name (``"classifier.weight"``); if ``mask``
    covers it, that entry is permuted separately, so the classifier's count stays its own.
    """
    body = Mask({k: v for k, v in mask.items() if k != output_name})
    shuffled = dict(permute_mask(body, seed, layerwise).items())
    if output_name is not None and output_name in mask:
        head = permute_mask(Mask({output_name: mask[output_name]}), seed + 1, layerwise=True)
        shuffled[output_name] = head[output_name]
    return Mask({k: shuffled[k] for k in mask})
