"""Several small independent training jobs at once on one device, against one at a time.

Each job is what ``oneticket find`` or a transfer training runs for one level: a fresh model
(79% pruned), ``oneticket.training.train`` for ``--epochs`` epochs on its own copy of the data,
with evaluation and a checkpoint per epoch. K jobs run as K processes started together (after
each has warmed up: CUDA context, cuDNN autotuning, one epoch); on CPU each gets 1/K of the
threads. The figure of merit is the total images/s of the K jobs against one job alone.

    python benchmarks/concurrent_jobs.py --device cuda --jobs 1 2 4 8
    python benchmarks/concurrent_jobs.py --device cpu --jobs 1 2
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import tempfile
import time
from pathlib import Path

import torch

from benchlib import cifar_like, machine, pruned_mask, sync
from oneticket.data import DeviceData
from oneticket.models import create_model
from oneticket.training import TrainSettings, train


def job(args: argparse.Namespace, threads: int, barrier: mp.Barrier, results: mp.Queue) -> None:
    torch.set_num_threads(threads)
    device = torch.device(args.device)
    data = DeviceData(cifar_like(args.train_size, args.test_size), device, args.batch_size)
    mask = pruned_mask("vgg19", args.width).to(device)
    settings = TrainSettings("sgd", args.epochs, (), 0, args.precision)
    with tempfile.TemporaryDirectory() as tmp:
        train(create_model("vgg19", 10, args.width, seed=0).to(device), data, TrainSettings("sgd", 1, (), 0, args.precision),
              mask, Path(tmp) / "warmup.pt")
        model = create_model("vgg19", 10, args.width, seed=1).to(device)
        sync(device)
        barrier.wait()
        began = time.perf_counter()
        train(model, data, settings, mask, Path(tmp) / "ckpt.pt")
        sync(device)
        results.put(time.perf_counter() - began)


def images_per_second(k: int, args: argparse.Namespace) -> float:
    """Total training images/s of ``k`` jobs started together."""
    ctx = mp.get_context("spawn")
    barrier, results = ctx.Barrier(k), ctx.Queue()
    threads = max(1, torch.get_num_threads() // k)
    procs = [ctx.Process(target=job, args=(args, threads, barrier, results)) for _ in range(k)]
    for p in procs:
        p.start()
    seconds = [results.get() for _ in procs]
    for p in procs:
        p.join()
    return k * args.epochs * args.train_size / max(seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--width", type=float, default=0.125)
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--precision", default="fp32", choices=["fp32", "bf16"])
    parser.add_argument("--train-size", type=int, default=10_000)
    parser.add_argument("--test-size", type=int, default=2_000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    print(f"machine: {machine(torch.device(args.device))}")
    print(f"vgg19 w{args.width:g}, batch {args.batch_size}, {args.precision}, {args.epochs} epochs of {args.train_size} images per job")
    print(f"{'jobs':>5}{'total img/s':>13}{'vs first':>10}", flush=True)
    base = None
    for k in args.jobs:
        rate = images_per_second(k, args)
        base = base or rate
        print(f"{k:>5}{rate:>13.1f}{rate / base:>10.2f}", flush=True)


if __name__ == "__main__":
    main()
