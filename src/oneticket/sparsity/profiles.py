"""Random masks with a chosen sparsity *profile* (how many weights each layer keeps).

- ``uniform``: every layer keeps the same fraction.
- ``erk`` (Erdos-Renyi-kernel, Evci et al. 2020): a layer of shape (out, in, kh, kw) keeps a
  fraction proportional to ``(out + in + kh + kw) / (out * in * kh * kw)``, scaled so that the
  total is the target; layers that would keep more than all their weights are kept dense and the
  rest rescaled.

Per-layer counts are whole numbers that add up to exactly ``kept_count(total, sparsity)`` (largest
remainders get the rounding), and which weights a layer keeps is a seeded uniform draw.
"""

from __future__ import annotations

import math

import torch

from oneticket.sparsity.mask import Mask
from oneticket.sparsity.pruning import kept_count

PROFILES = ("uniform", "erk")


def _erk_factor(shape: tuple[int, ...]) -> float:
    return sum(shape) / math.prod(shape)


def layer_fractions(shapes: dict[str, tuple[int, ...]], sparsity: float, profile: str) -> dict[str, float]:
    """The fraction of each layer's weights kept under ``profile`` at ``sparsity`` overall (before rounding)."""
    if profile == "uniform":
        return {name: 1.0 - sparsity for name in shapes}
    if profile != "erk":
        raise ValueError(f"unknown sparsity profile {profile!r}; choose one of {', '.join(PROFILES)}")
    sizes = {name: math.prod(shape) for name, shape in shapes.items()}
    target = (1.0 - sparsity) * sum(sizes.values())
    dense: set[str] = set()
    while True:
        free = [name for name in shapes if name not in dense]
        budget = target - sum(sizes[name] for name in dense)
        scale = budget / sum(_erk_factor(shapes[name]) * sizes[name] for name in free)
        over = [name for name in free if scale * _erk_factor(shapes[name]) > 1.0]
        if not over:
            return {name: 1.0 if name in dense else scale * _erk_factor(shapes[name]) for name in shapes}
        dense.update(over)


def layer_counts(shapes: dict[str, tuple[int, ...]], sparsity: float, profile: str) -> dict[str, int]:
    """Whole per-layer counts of kept weights, adding up to exactly the target."""
    sizes = {name: math.prod(shape) for name, shape in shapes.items()}
    keep = kept_count(sum(sizes.values()), sparsity)
    wanted = {name: min(fraction * sizes[name], sizes[name]) for name, fraction in layer_fractions(shapes, sparsity, profile).items()}
    counts = {name: math.floor(value) for name, value in wanted.items()}
    by_remainder = sorted(shapes, key=lambda name: (-(wanted[name] - counts[name]), list(shapes).index(name)))
    short = keep - sum(counts.values())
    while short > 0:
        progressed = False
        for name in by_remainder:
            if short and counts[name] < sizes[name]:
                counts[name] += 1
                short -= 1
                progressed = True
        if not progressed:
            break
    return counts


def random_profile_mask(mask: Mask, sparsity: float, profile: str, seed: int) -> Mask:
    """A seeded random mask over ``mask``'s weights with the per-layer counts of ``profile``."""
    shapes = {name: tuple(tensor.shape) for name, tensor in mask.items()}
    counts = layer_counts(shapes, sparsity, profile)
    gen = torch.Generator().manual_seed(seed)
    drawn = {}
    for name, tensor in mask.items():
        flat = torch.zeros(tensor.numel(), dtype=torch.bool)
        flat[torch.randperm(tensor.numel(), generator=gen)[:counts[name]]] = True
        drawn[name] = flat.view_as(tensor).to(tensor.device)
    return Mask(drawn)
