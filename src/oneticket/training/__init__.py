"""Training: optimizers and schedules, the loop, evaluation, checkpoints."""

from oneticket.training.device import DEVICES, resolve_device
from oneticket.training.loop import EpochRecord, TrainHooks, TrainResult, TrainSettings, evaluate, train
from oneticket.training.optim import OPTIMIZERS, make_optimizer, make_scheduler, scale_milestones

__all__ = [
    "DEVICES",
    "resolve_device",
    "OPTIMIZERS",
    "EpochRecord",
    "TrainHooks",
    "TrainResult",
    "TrainSettings",
    "evaluate",
    "make_optimizer",
    "make_scheduler",
    "scale_milestones",
    "train",
]
