"""Training images/s: oneticket against its compute-only bound and a replication-style pipeline.

Three pipelines train the same VGG19 (width w, batch b) on the same machine, in one run:

(a) oneticket: ``oneticket.training.train`` as ``oneticket find`` runs it: uint8 images held on
    the device (batch crop + flip, normalize), forward, backward, SGD step, pruned weights
    re-zeroed (79% pruned, like IMP level 7), test-set evaluation as the run's policy says, and a
    checkpoint after every epoch (on CUDA: at most every 30 s, the default there). Everything
    between steps counts in its time.
(b) bound: the same model without a mask, the same optimizer and the same settings (precision,
    memory format, compilation) on normalized float batches made before timing: forward, backward,
    step and nothing else. The compute-only bound of those settings, in oneticket's process.
(c) replication: the seed's style: a ``torch.utils.data.Dataset`` whose ``__getitem__`` turns one
    HWC uint8 image into a tensor, pads it by 4 and crops 32x32 at a random offset, flips it with
    probability 1/2 and normalizes it; a ``DataLoader`` (shuffle, ``num_workers=0``) collates the
    batches; before each forward pass every parameter whose name contains "weight" is multiplied
    by its mask (BatchNorm weights and the output layer by ones); fp32, NCHW; ``loss.item()``
    every step. It runs in a process of its own, plain PyTorch as the seed's code ran (oneticket's
    process-wide settings, such as glibc keeping freed memory, do not reach it; with
    ``--replication-in-process`` they do). ``num_workers=0`` keeps all its work inside its own
    timed steps (workers would run between and during the other pipelines' steps on the same cores).

On a GPU, ``--replication-workers N`` lets (c)'s DataLoader prepare batches in N processes,
as a GPU replication would; they then also work while (a) and (b) run, which favours (c).

The three are interleaved step by step: from (a)'s step hook, (b) and (c) each take one step, each
timed on its own ((c)'s process times its step and waits for the next request; each process idles
20 ms, outside every timed span, before the other runs, so that neither one's idle OpenMP threads,
which spin for a while, slow the other). A shared or throttled machine slows all three alike, so
the ratios stay meaningful. (a) trains 1 + k epochs of ``--steps`` batches, k the run's evaluation
interval (test set = a fifth of the training set, as CIFAR's 10,000 / 50,000), and is timed over
the last k: exactly one evaluation and (on CPU) k checkpoints fall inside its window. (b) and (c) take one step per
step of (a) in that window, after two warm-up steps each.

    python benchmarks/throughput.py                    # widths 1/8, 1/4, 1; batches 512, 128; CPU
    python benchmarks/throughput.py --widths 0.125 --batch-sizes 512 --configs fp32 bf16
    python benchmarks/throughput.py --device cuda --widths 1 --batch-sizes 512
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from benchlib import cifar_like, machine, pruned_mask, sync
from oneticket.data import DeviceData, ImageDataset
from oneticket.models import create_model
from oneticket.sparsity import Mask
from oneticket.training import Speed, TrainHooks, TrainSettings, make_optimizer, train
from oneticket.training.speed import autocast, eval_interval

CONFIGS: dict[str, tuple[str, Speed]] = {
    "fp32": ("fp32", Speed(channels_last=True)),  # the default
    "fp32-nchw": ("fp32", Speed(channels_last=False)),
    "bf16": ("bf16", Speed(channels_last=True)),
    "bf16-nchw": ("bf16", Speed(channels_last=False)),
    "compile": ("fp32", Speed(channels_last=True, compile=True)),
    "bf16-compile": ("bf16", Speed(channels_last=True, compile=True)),
}
WARMUP = 2
SETTLE = 0.02  # seconds a process idles before handing over to the other (OpenMP threads spin a while)


class BoundStep:
    """(b): one forward/backward/step of an unmasked model on premade batches."""

    def __init__(self, width: float, batch: int, device: torch.device, precision: str, speed: Speed, count: int = 4):
        fmt = torch.channels_last if speed.channels_last else torch.contiguous_format
        self.model = create_model("vgg19", 10, width, seed=0).to(device, memory_format=fmt).train()
        self.forward = torch.compile(self.model) if speed.compile else self.model
        self.optimizer = make_optimizer("sgd", self.model.parameters())
        self.device, self.precision = device, precision
        gen = torch.Generator().manual_seed(1)
        self.batches = [
            (torch.randn(batch, 3, 32, 32, generator=gen).to(device, memory_format=fmt),
             torch.randint(0, 10, (batch,), generator=gen).to(device))
            for _ in range(count)
        ]
        self.calls = 0

    def __call__(self) -> None:
        images, labels = self.batches[self.calls % len(self.batches)]
        self.calls += 1
        with autocast(self.device, self.precision):
            loss = F.cross_entropy(self.forward(images), labels)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()


class PerSampleCifar(torch.utils.data.Dataset):
    """(c)'s dataset: HWC uint8 images, transformed one sample at a time, as torchvision does."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, mean: tuple[float, ...], std: tuple[float, ...]):
        self.images, self.labels = images, labels
        self.mean = torch.tensor(mean).view(3, 1, 1)
        self.std = torch.tensor(std).view(3, 1, 1)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        image = torch.from_numpy(self.images[i].transpose(2, 0, 1)).contiguous().float().div(255)  # ToTensor
        image = F.pad(image, (4, 4, 4, 4))  # RandomCrop(32, padding=4)
        top = int(torch.randint(0, 9, (1,)).item())
        left = int(torch.randint(0, 9, (1,)).item())
        image = image[:, top:top + 32, left:left + 32]
        if torch.rand(1).item() < 0.5:  # RandomHorizontalFlip()
            image = image.flip(-1)
        return (image - self.mean) / self.std, int(self.labels[i])  # Normalize


class ReplicationStep:
    """(c): DataLoader batches, masks multiplied into every "weight" before the forward pass."""

    def __init__(self, width: float, batch: int, device: torch.device, dataset: ImageDataset, mask: Mask, workers: int):
        self.model = create_model("vgg19", 10, width, seed=0).to(device).train()
        self.optimizer = make_optimizer("sgd", self.model.parameters())
        self.device = device
        self.masks = {name: (mask[name] if name in mask else torch.ones_like(p, dtype=torch.bool)).float().to(device)
                      for name, p in self.model.named_parameters() if "weight" in name}
        images = dataset.train_images.permute(0, 2, 3, 1).numpy().copy()
        samples = PerSampleCifar(images, dataset.train_labels.numpy(), dataset.mean, dataset.std)
        self.loader = torch.utils.data.DataLoader(samples, batch_size=batch, shuffle=True, num_workers=workers,
                                                  persistent_workers=workers > 0)
        self.batches = iter(self.loader)

    def __call__(self) -> None:
        try:
            images, labels = next(self.batches)
        except StopIteration:
            self.batches = iter(self.loader)
            images, labels = next(self.batches)
        images, labels = images.to(self.device), labels.to(self.device)
        for name, param in self.model.named_parameters():
            if "weight" in name:
                param.data.mul_(self.masks[name])
        loss = F.cross_entropy(self.model(images), labels)
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        loss.item()


class Timed:
    """A step function of this process, timed to the end of its device work."""

    def __init__(self, step: Callable[[], None], device: torch.device):
        self.step, self.device = step, device

    def __call__(self) -> float:
        began = time.perf_counter()
        self.step()
        sync(self.device)
        return time.perf_counter() - began


def replication_process(conn, width: float, batch: int, device: str, n_train: int, n_test: int, workers: int) -> None:
    """(c) in a process of its own: one timed step per request, its seconds sent back."""
    step = Timed(ReplicationStep(width, batch, torch.device(device), cifar_like(n_train, n_test),
                                 pruned_mask("vgg19", width), workers), torch.device(device))
    while conn.recv():
        seconds = step()
        time.sleep(SETTLE)  # let this process's idle threads stop spinning before the others run
        conn.send(seconds)


class RemoteReplication:
    """(c) run by :func:`replication_process`; calling it takes one step there and returns its time."""

    def __init__(self, *args: object):
        self.conn, child = mp.get_context("spawn").Pipe()
        self.process = mp.get_context("spawn").Process(target=replication_process, args=(child, *args), daemon=True)
        self.process.start()

    def __call__(self) -> float:
        time.sleep(SETTLE)  # likewise for this process's threads
        self.conn.send(True)
        return self.conn.recv()

    def close(self) -> None:
        self.conn.send(False)
        self.process.join()


@dataclass
class Clock:
    """Times (a) between its step hooks; the other pipelines step (and time themselves) inside them.

    Hook ``i`` follows (a)'s global step ``i``. (a)'s time counts from hook ``window_start - 1`` on;
    from hook ``window_start`` on, each other pipeline takes one timed step per hook (before that,
    ``WARMUP`` untimed steps at the first hooks).
    """

    others: dict[str, Callable[[], float]]
    device: torch.device
    window_start: int
    ours: float = 0.0
    resume: float | None = None

    def __post_init__(self) -> None:
        self.spent = {name: 0.0 for name in self.others}
        self.steps = {name: 0 for name in self.others}

    def on_step(self, epoch: int, step: int, steps: int, loss: float | None) -> None:
        sync(self.device)
        index = epoch * steps + step
        if index >= self.window_start and self.resume is not None:
            self.ours += time.perf_counter() - self.resume
        if index < WARMUP or index >= self.window_start:
            for name, step_fn in self.others.items():
                seconds = step_fn()
                if index >= self.window_start:
                    self.spent[name] += seconds
                    self.steps[name] += 1
        self.resume = time.perf_counter()


def run_row(width: float, batch: int, config: str, steps: int, device: torch.device, args: argparse.Namespace) -> dict[str, float]:
    """images/s of (a), (b) and (c) for one row."""
    precision, speed = CONFIGS[config]
    n_train, n_test = batch * steps, batch * steps // 5
    dataset = cifar_like(n_train, n_test)
    data = DeviceData(dataset, device, batch)
    k = eval_interval(speed, data.train_size, len(data.test_labels))
    mask = pruned_mask("vgg19", width)
    if args.replication_in_process:
        replication = Timed(ReplicationStep(width, batch, device, dataset, mask, args.replication_workers), device)
    else:
        replication = RemoteReplication(width, batch, str(device), n_train, n_test, args.replication_workers)
    others = {"bound": Timed(BoundStep(width, batch, device, precision, speed), device), "replication": replication}
    clock = Clock(others, device, window_start=steps)
    model = create_model("vgg19", 10, width, seed=0).to(device)
    with tempfile.TemporaryDirectory() as tmp:
        train(model, data, TrainSettings("sgd", 1 + k, (), 0, precision), mask.to(device), Path(tmp) / "ckpt.pt",
              TrainHooks(on_step=clock.on_step), speed)
    if isinstance(replication, RemoteReplication):
        replication.close()
    images = batch * k * steps
    return {"oneticket": images / clock.ours,
            **{name: batch * clock.steps[name] / clock.spent[name] for name in others}}


def default_steps(width: float, batch: int, device: torch.device) -> int:
    """Steps per epoch: a full CIFAR epoch on a GPU, a few seconds' worth on a CPU."""
    if device.type == "cuda":
        return 50_000 // batch
    return 8 if width >= 1 else max(8, 4096 // batch)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--widths", type=float, nargs="+", default=[0.125, 0.25, 1.0])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[512, 128])
    parser.add_argument("--configs", nargs="+", default=["fp32", "bf16", "fp32-nchw"], choices=list(CONFIGS))
    parser.add_argument("--steps", type=int, default=None,
                        help="steps per epoch of (a) (default CPU: 8 at width 1, else 4096 images' worth; CUDA: 50,000 images' worth)")
    parser.add_argument("--replication-workers", type=int, default=0,
                        help="DataLoader workers of (c) (default 0: all its work inside its timed steps)")
    parser.add_argument("--replication-in-process", action="store_true",
                        help="run (c) in this process, where oneticket's process-wide settings also speed it up")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    where = "this process" if args.replication_in_process else "its own process"
    print(f"machine: {machine(device)}; replication in {where}, DataLoader workers: {args.replication_workers}")
    print(f"{'model':<13}{'batch':>6}  {'settings':<13}{'oneticket':>10}{'bound':>9}{'replic.':>9}"
          f"{'a/bound':>9}{'a/replic.':>10}{'bound/replic.':>14}   (images/s)", flush=True)
    for width in args.widths:
        for batch in args.batch_sizes:
            steps = args.steps or default_steps(width, batch, device)
            for config in args.configs:
                r = run_row(width, batch, config, steps, device, args)
                a, b, c = r["oneticket"], r["bound"], r["replication"]
                print(f"{'vgg19 w' + format(width, 'g'):<13}{batch:>6}  {config:<13}{a:>10.1f}{b:>9.1f}{c:>9.1f}"
                      f"{a / b:>9.3f}{a / c:>10.3f}{b / c:>14.3f}", flush=True)
    print(f"machine after: {machine(device)}")


if __name__ == "__main__":
    main()
