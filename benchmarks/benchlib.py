"""Helpers shared by the benchmark scripts: images, masks, device sync, a description of the machine."""

from __future__ import annotations

import os
import platform
from pathlib import Path

import torch

from oneticket.data import ImageDataset, load_dataset
from oneticket.models import create_model
from oneticket.sparsity import Mask, prunable_weights

SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"
KEPT = 0.8**7  # masks as at IMP level 7: 79% of the prunable weights pruned


def cifar_like(n_train: int, n_test: int, data_dir: Path | None = None) -> ImageDataset:
    """Real CIFAR-10 images (repeated to size) when a copy is at hand, else random uint8 images."""
    for folder in (data_dir, SHARED):
        if folder is None:
            continue
        try:
            base = load_dataset("cifar10", folder, download=False, show_progress=False)
        except Exception:
            continue
        return ImageDataset("cifar10", 10, *_repeat(base.train_images, base.train_labels, n_train),
                            *_repeat(base.test_images, base.test_labels, n_test), base.mean, base.std)
    gen = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n_train + n_test, 3, 32, 32), dtype=torch.uint8, generator=gen)
    labels = torch.randint(0, 10, (n_train + n_test,), generator=gen)
    return ImageDataset("random", 10, images[:n_train], labels[:n_train], images[n_train:], labels[n_train:],
                        (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))


def _repeat(images: torch.Tensor, labels: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    reps = -(-n // len(labels))
    return images.repeat(reps, 1, 1, 1)[:n], labels.repeat(reps)[:n]


def pruned_mask(model_name: str, width: float, seed: int = 0) -> Mask:
    """A seeded random mask keeping 0.8**7 (21%) of each prunable weight, as at IMP level 7.

    Which weights survive does not change the speed (the kernels are dense), so no magnitudes are
    needed; this takes milliseconds where pruning a full-width model takes seconds.
    """
    model = create_model(model_name, 10, width, seed=seed)
    gen = torch.Generator().manual_seed(seed)
    return Mask({k: torch.rand(w.shape, generator=gen) < KEPT for k, w in prunable_weights(model).items()})


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def machine(device: torch.device) -> str:
    """CPU model, GPU name, torch version, threads, load average."""
    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    gpu = f", {torch.cuda.get_device_name(device)}" if device.type == "cuda" else ""
    load = ", load average %.2f" % os.getloadavg()[0] if hasattr(os, "getloadavg") else ""
    return (f"{cpu} ({os.cpu_count()} cores){gpu}; torch {torch.__version__}, {torch.get_num_threads()} threads, "
            f"device {device}{load}")
