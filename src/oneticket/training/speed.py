"""How training is executed, as opposed to what it computes.

:class:`Speed` holds the execution-only options: they change how fast a run goes, not its hash
(the memory format changes rounding, as any choice of kernels does, not the settings of the run).
Numerical precision is not one of them (it is ``TrainSettings.precision``, part of the science).
Measurements behind the defaults: ``docs/performance.md``.
"""

from __future__ import annotations

import ctypes
import shutil
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass

import torch

from oneticket.errors import UserError

PRECISIONS = ("fp32", "bf16")
TRAINED_PER_EVALUATED = 10  # auto interval: at least this many images trained per test image evaluated
GLIBC_TRIM_THRESHOLD = -1  # mallopt parameters (malloc.h)
GLIBC_MMAP_THRESHOLD = -3
RETAINED_BYTES = 1 << 30  # keep freed blocks up to this size in the process
GPU_CHECKPOINT_SECONDS = 30.0  # on CUDA a crash loses at most this much training, plus one epoch


@dataclass(frozen=True)
class Speed:
    """Execution options; none of them is hashed.

    ``channels_last``: NHWC memory format for the model and batches (faster convolutions on CPU
    and tensor-core GPUs). ``compile``: ``torch.compile`` the training forward/backward (no gain
    measured on CPU or H100; needs a C++ compiler on CPU). ``eval_every``: evaluate the test set every N
    epochs (the last epoch always); ``None`` picks the smallest N at which the test images
    evaluated are at most a tenth of the images trained. ``retain_memory``: on CPU (glibc), keep
    freed memory in the process instead of returning it to the system after every step.
    ``cudnn_benchmark``: on CUDA, let cuDNN time its convolution algorithms once and keep the fastest.
    ``checkpoint_seconds``: after an epoch, write a checkpoint only if this many seconds have passed
    since the last one; ``None``: 0 on CPU (every epoch: a write is a small share of a CPU epoch),
    ``GPU_CHECKPOINT_SECONDS`` on CUDA (where writing a full-width model takes a fifth of an epoch).
    """

    channels_last: bool = True
    compile: bool = False
    eval_every: int | None = None
    retain_memory: bool = True
    cudnn_benchmark: bool = True
    checkpoint_seconds: float | None = None

    def __post_init__(self) -> None:
        if self.eval_every is not None and self.eval_every < 1:
            raise UserError(f"--eval-every must be at least 1, got {self.eval_every}")
        if self.checkpoint_seconds is not None and self.checkpoint_seconds < 0:
            raise UserError(f"checkpoint interval must not be negative, got {self.checkpoint_seconds}")


def check_precision(precision: str) -> None:
    if precision not in PRECISIONS:
        raise UserError(f"unknown precision {precision!r}; choose one of: {', '.join(PRECISIONS)}")


def check_compile(speed: Speed, device: torch.device) -> None:
    """``torch.compile`` on CPU builds C++; say so in one line rather than fail deep inside it."""
    if speed.compile and device.type == "cpu" and not any(shutil.which(c) for c in ("g++", "c++", "clang++")):
        raise UserError("--compile on a CPU needs a C++ compiler (g++ or clang++) on the PATH; install one or drop --compile")


def autocast(device: torch.device, precision: str) -> AbstractContextManager[object]:
    """bf16 autocast on ``device`` for ``precision == "bf16"``; nothing for fp32."""
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return nullcontext()


def eval_interval(speed: Speed, train_size: int, test_size: int) -> int:
    """Epochs between evaluations: ``speed.eval_every``, or the smallest N with
    ``N * train_size >= TRAINED_PER_EVALUATED * test_size`` (50,000 / 10,000 images: every 2nd epoch)."""
    if speed.eval_every is not None:
        return speed.eval_every
    return max(1, -(-test_size * TRAINED_PER_EVALUATED // max(train_size, 1)))


def evaluated_epochs(epochs: int, interval: int) -> set[int]:
    """The 1-based epochs that are evaluated: every ``interval``-th, and always the last."""
    return {e for e in range(1, epochs + 1) if e % interval == 0} | {epochs}


def checkpoint_seconds(speed: Speed, device: torch.device) -> float:
    """Least seconds between two checkpoints (see :class:`Speed`)."""
    if speed.checkpoint_seconds is None:
        return GPU_CHECKPOINT_SECONDS if device.type == "cuda" else 0.0
    return speed.checkpoint_seconds


def memory_format(speed: Speed) -> torch.memory_format:
    return torch.channels_last if speed.channels_last else torch.contiguous_format


def retain_freed_memory() -> bool:
    """Ask glibc to keep freed blocks (up to 1 GiB) in the process; ``False`` where unavailable.

    Training frees and reallocates the same large activation buffers every step; by default glibc
    hands them back to the system and the next step page-faults them in again. Process-wide and
    idempotent; it changes no result.
    """
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(GLIBC_TRIM_THRESHOLD, RETAINED_BYTES)) and bool(mallopt(GLIBC_MMAP_THRESHOLD, RETAINED_BYTES))
