"""The local executor: runs a job graph on this machine, in dependency order.

Finished jobs are skipped, partial ones resume from their checkpoints (each IMP level and each
training checkpoints every epoch), and every finished level or training is recorded in the
results index at once. A job whose ticket can never exist (its IMP run diverged before that level)
is reported as failed and the rest of the graph goes on. Datasets are loaded once and kept on the
device while consecutive jobs use them. Several processes may run on one store: a job another
process holds (and any training that needs it) is put off until the jobs nobody holds are done,
then waited for and taken over if it is not finished, so each job is computed once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from oneticket.experiments.graph import ImpJob, Job, JobGraph, TrainJob
from oneticket.experiments.plan import JobStatus, job_status
from oneticket.experiments.store import ResultsIndex
from oneticket.experiments.work import DataCache, job_directory, run_job
from oneticket.files import DirectoryBusy, held_elsewhere, wait_until_free
from oneticket.tickets import Event, LevelFinished
from oneticket.training import Speed


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


def job_kind(job: Job) -> str:
    return "imp" if isinstance(job, ImpJob) else job.spec.kind


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
        held: dict[str, Job] = {}  # jobs another process holds, and the trainings that need them
        for position, job in enumerate(jobs, 1):
            needs = job.depends_on[0] if isinstance(job, TrainJob) else job.dense_job
            if needs in held or held_elsewhere(job_directory(job, self.store)) or not self._attempt(job, position, len(jobs), summary):
                held[job.id] = job  # do the jobs nobody holds first
        for position, job in enumerate(held.values(), len(jobs) - len(held) + 1):
            while True:  # then wait for each held one and take it over if it is not finished
                wait_until_free(job_directory(job, self.store))
                if self._attempt(job, position, len(jobs), summary):
                    break
        summary.seconds = time.perf_counter() - began
        return summary

    def _attempt(self, job: Job, position: int, count: int, summary: Summary) -> bool:
        """Run (or skip) one job; False, with nothing done, when another process holds it."""
        status = job_status(job, self.store)
        self.emit(JobStarted(job, position, count, status))
        if status.finished:
            summary.skipped += 1
            self.emit(JobEnded(job, "skipped", 0.0))
            return True
        started = time.perf_counter()
        try:
            failure = self.run_job(job)
        except DirectoryBusy:
            return False
        if failure is None:
            summary.done += 1
        else:
            summary.failed.append((job, failure))
        self.emit(JobEnded(job, "failed" if failure else "done", time.perf_counter() - started, failure))
        return True

    def run_job(self, job: Job) -> str | None:
        """Run one job; returns why it failed, or None."""
        self.index.record_job(job.id, job_kind(job), job.spec.model_dump(), job_directory(job, self.store))
        return run_job(job, self.store, self.data, self.speed, self._recorder(job.id)).failure

    def _recorder(self, job_id: str) -> Callable[[Event], None]:
        def forward(event: Event) -> None:
            if isinstance(event, LevelFinished) and not event.skipped:
                self.index.record_result(job_id, event.result)
            self.emit(event)
        return forward
