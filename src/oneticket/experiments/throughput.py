"""Training throughput measured on this machine, for time estimates.

A few optimizer steps of the job's model (its width, options and batch size; on a CPU at most 64
images per batch, which is enough to reach its per-image speed) on random CIFAR-shaped data,
timed after a warm-up step. Results are cached per machine, device and torch version in
``<store>/throughput.json``, so ``oneticket plan`` measures each configuration once.
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
TIMED_STEPS = 2
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
    model = create_model(model_name, 10, width, 0, **options).to(device).train()
    optimizer = make_optimizer("sgd", model.parameters())
    gen = torch.Generator().manual_seed(0)
    images = torch.randn(batch, 3, 32, 32, generator=gen).to(device)
    labels = torch.randint(0, 10, (batch,), generator=gen).to(device)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        F.cross_entropy(model(images), labels).backward()
        optimizer.step()

    step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    began = time.perf_counter()
    for _ in range(TIMED_STEPS):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return TIMED_STEPS * batch / (time.perf_counter() - began)


class MeasuredThroughput:
    """``throughput(job)`` -> images/s on ``device``, measured once per configuration and cached."""

    def __init__(self, store: Path, device: torch.device):
        self.path = Path(store).expanduser() / CACHE_FILE
        self.device = device
        self.measured: list[str] = []  # configurations measured by this object (not from the cache)

    def key(self, job: Job) -> str:
        name, width, options, batch = model_of(job)
        where = f"{platform.node()}|{self.device}|torch {torch.__version__}|threads {torch.get_num_threads()}"
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
            value = measure(name, width, options, batch, self.device)
            self.measured.append(f"{name} w{width:g} b{batch}: {value:,.0f} img/s")
            write_json_atomic(self.path, {**self._cache(), key: value})  # a lost race only means a re-measure
            cache[key] = value
        return cache[key]


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
