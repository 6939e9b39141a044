"""Training throughput measured on this machine, for time estimates.

A few optimizer steps of the job's model (its width, options and batch size; on a CPU at most 64
images per batch, which is enough to reach its per-image speed) on random CIFAR-shaped data,
timed after two warm-up steps for at least half a second. Results are cached per machine, device, torch version and thread
count in ``<store>/throughput.json``, so ``oneticket plan`` measures each configuration once. For
``workers`` one-thread worker processes (``oneticket run --workers N``) it measures one thread and
counts it ``workers`` times.
"""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from oneticket.experiments.graph import ImpJob, Job
from oneticket.files import read_json, write_json_atomic
from oneticket.models import create_model
from oneticket.errors import UserError
from oneticket.training import make_optimizer
from oneticket.training.reference_speeds import REFERENCE_EPOCH_SECONDS, reference_epoch_seconds

CACHE_FILE = "throughput.json"
CPU_BATCH_LIMIT = 64
WARMUP_STEPS = 2
TIMED_STEPS = 2  # at least, and for at least MIN_TIMED_SECONDS
MIN_TIMED_SECONDS = 0.5
REFERENCE_IMAGES = 50_000  # reference epoch times are for 50,000 CIFAR-shaped images


def model_of(job: Job) -> tuple[str, float, dict[str, Any], int]:
    """(model, width, options, batch size) of a job's trainings."""
    if isinstance(job, ImpJob):
        spec = job.spec
        return spec.model, spec.width, spec.resolved_model_options(), spec.batch_size
    source = job.source
    return source.model, source.width, dict(source.model_options), job.spec.batch_size


def measure(model_name: str, width: float, options: dict[str, Any], batch_size: int, device: torch.device) -> float:
    """Training images per second of one model configuration (forward, backward, SGD step)."""
    batch = min(batch_size, CPU_BATCH_LIMIT) if device.type == "cpu" else batch_size
    fmt = torch.channels_last  # as training runs by default (Speed.channels_last)
    model = create_model(model_name, 10, width, 0, **options).to(device).to(memory_format=fmt).train()
    optimizer = make_optimizer("sgd", model.parameters())
    gen = torch.Generator().manual_seed(0)
    images = torch.randn(batch, 3, 32, 32, generator=gen).to(device).contiguous(memory_format=fmt)
    labels = torch.randint(0, 10, (batch,), generator=gen).to(device)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        F.cross_entropy(model(images), labels).backward()
        optimizer.step()

    for _ in range(WARMUP_STEPS):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    began, steps = time.perf_counter(), 0
    while steps < TIMED_STEPS or time.perf_counter() - began < MIN_TIMED_SECONDS:
        step()
        steps += 1
        if device.type == "cuda":
            torch.cuda.synchronize(device)
    return steps * batch / (time.perf_counter() - began)


class MeasuredThroughput:
    """``throughput(job)`` -> images/s on ``device``, measured once per configuration and cached."""

    def __init__(self, store: Path, device: torch.device, workers: int | None = None):
        self.path = Path(store).expanduser() / CACHE_FILE
        self.device = device
        # None: one process with all its threads. Workers on one GPU share it: no multiple there.
        self.workers = workers if device.type == "cpu" else None
        self.measured: list[str] = []  # configurations measured by this object (not from the cache)

    @property
    def threads(self) -> int:
        return 1 if self.workers is not None else torch.get_num_threads()

    def key(self, job: Job) -> str:
        name, width, options, batch = model_of(job)
        where = f"{platform.node()}|{self.device}|torch {torch.__version__}|threads {self.threads}"
        return f"{where}|{name}|w{width:g}|{json.dumps(options, sort_keys=True)}|b{batch}"

    def _cache(self) -> dict[str, float]:
        try:
            return dict(read_json(self.path))
        except (OSError, ValueError):
            return {}

    def __call__(self, job: Job) -> float:
        key = self.key(job)
        cache = self._cache()
        if key not in cache:
            name, width, options, batch = model_of(job)
            threads = torch.get_num_threads()
            torch.set_num_threads(self.threads)
            try:
                value = measure(name, width, options, batch, self.device)
            finally:
                torch.set_num_threads(threads)
            per = f" per worker x {self.workers}" if self.workers else ""
            self.measured.append(f"{name} w{width:g} b{batch}: {value:,.0f} img/s{per}")
            write_json_atomic(self.path, {**self._cache(), key: value})  # a lost race only means a re-measure
            cache[key] = value
        return cache[key] * (self.workers or 1)


class ReferenceThroughput:
    """``throughput(job)`` from epoch times recorded on a reference GPU (``training.reference_speeds``)."""

    def __init__(self, device_name: str):
        self.device = device_name

    def __call__(self, job: Job) -> float:
        name, width, _options, batch = model_of(job)
        precision = job.spec.precision
        seconds = reference_epoch_seconds(self.device, name, width, batch, precision)
        if seconds is None:
            known = [f"{d}: " + ", ".join(f"{m} w{w:g} b{b} {p}" for m, w, b, p in table)
                     for d, table in REFERENCE_EPOCH_SECONDS.items()]
            raise UserError(f"no reference epoch time for {name} width {width:g} batch {batch} {precision} on "
                            f"{self.device}; recorded: {'; '.join(known) or 'none'}")
        return REFERENCE_IMAGES / seconds
