"""Training: optimizers and schedules, the loop, evaluation, checkpoints, execution options."""

from oneticket.training.device import DEVICES, resolve_device
from oneticket.training.loop import EpochRecord, TrainHooks, TrainResult, TrainSettings, evaluate, train
from oneticket.training.optim import OPTIMIZERS, make_optimizer, make_scheduler, scale_milestones
from oneticket.training.speed import PRECISIONS, Speed

__all__ = [
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
    "make_scheduler",
    "scale_milestones",
    "train",
]
