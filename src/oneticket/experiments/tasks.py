"""A job graph cut into tasks for executors that run many at once.

An IMP run of levels 0..L becomes L+1 tasks, one per level (task ``l`` trains level ``l`` and
needs task ``l-1``); a ticket training is one task and needs the IMP task of its level, because a
level's ticket is written when that level's training ends. So the trainings of level ``l`` can
start while the IMP run goes on to level ``l+1``. Finished levels and trainings (their
``result.json`` is in the store) are no tasks at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from oneticket.experiments.graph import ImpJob, Job, JobGraph, TrainJob
from oneticket.tickets import LevelResult, RunDir, TrainingDir, runs_root, trainings_root


@dataclass(frozen=True)
class Task:
    job: Job
    level: int | None = None  # the IMP level this task trains; None for a ticket training

    @property
    def key(self) -> str:
        return self.job.id if self.level is None else f"{self.job.id}@{self.level}"

    def describe(self) -> str:
        if isinstance(self.job, ImpJob):
            s = self.job.spec
            return f"{self.job.finder} {s.model} w{s.width:g} on {s.dataset} ({s.optimizer}), seed {s.seed}, level {self.level}"
        return self.job.describe()


@dataclass(frozen=True)
class TaskGraph:
    tasks: dict[str, Task]  # by key, in a good submission order
    needs: dict[str, tuple[str, ...]]  # key -> keys of the tasks it waits for
    jobs_finished: tuple[str, ...]  # job ids with nothing left to run


def _level_finished(store: Path, job: ImpJob, level: int) -> bool:
    return RunDir(runs_root(store) / job.spec.run_id()).result_file(level).exists()


def _training_finished(store: Path, job: TrainJob) -> bool:
    return TrainingDir(trainings_root(store) / job.spec.job_id()).result_file.exists()


def task_graph(graph: JobGraph, store: Path) -> TaskGraph:
    """The tasks still to run for ``graph`` given what ``store`` holds, and what each waits for."""
    tasks: dict[str, Task] = {}
    needs: dict[str, tuple[str, ...]] = {}
    finished: list[str] = []
    for job in graph.ordered():
        if isinstance(job, ImpJob):
            todo = [Task(job, level) for level in range(job.levels + 1) if not _level_finished(store, job, level)]
            dense = f"{job.dense_job}@0" if job.dense_job is not None else None  # its level 0 is that run's
            previous: str | None = dense if dense in tasks else None  # levels finish in order
            for task in todo:
                tasks[task.key] = task
                needs[task.key] = (previous,) if previous is not None else ()
                previous = task.key
            if not todo:
                finished.append(job.id)
        elif _training_finished(store, job):
            finished.append(job.id)
        else:
            task = Task(job)
            tasks[task.key] = task
            imp_id, level = job.depends_on
            upstream = f"{imp_id}@{level}"
            needs[task.key] = (upstream,) if upstream in tasks else ()
    return TaskGraph(tasks, needs, tuple(finished))


@dataclass(frozen=True)
class TaskEnded:
    """An executor's report that a task finished (``state`` done) or gave up (failed)."""

    task: Task
    state: str
    seconds: float
    results: tuple[LevelResult, ...] = ()  # what the task finished (not what it found finished)
    message: str | None = None
    where: str = ""  # the node or worker that ran it
    resumed_epoch: int = 0  # the checkpointed epoch its training resumed after (0: from the start)
