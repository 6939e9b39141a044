"""Magnitude pruning: remove the smallest-magnitude surviving weights, globally or per layer."""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch

from oneticket.sparsity.mask import Mask


def _keep_largest(scores: torch.Tensor, keep: int) -> torch.Tensor:
    """Boolean vector, True at the ``keep`` largest scores (ties broken by position, deterministic)."""
    order = torch.sort(scores, descending=True, stable=True).indices
    kept = torch.zeros_like(scores, dtype=torch.bool)
    kept[order[:keep]] = True
    return kept


def _count_to_prune(alive: int, rate: float) -> int:
    return int(round(alive * rate))


def kept_count(total: int, sparsity: float) -> int:
    """Weights kept at ``sparsity`` (fraction pruned) of ``total``: ``round(sparsity * total)`` go, as
    ``torch.nn.utils.prune`` counts them."""
    if not 0.0 <= sparsity < 1.0:
        raise ValueError(f"sparsity must be in [0, 1), got {sparsity}")
    return total - _count_to_prune(total, sparsity)


def keep_top(scores: Mapping[str, torch.Tensor], mask: Mask, keep: int) -> Mask:
    """The ``keep`` highest-scoring weights among those ``mask`` keeps, pooled over all tensors
    (one global threshold); weights ``mask`` prunes stay pruned whatever their score."""
    names = list(mask)
    flat = torch.cat([torch.where(mask[k].cpu(), scores[k].detach().cpu().double(), -math.inf).reshape(-1) for k in names])
    kept = _keep_largest(flat, min(keep, mask.alive())).split([mask[k].numel() for k in names])
    return Mask({k: part.view_as(mask[k]).to(mask[k].device) for k, part in zip(names, kept)})


def magnitude_prune(weights: Mapping[str, torch.Tensor], mask: Mask, rate: float, layerwise: bool = False) -> Mask:
    """Prune a fraction ``rate`` of the weights that ``mask`` still keeps, by smallest ``|w|``.

    Global (default): one threshold over all masked weights pooled together; ``round(rate * alive)``
    weights go. Layerwise: ``round(rate * alive_in_layer)`` go in every layer. Already-pruned
    weights stay pruned whatever their value. With ``rate`` large this is one-shot pruning.
    """
    if not 0.0 <= rate < 1.0:
        raise ValueError(f"pruning rate must be in [0, 1), got {rate}")
    names = list(mask)
    # Pruned weights score -1 (below every |w|), so they are never chosen over a surviving weight.
    scores = {k: torch.where(mask[k], weights[k].detach().abs().float(), -1.0).reshape(-1).cpu() for k in names}
    if layerwise:
        kept = {}
        for k in names:
            alive = int(mask[k].sum())
            kept[k] = _keep_largest(scores[k], alive - _count_to_prune(alive, rate))
    else:
        flat = torch.cat([scores[k] for k in names])
        alive = mask.alive()
        keep = _keep_largest(flat, alive - _count_to_prune(alive, rate))
        kept = dict(zip(names, keep.split([scores[k].numel() for k in names])))
    return Mask({k: kept[k].view_as(mask[k]).to(mask[k].device) for k in names})
