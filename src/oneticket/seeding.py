"""Independent, named random streams derived from one user seed.

Every source of randomness (initialization, data order, augmentation, subsets, random masks, a new
output layer) gets its own seed, derived by hashing the user's seed with the stream's name and
indices. Streams never share state, so adding randomness in one place cannot shift another, and a
run resumed mid-way draws exactly what an uninterrupted run draws.
"""

from __future__ import annotations

import hashlib

import torch


def derive_seed(seed: int, *keys: object) -> int:
    """A 63-bit seed determined by ``seed`` and the stream's ``keys`` (e.g. ``"order", epoch``)."""
    text = ":".join([str(int(seed)), *map(str, keys)])
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little") >> 1


def generator(seed: int, *keys: object) -> torch.Generator:
    """A CPU generator for the stream ``keys`` of ``seed``."""
    return torch.Generator().manual_seed(derive_seed(seed, *keys))
