"""The Ray executor's cost against the local executor, on this machine, in one run.

1. Overhead per job: the tests' tiny spec (VGG19 width 1/16 on digits, 8 jobs, 12 tasks) run by the
   local executor and by Ray with one task at a time and the same thread count, each on an empty
   store; (Ray wall - local wall) / jobs, with Ray's start-up reported on its own.
2. A small spec (the demo's within-distribution experiment by default) with 1 and 2 Ray workers:
   ``--workers 1`` runs one task at a time with all cores as threads, ``--workers 2`` two tasks at
   a time with half the cores each. The local executor's wall time (all cores) is the reference.

    python benchmarks/ray_overhead.py
    python benchmarks/ray_overhead.py --small experiments/quick/within_distribution.toml --data-dir ../shared/datasets

Ray's workers run at nice 15: run this on a quiet machine, or every other process wins the CPU.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from importlib import resources
from pathlib import Path

import ray
import torch

from benchlib import machine
from oneticket.experiments import JobGraph, LocalExecutor, expand, load_experiment, parse_experiment
from oneticket.experiments.ray_executor import RayExecutor, RayOptions

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from test_experiments import TINY  # noqa: E402


def local_wall(graph: JobGraph, data_dir: Path | None, threads: int) -> float:
    torch.set_num_threads(threads)
    with tempfile.TemporaryDirectory() as store:
        began = time.perf_counter()
        LocalExecutor(Path(store), data_dir, "cpu", show_download_progress=False).run(graph)
        return time.perf_counter() - began


def ray_wall(graph: JobGraph, data_dir: Path | None, cpus_per_task: float) -> tuple[float, float]:
    """(seconds to start Ray, seconds to run the graph) on a fresh local instance."""
    began = time.perf_counter()
    ray.init(num_cpus=os.cpu_count(), include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    started = time.perf_counter()
    try:
        with tempfile.TemporaryDirectory() as store:
            RayExecutor(Path(store), data_dir, RayOptions(cpus_per_task=cpus_per_task, artifacts="shared")).run(graph)
    finally:
        ray.shutdown()
    return started - began, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", type=Path, help="the small spec (default: the demo's within-distribution experiment)")
    parser.add_argument("--data-dir", type=Path)
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    print(f"machine: {machine(torch.device('cpu'))}; ray {ray.__version__}", flush=True)

    tiny = expand(parse_experiment(TINY))
    local = local_wall(tiny, None, cores)
    start, ray_run = ray_wall(tiny, None, float(cores))
    jobs = len(tiny.jobs)
    print(f"tiny spec ({jobs} jobs): local {local:.1f} s; ray, one task at a time: start {start:.1f} s + run {ray_run:.1f} s"
          f" -> overhead per job {(ray_run - local) / jobs:.2f} s (start-up excluded), "
          f"{(start + ray_run - local) / jobs:.2f} s (included)", flush=True)

    if args.small is not None:
        small = expand(load_experiment(args.small))
    else:
        text = (resources.files("oneticket.experiments") / "builtin" / "demo_within_distribution.toml").read_text()
        small = expand(parse_experiment(text))
    name = small.experiments[0].name
    local = local_wall(small, args.data_dir, cores)
    print(f"{name} ({len(small.jobs)} jobs): local executor, {cores} threads: {local:.1f} s", flush=True)
    for workers in (1, 2):
        start, run = ray_wall(small, args.data_dir, cores / workers)
        print(f"{name}: ray, {workers} worker(s) x {cores // workers} thread(s): start {start:.1f} s + run {run:.1f} s "
              f"= {start + run:.1f} s ({local / (start + run):.2f}x the local executor)", flush=True)


if __name__ == "__main__":
    main()
