"""Seconds per epoch of ``oneticket.training.train``, split into steps, evaluation and checkpoint.

Each row trains a freshly initialized model (79% pruned, like IMP level 7) for ``--epochs`` epochs
of ``--train-size`` images (real CIFAR-10 images when a copy is found, else random uint8 images of
the same shape) with a test set of ``--test-size`` images, writing a checkpoint after every epoch,
exactly as ``oneticket find`` does. The first epoch is a warm-up (cuDNN autotuning, compilation)
and is not reported; the others are reported as their means (eval: the last evaluation, as the
first one also tunes cuDNN for the test batches):

- steps: from the epoch's start to the end of its last step (batches, forward, backward, masks),
- eval: the test-set evaluation of an evaluated epoch (``eval every`` = the run's interval),
- ckpt: writing one checkpoint (measured by writing one after every epoch),
- epoch: steps + eval / (eval every) + ckpt / (epochs per checkpoint): the mean epoch of a long run
  (checkpoints at most every ``Speed.checkpoint_seconds``: 30 s on CUDA, every epoch on CPU), and
  the share of evaluation and checkpoints in it.

    python benchmarks/epoch_time.py --device cuda                       # VGG19 and ResNet50, batch 512
    python benchmarks/epoch_time.py --models vgg19 --widths 0.125 --train-size 5000 --test-size 10000
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch

from benchlib import cifar_like, machine, pruned_mask, sync
from oneticket.data import DeviceData
from oneticket.models import create_model
from oneticket.training import EpochRecord, Speed, TrainHooks, TrainSettings, train
from oneticket.training.speed import checkpoint_seconds, eval_interval

CONFIGS: dict[str, tuple[str, Speed]] = {
    "fp32-nchw": ("fp32", Speed(channels_last=False)),
    "fp32": ("fp32", Speed(channels_last=True)),
    "bf16-nchw": ("bf16", Speed(channels_last=False)),
    "bf16": ("bf16", Speed(channels_last=True)),
    "fp32-compile": ("fp32", Speed(channels_last=True, compile=True)),
    "bf16-compile": ("bf16", Speed(channels_last=True, compile=True)),
}


@dataclass
class EpochClock:
    device: torch.device
    start: float = 0.0
    last_step: float = 0.0
    parts: list[dict[str, float]] = field(default_factory=list)

    def on_start(self, _: int) -> None:
        sync(self.device)
        self.start = time.perf_counter()

    def on_step(self, epoch: int, step: int, steps: int, loss: float | None) -> None:
        if step == steps - 1:
            sync(self.device)
            self.last_step = time.perf_counter()

    def on_epoch(self, record: EpochRecord) -> None:
        now = time.perf_counter()
        evaluated_until = self.start + record.seconds  # the record's time ends after evaluation
        self.parts.append({"steps": self.last_step - self.start, "eval": evaluated_until - self.last_step,
                           "ckpt": now - evaluated_until, "evaluated": record.test_accuracy is not None})
        self.start = now


def run_row(model_name: str, width: float, batch: int, config: str, args: argparse.Namespace) -> dict[str, float]:
    precision, speed = CONFIGS[config]
    device = torch.device(args.device)
    data = DeviceData(cifar_like(args.train_size, args.test_size, args.data_dir), device, batch)
    interval = eval_interval(speed, data.train_size, len(data.test_labels))
    checkpoint_every = checkpoint_seconds(speed, device)
    model = create_model(model_name, 10, width, seed=0).to(device)
    clock = EpochClock(device)
    hooks = TrainHooks(on_start=clock.on_start, on_step=clock.on_step, on_epoch=clock.on_epoch)
    with tempfile.TemporaryDirectory() as tmp:
        train(model, data, TrainSettings("sgd", args.epochs, (), 0, precision), pruned_mask(model_name, width).to(device),
              Path(tmp) / "ckpt.pt", hooks, replace(speed, checkpoint_seconds=0))
    measured = clock.parts[1:]
    steps = sum(p["steps"] for p in measured) / len(measured)
    ckpt = sum(p["ckpt"] for p in measured) / len(measured)
    evaluation = [p["eval"] for p in measured if p["evaluated"]][-1]
    epochs_per_checkpoint = max(1, math.ceil(checkpoint_every / (steps + evaluation / interval)))
    epoch = steps + evaluation / interval + ckpt / epochs_per_checkpoint
    return {"steps": steps, "eval": evaluation, "interval": interval, "ckpt": ckpt, "ckpt_every": epochs_per_checkpoint,
            "epoch": epoch, "share": 1 - steps / epoch}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=["vgg19", "resnet50"])
    parser.add_argument("--widths", type=float, nargs="+", default=[1.0])
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--configs", nargs="+", default=["fp32-nchw", "fp32", "bf16-nchw", "bf16"], choices=list(CONFIGS))
    parser.add_argument("--train-size", type=int, default=50_000)
    parser.add_argument("--test-size", type=int, default=10_000)
    parser.add_argument("--epochs", type=int, default=3, help="including the warm-up epoch")
    parser.add_argument("--data-dir", type=Path, default=None, help="a folder holding cifar10/ (default: ../shared/datasets)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    print(f"machine: {machine(torch.device(args.device))}")
    print(f"{args.train_size} training images, {args.test_size} test images, batch {args.batch_size}; seconds")
    print(f"{'model':<16}{'settings':<14}{'steps':>8}{'eval':>8}{'every':>6}{'ckpt':>8}{'every':>6}{'epoch':>8}{'eval+ckpt':>10}",
          flush=True)
    for name in args.models:
        for width in args.widths:
            for config in args.configs:
                r = run_row(name, width, args.batch_size, config, args)
                print(f"{name + ' w' + format(width, 'g'):<16}{config:<14}{r['steps']:>8.3f}{r['eval']:>8.3f}{r['interval']:>6}"
                      f"{r['ckpt']:>8.3f}{r['ckpt_every']:>6}{r['epoch']:>8.3f}{100 * r['share']:>9.1f}%", flush=True)


if __name__ == "__main__":
    main()
