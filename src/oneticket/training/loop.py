"""The training loop: one readable function, data on the device, masks kept in place.

Per step: a batch gathered and augmented on the device, forward, backward, optimizer step, then
the pruned weights multiplied back to exactly 0.0. Per epoch: the schedule steps, the model is
evaluated on the test set, and a checkpoint is written. The loss is read back from the device only
every few steps, where it is also checked for NaN/inf.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from oneticket.data import DeviceData
from oneticket.seeding import generator
from oneticket.sparsity import Mask, MaskedWeights
from oneticket.training.checkpoint import Checkpoint, load_checkpoint, restore_rng_states, rng_states, save_checkpoint
from oneticket.training.optim import make_optimizer, make_scheduler

LOSS_EVERY = 10  # steps between reads of the running loss (each read waits for the device)


@dataclass(frozen=True)
class TrainSettings:
    optimizer: str
    epochs: int
    milestones: tuple[int, ...]
    seed: int  # seeds the data-order and augmentation streams, one draw per epoch


@dataclass(frozen=True)
class EpochRecord:
    epoch: int  # 1-based
    train_loss: float
    test_accuracy: float
    lr: float
    seconds: float


@dataclass(frozen=True)
class TrainResult:
    history: list[EpochRecord]
    diverged: str | None = None  # why training stopped early, if it did

    @property
    def test_accuracy(self) -> float | None:
        return None if self.diverged or not self.history else self.history[-1].test_accuracy


@dataclass
class TrainHooks:
    """Optional callbacks. ``snapshot_step``: call ``on_snapshot(model)`` after that many steps."""

    on_start: Callable[[int], None] | None = None  # epochs already done (resumed from a checkpoint)
    on_step: Callable[[int, int, int, float | None], None] | None = None  # epoch, step, steps, running loss
    on_epoch: Callable[[EpochRecord], None] | None = None
    snapshot_step: int | None = None
    on_snapshot: Callable[[nn.Module], None] | None = None


@torch.inference_mode()
def evaluate(model: nn.Module, data: DeviceData) -> float:
    """Top-1 accuracy on the test set (BatchNorm in eval mode)."""
    was_training = model.training
    model.eval()
    correct = torch.zeros((), dtype=torch.long, device=data.device)
    for images, labels in data.test_batches():
        correct += (model(images).argmax(1) == labels).sum()
    model.train(was_training)
    return correct.item() / len(data.test_labels)


def _diverged_message(loss: float, epoch: int, step: int, steps: int) -> str:
    return (
        f"training diverged: the loss became {loss} in epoch {epoch + 1} (step {step + 1} of {steps}); "
        "try a lower learning rate (another optimizer) or check the data"
    )


def train(
    model: nn.Module,
    data: DeviceData,
    settings: TrainSettings,
    mask: Mask | None = None,
    checkpoint_path: Path | None = None,
    hooks: TrainHooks | None = None,
) -> TrainResult:
    """Train ``model`` for ``settings.epochs`` epochs, resuming from ``checkpoint_path`` if it exists.

    A fresh optimizer and schedule are made here; pruned weights (``mask``) are zeroed before the
    first step and after every optimizer step. A checkpoint is written after every epoch.
    """
    hooks = hooks or TrainHooks()
    optimizer = make_optimizer(settings.optimizer, model.parameters())
    scheduler = make_scheduler(optimizer, settings.milestones)
    history: list[EpochRecord] = []
    start = 0
    if checkpoint_path is not None and checkpoint_path.exists():
        state = load_checkpoint(checkpoint_path)
        model.load_state_dict(state.model)
        optimizer.load_state_dict(state.optimizer)
        scheduler.load_state_dict(state.scheduler)
        restore_rng_states(state.rng)
        history = [EpochRecord(**h) for h in state.history]
        start = state.epoch
    masked = MaskedWeights(model, mask) if mask is not None else None
    if masked is not None:
        masked.apply()

    if hooks.on_start is not None:
        hooks.on_start(start)
    steps = data.steps_per_epoch
    model.train()
    for epoch in range(start, settings.epochs):
        began = time.perf_counter()
        lr = optimizer.param_groups[0]["lr"]
        loss_sum = torch.zeros((), device=data.device)
        seen = 0
        batches = data.train_batches(generator(settings.seed, "order", epoch), generator(settings.seed, "augment", epoch))
        for step, (images, labels) in enumerate(batches):
            if hooks.snapshot_step == epoch * steps + step and hooks.on_snapshot is not None:
                hooks.on_snapshot(model)
            loss = F.cross_entropy(model(images), labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if masked is not None:
                masked.apply()
            loss_sum += loss.detach() * len(labels)
            seen += len(labels)
            if step % LOSS_EVERY == LOSS_EVERY - 1 or step == steps - 1:
                running = loss_sum.item() / seen
                if not math.isfinite(running):
                    return TrainResult(history, _diverged_message(running, epoch, step, steps))
                if hooks.on_step is not None:
                    hooks.on_step(epoch, step, steps, running)
            elif hooks.on_step is not None:
                hooks.on_step(epoch, step, steps, None)
        scheduler.step()
        record = EpochRecord(epoch + 1, loss_sum.item() / seen, evaluate(model, data), lr, time.perf_counter() - began)
        history.append(record)
        if checkpoint_path is not None:
            save_checkpoint(
                checkpoint_path,
                Checkpoint(epoch + 1, model.state_dict(), optimizer.state_dict(), scheduler.state_dict(),
                           [asdict(h) for h in history], rng_states()),
            )
        if hooks.on_epoch is not None:
            hooks.on_epoch(record)
    return TrainResult(history)
