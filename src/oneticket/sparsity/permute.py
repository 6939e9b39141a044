"""Random masks with a given mask's counts, by seeded permutation."""

from __future__ import annotations

import torch

from oneticket.sparsity.mask import Mask


def permute_mask(mask: Mask, seed: int, layerwise: bool = False) -> Mask:
    """A random mask over the same weights as ``mask``.

    Global (default): the entries of all mask tensors, pooled, are shuffled by one seeded
    permutation, so the total count is kept and per-layer counts are not. Layerwise: each tensor is
    shuffled on its own, keeping every layer's count. Only weights that ``mask`` covers are touched
    (the output layer is not among them unless it was made prunable).
    """
    gen = torch.Generator().manual_seed(seed)
    names = list(mask)
    if layerwise:
        shuffled = {k: mask[k].reshape(-1).cpu()[torch.randperm(mask[k].numel(), generator=gen)] for k in names}
    else:
        flat = torch.cat([mask[k].reshape(-1).cpu() for k in names])
        parts = flat[torch.randperm(flat.numel(), generator=gen)].split([mask[k].numel() for k in names])
        shuffled = dict(zip(names, parts))
    return Mask({k: shuffled[k].view_as(mask[k]).to(mask[k].device) for k in names})
