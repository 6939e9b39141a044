"""The local executor: runs a job graph on this machine, in dependency order.

Finished jobs are skipped, partial ones resume from their checkpoints (each IMP level and each
training checkpoints every epoch), and every finished level or training is recorded in the
results index at once. A job whose ticket can never exist (its IMP run diverged before that level)
is reported as failed and the rest of the graph goes on. Datasets are loaded once and kept on the
device while consecutive jobs use them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from oneticket.data import DeviceData, load_dataset
from oneticket.errors import UserError
from oneticket.experiments.graph import ImpJob, Job, JobGraph, TrainJob
from oneticket.experiments.plan import JobStatus, job_status
from oneticket.experiments.store import ResultsIndex
from oneticket.files import DirectoryLock
from oneticket.training import Speed
from oneticket.tickets import (
    Event,
    ImpRun,
    LevelFinished,
    RunDir,
    TrainingDir,
    find_ticket_file,
    load_ticket,
    runs_root,
    train_ticket,
    trainings_root,
)


@dataclass(frozen=True)
class JobStarted:
    job: Job
    position: int  # 1-based among the jobs of the graph
    total: int
    status: JobStatus  # before it starts


@dataclass(frozen=True)
class JobEnded:
    job: Job
    state: str  # done, failed, skipped (finished earlier)
    seconds: float
    message: str | None = None


ExecutorEvent = JobStarted | JobEnded | Event
Sink = Callable[[ExecutorEvent], None]


def _ignore(_: ExecutorEvent) -> None:
    pass


@dataclass
class Summary:
    done: int = 0
    skipped: int = 0
    failed: list[tuple[Job, str]] = field(default_factory=list)
    seconds: float = 0.0


class DataCache:
    """The datasets of recent jobs, kept on the device (at most ``size`` at a time)."""

    def __init__(self, data_dir: Path | None, device: torch.device, show_progress: bool, size: int = 2):
        self.data_dir, self.device, self.show_progress, self.size = data_dir, device, show_progress, size
        self.entries: dict[tuple[object, ...], DeviceData] = {}

    def get(self, dataset: str, train_size: int | None, subset_seed: int, batch_size: int) -> DeviceData:
        key = (dataset, train_size, subset_seed, batch_size)
        if key not in self.entries:
            while len(self.entries) >= self.size:
                self.entries.pop(next(iter(self.entries)))
            loaded = load_dataset(dataset, self.data_dir, train_size, subset_seed, show_progress=self.show_progress)
            self.entries[key] = DeviceData(loaded, self.device, batch_size)
        return self.entries[key]


class LocalExecutor:
    def __init__(self, store: Path, data_dir: Path | None = None, device: torch.device | str = "cpu",
                 on_event: Sink = _ignore, show_download_progress: bool = True, speed: Speed | None = None):
        self.store = Path(store).expanduser()
        self.speed = speed or Speed()
        self.device = torch.device(device)
        self.emit = on_event
        self.index = ResultsIndex(self.store)
        self.data = DataCache(data_dir, self.device, show_download_progress)

    def run(self, graph: JobGraph) -> Summary:
        """Run every job that is not finished; return what happened."""
        for spec in graph.experiments:
            self.index.record_experiment(spec.name, graph.jobs)
        summary = Summary()
        began = time.perf_counter()
        jobs = graph.ordered()
        for position, job in enumerate(jobs, 1):
            status = job_status(job, self.store)
            self.emit(JobStarted(job, position, len(jobs), status))
            if status.finished:
                summary.skipped += 1
                self.emit(JobEnded(job, "skipped", 0.0))
                continue
            started = time.perf_counter()
            failure = self.run_job(job)
            if failure is None:
                summary.done += 1
            else:
                summary.failed.append((job, failure))
            self.emit(JobEnded(job, "failed" if failure else "done", time.perf_counter() - started, failure))
        summary.seconds = time.perf_counter() - began
        return summary

    def run_job(self, job: Job) -> str | None:
        """Run one job; returns why it failed, or None."""
        if isinstance(job, ImpJob):
            return self.run_imp(job)
        return self.run_training(job)

    def _recorder(self, job_id: str) -> Callable[[Event], None]:
        def forward(event: Event) -> None:
            if isinstance(event, LevelFinished) and not event.skipped:
                self.index.record_result(job_id, event.result)
            self.emit(event)
        return forward

    def run_imp(self, job: ImpJob) -> str | None:
        spec = job.spec
        run_dir = RunDir.for_spec(self.store, spec)
        with DirectoryLock(run_dir.root, "run"):
            run_dir.write_or_check_spec(spec)
            self.index.record_job(job.id, "imp", spec.model_dump(), run_dir.root)
            data = self.data.get(spec.dataset, spec.train_size, spec.seeds()["subset"], spec.batch_size)
            results = ImpRun(spec, run_dir, data, self._recorder(job.id), self.speed).run()
        last = results[-1]
        return last.message if last.diverged else None

    def run_training(self, job: TrainJob) -> str | None:
        spec = job.spec
        ticket_file = job.ticket_file or find_ticket_file(self.store, spec.source, spec.level)
        if ticket_file is None:
            return (f"no ticket of level {spec.level} in run {spec.source}: its IMP run stopped before that level "
                    f"(see {runs_root(self.store) / spec.source})")
        directory = TrainingDir(trainings_root(self.store) / spec.job_id())
        with DirectoryLock(directory.root, "training"):
            self.index.record_job(job.id, spec.kind, spec.model_dump(), directory.root)
            seeds = spec.seeds()
            data = self.data.get(spec.dataset, spec.train_size, seeds["subset"], spec.batch_size)
            ticket = load_ticket(ticket_file)
            if ticket.info.run_id != spec.source or ticket.info.level != spec.level:
                raise UserError(f"{ticket_file} holds the ticket of run {ticket.info.run_id} level {ticket.info.level}, "
                                f"not of run {spec.source} level {spec.level}; remove it and rerun")
            result = train_ticket(spec, ticket, directory, data, self._recorder(job.id), self.speed)
        return result.message if result.diverged else None
