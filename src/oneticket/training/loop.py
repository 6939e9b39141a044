"""The training loop: a few small functions, data on the device, masks kept in place.

Per step: a batch gathered and augmented on the device, forward (under bf16 autocast when the
precision is bf16), backward, the step's learning rate set (:class:`LrSchedule`), optimizer step,
then the pruned weights multiplied back to exactly 0.0. Per epoch: the model is evaluated on the test set (every epoch, or every
few epochs where evaluation would cost more than a small share, and always after the last), and a
checkpoint is written (on a GPU, at most every 30 s); a checkpoint that cannot be resumed from is
set aside with a warning and the training starts over. The loss is read back from the device only
every few steps, where it is also checked for NaN/inf. How it runs (memory format, compilation) is :class:`Speed`.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from oneticket.data import DeviceData
from oneticket.seeding import generator
from oneticket.sparsity import Mask, MaskedWeights
from oneticket.training.checkpoint import (
    Checkpoint,
    DamagedCheckpoint,
    check_fits,
    load_checkpoint,
    restore_rng_states,
    rng_states,
    save_checkpoint,
    set_aside,
)
from oneticket.training.optim import LrSchedule, default_lr, make_optimizer
from oneticket.training.speed import (
    Speed,
    autocast,
    check_compile,
    check_precision,
    checkpoint_seconds,
    eval_interval,
    evaluated_epochs,
    memory_format,
    retain_freed_memory,
)

log = logging.getLogger("oneticket")

LOSS_EVERY = 10  # steps between reads of the running loss (each read waits for the device)


@dataclass(frozen=True)
class TrainSettings:
    optimizer: str
    epochs: int
    milestones: tuple[int, ...]
    seed: int  # seeds the data-order and augmentation streams, one draw per epoch
    precision: str = "fp32"  # "fp32", or "bf16": autocast to bfloat16 (CPU and CUDA); changes results
    lr: float | None = None  # base learning rate (None: the optimizer's default, see OPTIMIZERS)
    warmup_steps: int = 0  # linear warm-up over this many steps (0: none)
    augmentation: str = "crop-flip"  # or "crop" (no flip), "none" (see oneticket.data.augment)


@dataclass(frozen=True)
class EpochRecord:
    epoch: int  # 1-based
    train_loss: float
    test_accuracy: float | None  # None: not evaluated after this epoch (see Speed.eval_every)
    lr: float  # at the epoch's first step
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
def evaluate(model: nn.Module, data: DeviceData, precision: str = "fp32", channels_last: bool = False) -> float:
    """Top-1 accuracy on the test set (BatchNorm in eval mode)."""
    was_training = model.training
    model.eval()
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    correct = torch.zeros((), dtype=torch.long, device=data.device)
    with autocast(data.device, precision):
        for images, labels in data.test_batches():
            correct += (model(images.contiguous(memory_format=fmt)).argmax(1) == labels).sum()
    model.train(was_training)
    return correct.item() / len(data.test_labels)


def _diverged_message(loss: float, epoch: int, step: int, steps: int) -> str:
    return (
        f"training diverged: the loss became {loss} in epoch {epoch + 1} (step {step + 1} of {steps}); "
        "try a lower learning rate (another optimizer) or check the data"
    )


@dataclass
class _Run:
    """What one call of :func:`train` works with."""

    model: nn.Module
    forward: Callable[[torch.Tensor], torch.Tensor]  # the model, compiled or not
    data: DeviceData
    settings: TrainSettings
    speed: Speed
    optimizer: torch.optim.Optimizer
    schedule: LrSchedule
    masked: MaskedWeights | None
    hooks: TrainHooks
    checkpoint_path: Path | None
    last_checkpoint: float = field(default_factory=time.monotonic)  # when the last one was written (or training began)

    @property
    def fmt(self) -> torch.memory_format:
        return memory_format(self.speed)

    def snapshot(self, on_snapshot: Callable[[nn.Module], None]) -> None:
        """Call ``on_snapshot`` with the model in the default memory format (values unchanged)."""
        self.model.to(memory_format=torch.contiguous_format)
        try:
            on_snapshot(self.model)
        finally:
            self.model.to(memory_format=self.fmt)

    def save(self, epoch: int, history: list[EpochRecord]) -> None:
        """Write a checkpoint, unless the last was written less than ``checkpoint_seconds`` ago."""
        if self.checkpoint_path is None:
            return
        if time.monotonic() - self.last_checkpoint < checkpoint_seconds(self.speed, self.data.device):
            return
        save_checkpoint(self.checkpoint_path, Checkpoint(epoch, self.model.state_dict(), self.optimizer.state_dict(),
                                                         {}, [asdict(h) for h in history], rng_states()))
        self.last_checkpoint = time.monotonic()


def _resume(run: _Run) -> tuple[int, list[EpochRecord]]:
    """Load the checkpoint, if there is one: epochs done and their records."""
    if run.checkpoint_path is None or not run.checkpoint_path.exists():
        return 0, []
    try:
        state = load_checkpoint(run.checkpoint_path)
        check_fits(state, run.model, run.optimizer, run.settings.epochs, run.checkpoint_path)
    except DamagedCheckpoint as exc:
        aside = set_aside(run.checkpoint_path)
        log.warning("%s; set aside as %s, training from the start of this level (same result)", exc, aside.name)
        return 0, []
    run.model.load_state_dict(state.model)
    run.optimizer.load_state_dict(state.optimizer)  # the learning rate is set again before every step
    restore_rng_states(state.rng)
    return state.epoch, [EpochRecord(**h) for h in state.history]


def _train_epoch(run: _Run, epoch: int) -> float | str:
    """One epoch of steps: the mean training loss, or why training diverged."""
    data, hooks, steps = run.data, run.hooks, run.data.steps_per_epoch
    seed = run.settings.seed
    first_step = epoch * steps
    loss_sum = torch.zeros((), device=data.device)
    seen = 0
    batches = data.train_batches(generator(seed, "order", epoch), generator(seed, "augment", epoch), run.settings.augmentation)
    for step, (images, labels) in enumerate(batches):
        if hooks.snapshot_step == first_step + step and hooks.on_snapshot is not None:
            run.snapshot(hooks.on_snapshot)
        with autocast(data.device, run.settings.precision):
            loss = F.cross_entropy(run.forward(images.contiguous(memory_format=run.fmt)), labels)
        run.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        run.schedule.apply(run.optimizer, first_step + step)
        run.optimizer.step()
        if run.masked is not None:
            run.masked.apply()
        loss_sum += loss.detach() * len(labels)
        seen += len(labels)
        if step % LOSS_EVERY == LOSS_EVERY - 1 or step == steps - 1:
            running = loss_sum.item() / seen
            if not math.isfinite(running):
                return _diverged_message(running, epoch, step, steps)
            if hooks.on_step is not None:
                hooks.on_step(epoch, step, steps, running)
        elif hooks.on_step is not None:
            hooks.on_step(epoch, step, steps, None)
    return loss_sum.item() / seen


def _epochs(run: _Run) -> TrainResult:
    start, history = _resume(run)
    if run.masked is not None:
        run.masked.apply()
    if run.hooks.on_start is not None:
        run.hooks.on_start(start)
    epochs = run.settings.epochs
    evaluated = evaluated_epochs(epochs, eval_interval(run.speed, run.data.train_size, len(run.data.test_labels)))
    run.model.train()
    for epoch in range(start, epochs):
        began = time.perf_counter()
        lr = run.schedule.at(epoch * run.data.steps_per_epoch)
        loss = _train_epoch(run, epoch)
        if isinstance(loss, str):
            return TrainResult(history, loss)
        accuracy = evaluate(run.model, run.data, run.settings.precision, run.speed.channels_last) if epoch + 1 in evaluated else None
        record = EpochRecord(epoch + 1, loss, accuracy, lr, time.perf_counter() - began)
        history.append(record)
        run.save(epoch + 1, history)
        if run.hooks.on_epoch is not None:
            run.hooks.on_epoch(record)
    return TrainResult(history)


def lr_schedule(settings: TrainSettings, steps_per_epoch: int) -> LrSchedule:
    """The per-step learning rates of a training with ``settings``."""
    base = settings.lr if settings.lr is not None else default_lr(settings.optimizer)
    return LrSchedule(base, settings.milestones, steps_per_epoch, settings.warmup_steps)


def _in_format(mask: Mask, fmt: torch.memory_format) -> Mask:
    """The mask with its 4-d (convolution) tensors laid out like the model's weights."""
    return Mask({k: t.contiguous(memory_format=fmt) if t.dim() == 4 else t for k, t in mask.items()})


def _prepare_device(device: torch.device, speed: Speed) -> None:
    if device.type == "cpu" and speed.retain_memory:
        retain_freed_memory()
    if device.type == "cuda" and speed.cudnn_benchmark:
        torch.backends.cudnn.benchmark = True


def train(
    model: nn.Module,
    data: DeviceData,
    settings: TrainSettings,
    mask: Mask | None = None,
    checkpoint_path: Path | None = None,
    hooks: TrainHooks | None = None,
    speed: Speed | None = None,
) -> TrainResult:
    """Train ``model`` for ``settings.epochs`` epochs, resuming from ``checkpoint_path`` if it exists.

    A fresh optimizer and schedule are made here; pruned weights (``mask``) are zeroed before the
    first step and after every optimizer step. A checkpoint is written after every epoch (on CUDA:
    at most every ``GPU_CHECKPOINT_SECONDS``); the test set is evaluated as ``speed.eval_every``
    says, and always after the last epoch. ``speed`` changes how fast this runs, not what it
    computes (the memory format changes rounding only); the model is returned in the default
    memory format.
    """
    speed = speed or Speed()
    check_precision(settings.precision)
    check_compile(speed, data.device)
    _prepare_device(data.device, speed)
    fmt = memory_format(speed)
    model.to(memory_format=fmt)
    try:
        optimizer = make_optimizer(settings.optimizer, model.parameters(), settings.lr)
        masked = None if mask is None else MaskedWeights(model, _in_format(mask, fmt))
        run = _Run(model, torch.compile(model) if speed.compile else model, data, settings, speed, optimizer,
                   lr_schedule(settings, data.steps_per_epoch), masked, hooks or TrainHooks(), checkpoint_path)
        return _epochs(run)
    finally:
        model.to(memory_format=torch.contiguous_format)
