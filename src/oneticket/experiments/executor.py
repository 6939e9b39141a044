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

from oneticket.experiments.graph import ImpJob, Job, JobGraph
from oneticket.experiments.plan import JobStatus, job_status
from oneticket.experiments.store import ResultsIndex
from oneticket.experiments.work import DataCache, job_directory, run_job
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
        self.index.record_job(job.id, job_kind(job), job.spec.model_dump(), job_directory(job, self.store))
        return run_job(job, self.store, self.data, self.speed, self._recorder(job.id)).failure

    def _recorder(self, job_id: str) -> Callable[[Event], None]:
        def forward(event: Event) -> None:
            if isinstance(event, LevelFinished) and not event.skipped:
                self.index.record_result(job_id, event.result)
            self.emit(event)
        return forward
