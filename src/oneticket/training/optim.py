"""Optimizers and learning-rate schedules with the seed's hyperparameters."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch

from oneticket.errors import UserError

OPTIMIZERS: dict[str, dict[str, Any]] = {
    "sgd": {"lr": 0.1, "momentum": 0.9, "weight_decay": 1e-4},
    "adam": {"lr": 3e-4, "betas": (0.9, 0.999), "weight_decay": 1e-4},
}
LR_DROP = 0.1  # the learning rate is multiplied by this at every milestone


def make_optimizer(name: str, params: Iterable[torch.nn.Parameter]) -> torch.optim.Optimizer:
    """SGD (lr 0.1, momentum 0.9, wd 1e-4) or Adam (lr 3e-4, betas (0.9, 0.999), wd 1e-4)."""
    if name == "sgd":
        return torch.optim.SGD(params, **OPTIMIZERS["sgd"])
    if name == "adam":
        return torch.optim.Adam(params, **OPTIMIZERS["adam"])
    raise UserError(f"unknown optimizer {name!r}; choose one of: {', '.join(OPTIMIZERS)}")


def scale_milestones(milestones: tuple[int, ...], default_epochs: int, epochs: int) -> tuple[int, ...]:
    """Milestones moved in proportion when training is shortened or lengthened.

    Each milestone ``m`` becomes ``floor(m * epochs / default_epochs + 0.5)``; milestones that land
    at epoch 0 or at/after the end are dropped, duplicates merged. The paper's own length keeps the
    paper's milestones (VGG19 at 15 epochs: 80, 120 -> 8, 11).
    """
    scaled = (math.floor(m * epochs / default_epochs + 0.5) for m in milestones)
    return tuple(sorted({m for m in scaled if 0 < m < epochs}))


def make_scheduler(optimizer: torch.optim.Optimizer, milestones: tuple[int, ...]) -> torch.optim.lr_scheduler.MultiStepLR:
    """Divide the learning rate by 10 at each milestone epoch (stepped once per epoch)."""
    return torch.optim.lr_scheduler.MultiStepLR(optimizer, list(milestones), gamma=LR_DROP)
