"""How much a busy machine slows a run down: one process of N threads against N one-thread workers.

A CPU-bound process that shares the machine takes its share of the cores. A run that loses that
share should slow down by no more than it: with N cores and one competing process, by (N + 1) / N
at most (1.5x on 2 cores). One PyTorch process with N OpenMP threads can do far worse: its
threads wait for each other at every parallel region, and a descheduled thread stalls them all.
``oneticket run --workers N`` (and ``oneticket demo``) run N one-thread workers instead.

Runs the demo's within-distribution spec with one seed (14 trainings), four times, in one run:
in-process with all threads and with N one-thread workers, each on a quiet machine and beside a
busy process (``python -c "while True: pass"``). Prints the wall times and the ratios::

    python benchmarks/busy_machine.py            # about 3 minutes on 2 cores
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from importlib import resources
from pathlib import Path


def spec_file(folder: Path) -> Path:
    text = (resources.files("oneticket.experiments") / "builtin" / "demo_within_distribution.toml").read_text()
    path = folder / "demo_within_distribution.toml"
    path.write_text(text.replace("seeds = [0, 1, 2]", "seeds = [0]"))
    return path


def timed_run(spec: Path, store: Path, extra: list[str], busy: bool) -> float:
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if busy else None
    try:
        began = time.perf_counter()
        subprocess.run([sys.executable, "-m", "oneticket", "run", str(spec), "--store", str(store),
                        "--device", "cpu", *extra], check=True, stdout=subprocess.DEVNULL)
        return time.perf_counter() - began
    finally:
        if hog is not None:
            hog.kill()
            hog.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cores", type=int, default=len(os.sched_getaffinity(0)))
    args = parser.parse_args()
    n = args.cores
    with tempfile.TemporaryDirectory() as tmp:
        spec = spec_file(Path(tmp))
        modes = {f"1 process, {n} threads": ["--threads", str(n)], f"{n} workers, 1 thread each": ["--workers", str(n)]}
        rows = []
        for name, extra in modes.items():
            quiet = timed_run(spec, Path(tmp) / f"{len(rows)}-quiet", extra, busy=False)
            busy = timed_run(spec, Path(tmp) / f"{len(rows)}-busy", extra, busy=True)
            rows.append((name, quiet, busy))
    print(f"{'':28} {'quiet':>8} {'busy':>8} {'slowdown':>9}   (share lost to 1 busy process: {(n + 1) / n:.2f}x)")
    for name, quiet, busy in rows:
        print(f"{name:28} {quiet:7.1f}s {busy:7.1f}s {busy / quiet:8.2f}x")
    print(f"workers vs one process, quiet: {rows[0][1] / rows[1][1]:.2f}x faster; busy: {rows[0][2] / rows[1][2]:.2f}x faster")


if __name__ == "__main__":
    main()
