"""Deterministic index selections: stratified subsets and disjoint halves."""

from __future__ import annotations

import numpy as np
import torch

from oneticket.errors import UserError


def stratified_subset(labels: np.ndarray, size: int, seed: int) -> np.ndarray:
    """Sorted indices of ``size`` samples, each class keeping its share (largest-remainder rounding).

    Within each class the samples are a seeded random choice (``torch.randperm`` on a CPU
    generator seeded with ``seed``), so the subset is the same on every machine.
    """
    n = len(labels)
    if not 0 < size <= n:
        raise UserError(f"--train-size must be between 1 and {n} (the training set's size), got {size}")
    classes, counts = np.unique(labels, return_counts=True)
    exact = counts * (size / n)
    take = np.floor(exact).astype(np.int64)
    shortfall = size - int(take.sum())
    take[np.argsort(-(exact - take), kind="stable")[:shortfall]] += 1
    gen = torch.Generator().manual_seed(seed)
    chosen = []
    for cls, k in zip(classes, take):
        members = np.flatnonzero(labels == cls)
        order = torch.randperm(len(members), generator=gen).numpy()
        chosen.append(members[order[:k]])
    return np.sort(np.concatenate(chosen))


def half_indices(labels: np.ndarray, half: str) -> np.ndarray:
    """Indices of half ``"a"`` or ``"b"``: disjoint, stratified, with no randomness at all.

    Within each class, taken in the order of the original files, the 1st, 3rd, 5th ... image goes to
    half a and the 2nd, 4th, 6th ... to half b. On CIFAR-10 (5,000 training images per class) each
    half has 25,000 images, 2,500 per class.
    """
    if half not in ("a", "b"):
        raise ValueError(f"half must be 'a' or 'b', got {half!r}")
    rank = np.empty(len(labels), dtype=np.int64)
    for cls in np.unique(labels):
        members = np.flatnonzero(labels == cls)
        rank[members] = np.arange(len(members))
    parity = 0 if half == "a" else 1
    return np.flatnonzero(rank % 2 == parity)
