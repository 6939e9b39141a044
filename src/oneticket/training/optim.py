"""Optimizers and learning-rate schedules with the seed's hyperparameters.

The learning rate of step ``s`` (0-based, counted over the whole training) is a pure function of
``s``: :class:`LrSchedule`. The base rate is divided by 10 at each milestone epoch, and an optional
linear warm-up ramps it up over the first steps. Nothing about it is stored in a checkpoint: a
resumed training recomputes the rate of every step it takes.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import torch

from oneticket.errors import UserError

OPTIMIZERS: dict[str, dict[str, Any]] = {
    "sgd": {"lr": 0.1, "momentum": 0.9, "weight_decay": 1e-4},
    "adam": {"lr": 3e-4, "betas": (0.9, 0.999), "weight_decay": 1e-4},
}
LR_DROP = 0.1  # the learning rate is multiplied by this at every milestone
REFERENCE_BATCH = 512  # the batch size the seed's learning rates belong to
LR_SCALINGS = ("none", "linear")


def default_lr(optimizer: str) -> float:
    """The seed's learning rate for ``optimizer`` (SGD 0.1, Adam 3e-4), for batch 512."""
    check_optimizer(optimizer)
    return float(OPTIMIZERS[optimizer]["lr"])


def check_optimizer(name: str) -> None:
    if name not in OPTIMIZERS:
        raise UserError(f"unknown optimizer {name!r}; choose one of: {', '.join(OPTIMIZERS)}")


def scaled_lr(base: float, scaling: str, batch_size: int) -> float:
    """``base`` under a scaling rule: ``none`` keeps it; ``linear`` (Goyal et al. 2017) multiplies it
    by ``batch_size / 512``, the batch the seed's rates were tuned for."""
    if scaling == "none":
        return base
    if scaling == "linear":
        return base * batch_size / REFERENCE_BATCH
    raise UserError(f"unknown learning-rate scaling {scaling!r}; choose one of: {', '.join(LR_SCALINGS)}")


def make_optimizer(name: str, params: Iterable[torch.nn.Parameter], lr: float | None = None) -> torch.optim.Optimizer:
    """SGD (lr 0.1, momentum 0.9, wd 1e-4) or Adam (lr 3e-4, betas (0.9, 0.999), wd 1e-4); ``lr``
    replaces the default learning rate."""
    check_optimizer(name)
    settings = {**OPTIMIZERS[name], **({} if lr is None else {"lr": lr})}
    if name == "sgd":
        return torch.optim.SGD(params, **settings)
    return torch.optim.Adam(params, **settings)


def scale_milestones(milestones: tuple[int, ...], default_epochs: int, epochs: int) -> tuple[int, ...]:
    """Milestones moved in proportion when training is shortened or lengthened.

    Each milestone ``m`` becomes ``floor(m * epochs / default_epochs + 0.5)``; milestones that land
    at epoch 0 or at/after the end are dropped, duplicates merged. The paper's own length keeps the
    paper's milestones (VGG19 at 15 epochs: 80, 120 -> 8, 11).
    """
    scaled = (math.floor(m * epochs / default_epochs + 0.5) for m in milestones)
    return tuple(sorted({m for m in scaled if 0 < m < epochs}))


@dataclass(frozen=True)
class LrSchedule:
    """The learning rate of every step: ``base``, multiplied by 0.1 at each milestone epoch, and by
    ``(s + 1) / warmup_steps`` during the first ``warmup_steps`` steps (linear warm-up that reaches
    ``base`` at step ``warmup_steps - 1``; Goyal et al. 2017)."""

    base: float
    milestones: tuple[int, ...]
    steps_per_epoch: int
    warmup_steps: int = 0

    def at(self, step: int) -> float:
        epoch = step // self.steps_per_epoch
        lr = self.base
        for milestone in self.milestones:
            if epoch >= milestone:
                lr = lr * LR_DROP  # one product per milestone, as torch's MultiStepLR computes it
        if step < self.warmup_steps:
            lr = lr * (step + 1) / self.warmup_steps
        return lr

    def apply(self, optimizer: torch.optim.Optimizer, step: int) -> float:
        """Set the rate of ``step`` on every parameter group; return it."""
        lr = self.at(step)
        for group in optimizer.param_groups:
            group["lr"] = lr
        return lr


DURATION_PATTERN = re.compile(r"^(\d+)(ep|it)$")


def parse_duration(text: str, what: str = "duration") -> tuple[int, str]:
    """``"1ep"`` -> ``(1, "ep")``; ``"500it"`` -> ``(500, "it")`` (a rewind point, a warm-up)."""
    match = DURATION_PATTERN.match(text.strip())
    if not match:
        raise ValueError(f"{what} {text!r} must look like 1ep (epochs) or 500it (iterations)")
    return int(match.group(1)), match.group(2)


def duration_steps(text: str | None, steps_per_epoch: int) -> int:
    """Optimizer steps in ``"Nep"`` / ``"Nit"`` (None: 0)."""
    if text is None:
        return 0
    count, unit = parse_duration(text)
    return count * steps_per_epoch if unit == "ep" else count
