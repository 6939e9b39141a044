"""The pool executor: a job graph's tasks on a pool of worker processes on this machine.

Each worker is a process with its own PyTorch thread count (``threads_per_worker``, default 1),
so ``workers`` single-threaded processes use ``workers`` cores without any OpenMP team that can
stall: another busy process on the machine only takes its share of the CPU. Small models gain
too: two one-thread trainings side by side train more images per second than one two-thread
training. CPU results are bit-identical for the same ``threads_per_worker``, whatever the number
of workers (a task's numbers do not depend on where or beside what it runs).

The driver follows the task graph (:class:`~oneticket.experiments.schedule.Schedule`): at most
``workers`` tasks in flight, IMP levels first. Workers stream their progress events through a
queue; the driver alone writes the results index. Workers are forked from a server process that
has imported PyTorch but never run it (``forkserver``), so they start at once and inherit no
thread pool.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import signal
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from oneticket.data import ensure_dataset
from oneticket.errors import UserError
from oneticket.experiments.executor import JobEnded, JobStarted, Summary
from oneticket.experiments.graph import JobGraph
from oneticket.experiments.schedule import Schedule
from oneticket.experiments.store import ResultsIndex
from oneticket.experiments.tasks import Task, TaskEnded, task_graph
from oneticket.experiments.work import DataCache, TaskOutcome, run_task
from oneticket.files import storage_fault_message
from oneticket.tickets import EpochDone, Event, LevelFinished, LevelStarted, StepDone
from oneticket.training import Speed

POLL_SECONDS = 0.1  # how often the driver looks at the workers' progress while it waits


@dataclass(frozen=True)
class WorkerEvent:
    """A progress event of the task a worker process runs."""

    worker: int  # the worker's process id
    task: Task
    event: Event


PoolEvent = JobStarted | JobEnded | TaskEnded | WorkerEvent

# --- the worker side -----------------------------------------------------------------------------

_WORKER: dict[str, Any] = {}  # per worker process: its data cache and the driver's event queue


def _start_worker(data_dir: Path | None, device: str, threads: int, events: Any, driver: int) -> None:
    for stop in (signal.SIGINT, signal.SIGTERM):  # Ctrl-C and SIGTERM are the driver's: it stops the workers
        signal.signal(stop, signal.SIG_IGN)
    threading.Thread(target=_exit_with, args=(driver,), daemon=True).start()
    torch.set_num_threads(threads)
    _WORKER["cache"] = DataCache(data_dir, torch.device(device), show_progress=False)
    _WORKER["events"] = events


def _exit_with(driver: int) -> None:
    """End this worker once the driver is gone (killed with -9, it cannot stop its workers): a
    task in flight loses only its progress since its last checkpoint."""
    while True:
        time.sleep(DRIVER_CHECK_S)
        try:
            os.kill(driver, 0)
        except ProcessLookupError:
            os._exit(1)


DRIVER_CHECK_S = 1.0


def _shown(event: Event) -> bool:
    """The events worth a trip to the driver (not every step)."""
    return isinstance(event, (LevelStarted, EpochDone, LevelFinished)) or (isinstance(event, StepDone) and event.loss is not None)


def _run_in_worker(task: Task, store: str, speed: Speed) -> tuple[TaskOutcome, float, str]:
    began = time.perf_counter()
    events, pid = _WORKER["events"], os.getpid()

    def forward(event: Event) -> None:
        if _shown(event):
            events.put(WorkerEvent(pid, task, event))

    outcome = run_task(task, Path(store), _WORKER["cache"], speed, forward)
    return outcome, time.perf_counter() - began, f"pid {pid}"


# --- the driver side -----------------------------------------------------------------------------

def default_workers() -> int:
    """The cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def _context() -> multiprocessing.context.BaseContext:
    if "forkserver" in multiprocessing.get_all_start_methods():
        context = multiprocessing.get_context("forkserver")
        # What every task would import on its first use: torch (with torch._dynamo, which the first
        # optimizer pulls in) and scikit-learn (digits).
        context.set_forkserver_preload(["oneticket.experiments.work", "torch._dynamo", "sklearn.datasets"])
        return context
    return multiprocessing.get_context("spawn")


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, BrokenProcessPool):
        return "a worker process died (killed, or out of memory); rerun the same command to continue"
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[-1] if text else ''}".strip(": ")


class PoolExecutor:
    """Runs a job graph on ``workers`` processes here; same interface as the local executor."""

    def __init__(self, store: Path, data_dir: Path | None = None, device: torch.device | str = "cpu",
                 workers: int | None = None, threads_per_worker: int = 1,
                 on_event: Callable[[PoolEvent], None] = lambda _: None, speed: Speed | None = None):
        self.store = Path(store).expanduser()
        self.data_dir = Path(data_dir).expanduser().resolve() if data_dir else None
        self.device = str(torch.device(device))
        self.workers = workers or default_workers()
        self.threads_per_worker = threads_per_worker
        if self.workers < 1 or self.threads_per_worker < 1:
            raise UserError(f"workers and threads per worker must be at least 1, got {self.workers} and {self.threads_per_worker}")
        self.speed = speed or Speed()
        self.emit = on_event
        self.index = ResultsIndex(self.store)
        self._events: Any = None

    def run(self, graph: JobGraph) -> Summary:
        began = time.perf_counter()
        for spec in graph.experiments:
            self.index.record_experiment(spec.name, graph.jobs)
        tasks = task_graph(graph, self.store)
        self._download_first(tasks.tasks.values())
        context = _context()
        self._events = context.Queue()
        pool = ProcessPoolExecutor(max_workers=min(self.workers, max(1, len(tasks.tasks))), mp_context=context,
                                   initializer=_start_worker,
                                   initargs=(self.data_dir, self.device, self.threads_per_worker, self._events, os.getpid()))
        store = str(self.store.resolve())
        try:
            schedule = Schedule(graph, tasks, self.store, self.index, self.emit,
                                lambda task: _submit(pool, task, store, self.speed), capacity=self.workers)
            summary = schedule.run(self._wait, self._collect)
        except BaseException:
            _stop(pool)
            raise
        pool.shutdown(wait=True)
        self._forward_events()
        summary.seconds = time.perf_counter() - began
        return summary

    def _download_first(self, tasks: Iterable[Task]) -> None:
        """Fetch missing dataset files here, with a progress bar, before any worker needs them; a
        dataset that cannot be had stops the run before it starts, in one line."""
        for dataset in sorted({task.job.spec.dataset for task in tasks}):
            ensure_dataset(dataset, self.data_dir)

    def _forward_events(self) -> None:
        while True:
            try:
                self.emit(self._events.get_nowait())
            except queue.Empty:
                return

    def _wait(self, futures: list[Future]) -> Future:
        while True:
            done, _ = wait(futures, timeout=POLL_SECONDS, return_when=FIRST_COMPLETED)
            self._forward_events()
            if done:
                return next(iter(done))

    def _collect(self, task: Task, future: Future) -> TaskEnded:
        try:
            outcome, seconds, where = future.result()
        except KeyboardInterrupt:
            raise
        except UserError as exc:
            return TaskEnded(task, "failed", 0.0, message=str(exc))
        except OSError as exc:  # disk full, permissions: the same one line as the in-process executor gives
            return TaskEnded(task, "failed", 0.0, message=storage_fault_message(exc) or _one_line(exc))
        except BaseException as exc:  # a worker died or the task raised: report it, the graph goes on
            return TaskEnded(task, "failed", 0.0, message=_one_line(exc))
        self._forward_events()
        return TaskEnded(task, "failed" if outcome.failure else "done", seconds, outcome.results, outcome.failure,
                         where, outcome.resumed_epoch)


def _submit(pool: ProcessPoolExecutor, task: Task, store: str, speed: Speed) -> Future:
    """The task's future; once a worker has died the pool takes nothing more, and every task
    submitted after that fails with that reason."""
    try:
        return pool.submit(_run_in_worker, task, store, speed)
    except BrokenProcessPool as exc:
        failed: Future = Future()
        failed.set_exception(exc)
        return failed


def _stop(pool: ProcessPoolExecutor) -> None:
    """Stop at once: queued tasks cancelled, running ones killed (their checkpoints stay; every
    file is written atomically, so a killed task leaves no half-written one)."""
    processes = list((getattr(pool, "_processes", None) or {}).values())  # shutdown() forgets them
    for process in processes:
        process.kill()
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        process.join(timeout=10)
