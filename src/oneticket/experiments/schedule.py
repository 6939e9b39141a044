"""The driver's bookkeeping for executors that run many tasks at once (Ray, a pool of processes).

A :class:`Schedule` follows a task graph (:mod:`oneticket.experiments.tasks`): a task starts once
the tasks it needs have finished, a task whose need failed fails too, and every finished level or
training goes to the results index at once (only the driver writes it). With a ``capacity`` it
keeps at most that many tasks in flight and starts the most urgent first: IMP levels before
trainings (they unlock the trainings), lower levels first. Without one, every ready task is
handed over (Ray places them itself).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from pathlib import Path

from oneticket.experiments.executor import JobEnded, JobStarted, Summary, job_kind
from oneticket.experiments.graph import ImpJob, Job, JobGraph
from oneticket.experiments.plan import job_status
from oneticket.experiments.store import ResultsIndex
from oneticket.experiments.tasks import Task, TaskEnded, TaskGraph
from oneticket.experiments.work import job_directory

ScheduleEvent = JobStarted | JobEnded | TaskEnded
Handle = Hashable  # what ``submit`` returns for a task in flight (a Ray object ref, a future)


NEEDS_FAILED = "which failed"  # how the reason of a task that was not run (a task it needs failed) ends


def waited_on_failure(message: str | None) -> bool:
    """Whether a failed task's message says it only waited on a task that failed (no cause of its own)."""
    return (message or "").endswith(NEEDS_FAILED)


def urgency(task: Task, position: int) -> tuple[int, int, int]:
    """Sort key: IMP levels first (each one unlocks a level's trainings and the next level), then
    lower levels, then the graph's order."""
    level = task.level if task.level is not None else getattr(task.job.spec, "level", 0)
    return (0 if isinstance(task.job, ImpJob) else 1, level, position)


class Schedule:
    """Which tasks may start, which jobs are over, what goes to the index."""

    def __init__(self, graph: JobGraph, tasks: TaskGraph, store: Path, index: ResultsIndex,
                 emit: Callable[[ScheduleEvent], None], submit: Callable[[Task], Handle], capacity: int | None = None):
        self.graph, self.tasks, self.store, self.index, self.emit, self.submit = graph, tasks, store, index, emit, submit
        self.capacity = capacity
        self.waiting = dict(tasks.needs)
        self.order = {key: i for i, key in enumerate(tasks.tasks)}
        self.in_flight: dict[Handle, Task] = {}
        self.failed_tasks: set[str] = set()
        self.left_per_job: dict[str, int] = {}
        for task in tasks.tasks.values():
            self.left_per_job[task.job.id] = self.left_per_job.get(task.job.id, 0) + 1
        self.job_began: dict[str, float] = {}
        self.job_failure: dict[str, str] = {}
        self.position = {job.id: i for i, job in enumerate(graph.ordered(), 1)}
        self.summary = Summary(skipped=len(tasks.jobs_finished))

    def run(self, wait: Callable[[list[Handle]], Handle], collect: Callable[[Task, Handle], TaskEnded]) -> Summary:
        """Drive the graph to its end: ``wait`` returns one finished handle, ``collect`` its report."""
        began = time.perf_counter()
        for job_id in self.tasks.jobs_finished:
            self.emit(JobEnded(self.graph.jobs[job_id], "skipped", 0.0))
        self.submit_ready()
        while self.in_flight:
            handle = wait(list(self.in_flight))
            task = self.in_flight.pop(handle)
            self.finish(task, collect(task, handle))
            self.submit_ready()
        assert not self.waiting, f"tasks never became ready: {sorted(self.waiting)}"
        self.summary.seconds = time.perf_counter() - began
        return self.summary

    def _ready(self) -> list[str]:
        pending = set(self.waiting) | {t.key for t in self.in_flight.values()}
        ready = [k for k, needs in self.waiting.items() if not any(n in pending for n in needs)]
        return sorted(ready, key=lambda k: urgency(self.tasks.tasks[k], self.order[k]))

    def submit_ready(self) -> None:
        """Start ready tasks (up to the capacity); fail those whose needs failed (repeatedly: chains)."""
        changed = True
        while changed:
            changed = False
            for key in self._ready():
                task = self.tasks.tasks[key]
                blocked = [n for n in self.tasks.needs[key] if n in self.failed_tasks]
                if not blocked and self.capacity is not None and len(self.in_flight) >= self.capacity:
                    continue
                changed = True
                del self.waiting[key]
                if blocked:
                    why = f"needs {self.tasks.tasks[blocked[0]].describe()}, {NEEDS_FAILED}"
                    self.finish(task, TaskEnded(task, "failed", 0.0, message=why))
                    continue
                self.start_job(task.job)
                self.in_flight[self.submit(task)] = task

    def start_job(self, job: Job) -> None:
        if job.id in self.job_began:
            return
        self.job_began[job.id] = time.perf_counter()
        self.emit(JobStarted(job, self.position[job.id], len(self.position), job_status(job, self.store)))
        self.index.record_job(job.id, job_kind(job), job.spec.model_dump(), job_directory(job, self.store))

    def finish(self, task: Task, ended: TaskEnded) -> None:
        job = task.job
        if ended.state == "failed":
            self.failed_tasks.add(task.key)
            message = ended.message or "failed"
            if job.id not in self.job_failure or waited_on_failure(self.job_failure[job.id]):
                self.job_failure[job.id] = message  # a cause of its own outranks having waited on another's
        for result in ended.results:
            self.index.record_result(job.id, result)
        self.emit(ended)
        self.left_per_job[job.id] -= 1
        if self.left_per_job[job.id] > 0:
            return
        seconds = time.perf_counter() - self.job_began.get(job.id, time.perf_counter())
        if job.id in self.job_failure:
            self.summary.failed.append((job, self.job_failure[job.id]))
            self.emit(JobEnded(job, "failed", seconds, self.job_failure[job.id]))
        else:
            self.summary.done += 1
            self.emit(JobEnded(job, "done", seconds))
