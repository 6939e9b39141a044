"""Training: optimizers and schedules, the loop, evaluation, checkpoints, execution options."""

from oneticket.training.compute import Compute, outcome_compute, scoring_compute, training_compute
from oneticket.training.device import DEVICES, resolve_device
from oneticket.training.loop import EpochRecord, TrainHooks, TrainResult, TrainSettings, evaluate, train
from oneticket.training.optim import (
    LR_SCALINGS,
    OPTIMIZERS,
    LrSchedule,
    default_lr,
    duration_steps,
    make_optimizer,
    parse_duration,
    scale_milestones,
    scaled_lr,
)
from oneticket.training.speed import PRECISIONS, Speed

__all__ = [
    "Compute",
    "outcome_compute",
    "scoring_compute",
    "training_compute",
    "DEVICES",
    "resolve_device",
    "OPTIMIZERS",
    "PRECISIONS",
    "EpochRecord",
    "Speed",
    "TrainHooks",
    "TrainResult",
    "TrainSettings",
    "evaluate",
    "make_optimizer",
    "LR_SCALINGS",
    "LrSchedule",
    "default_lr",
    "duration_steps",
    "parse_duration",
    "scaled_lr",
    "scale_milestones",
    "train",
]
