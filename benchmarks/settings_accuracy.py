"""Quick-scale IMP under several settings and seeds: do bf16 or channels-last change the accuracy?

Runs ``find_tickets`` (the code of ``oneticket find``) for each seed and setting and prints the
final test accuracy per level, then per level the difference of each setting's seed mean from the
first setting's, next to the spread between seeds (the noise such a difference is compared with).

    python benchmarks/settings_accuracy.py --data-dir ../shared/datasets --device cpu
    python benchmarks/settings_accuracy.py --data-dir .devdata --device cuda --seeds 0 1 2 3
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from benchlib import machine
from oneticket.tickets import ImpSpec, find_tickets
from oneticket.training import Speed

VARIANTS: dict[str, tuple[str, Speed]] = {
    "fp32-nchw": ("fp32", Speed(channels_last=False)),
    "fp32": ("fp32", Speed(channels_last=True)),
    "bf16": ("bf16", Speed(channels_last=True)),
    "bf16-nchw": ("bf16", Speed(channels_last=False)),
}


def accuracies(variant: str, seed: int, store: Path, args: argparse.Namespace) -> list[float]:
    precision, speed = VARIANTS[variant]
    spec = ImpSpec(model="vgg19", width=args.width, dataset="cifar10", train_size=args.train_size,
                   epochs=args.epochs, levels=args.levels, seed=seed, precision=precision)
    results = find_tickets(spec, store / variant, args.data_dir, args.device, show_download_progress=False, speed=speed)
    return [100 * (r.test_accuracy or 0.0) for r in results]


def summary(table: dict[str, list[list[float]]], levels: int) -> None:
    names = list(table)
    base = names[0]
    print(f"{'level':>5}" + "".join(f"{n:>11}" for n in names) + "".join(f"{n + '-' + base:>16}" for n in names[1:])
          + f"{base + ' sd':>14}")
    diffs: dict[str, list[float]] = {n: [] for n in names[1:]}
    for level in range(levels + 1):
        means = {n: statistics.mean(run[level] for run in table[n]) for n in names}
        for n in names[1:]:
            diffs[n].append(means[n] - means[base])
        spread = statistics.stdev(run[level] for run in table[base]) if len(table[base]) > 1 else float("nan")
        print(f"{level:>5}" + "".join(f"{means[n]:>11.2f}" for n in names)
              + "".join(f"{diffs[n][-1]:>+16.2f}" for n in names[1:]) + f"{spread:>14.2f}")
    for n in names[1:]:
        print(f"mean over levels of {n} - {base}: {statistics.mean(diffs[n]):+.2f} points")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--variants", nargs="+", default=["fp32-nchw", "fp32", "bf16"], choices=list(VARIANTS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--levels", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--width", type=float, default=0.125)
    parser.add_argument("--train-size", type=int, default=5000)
    args = parser.parse_args()
    print(f"machine: {machine(torch.device(args.device))}")
    print(f"vgg19 w{args.width:g}, cifar10 ({args.data_dir}), train size {args.train_size}, {args.epochs} epochs, "
          f"levels 0..{args.levels}, seeds {args.seeds}; final test accuracy per level, %", flush=True)
    table: dict[str, list[list[float]]] = {v: [] for v in args.variants}
    with tempfile.TemporaryDirectory() as store:
        for seed in args.seeds:
            for variant in args.variants:
                began = time.perf_counter()
                table[variant].append(accuracies(variant, seed, Path(store), args))
                print(f"seed {seed} {variant:<10}" + " ".join(f"{a:5.1f}" for a in table[variant][-1])
                      + f"   ({time.perf_counter() - began:.0f} s)", flush=True)
    summary(table, args.levels)


if __name__ == "__main__":
    main()
