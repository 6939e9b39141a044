"""Running one job (or one IMP level of it) in a store: the code every executor calls.

The local executor calls it in its own process; the Ray executor calls it in a worker. It loads
the job's data through a :class:`DataCache`, holds the job directory's lock, resumes from
checkpoints, and returns what it finished; recording results in the index is the caller's part.
A task whose folder another process holds waits for it, then reads back or resumes its work.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from oneticket.data import DeviceData, load_dataset
from oneticket.errors import UserError
from oneticket.experiments.graph import ImpJob, Job, TrainJob
from oneticket.files import DirectoryBusy, claimed, wait_until_free
from oneticket.tickets import (
    Event,
    EventSink,
    ImpRun,
    LevelResult,
    LevelStarted,
    RunDir,
    TrainingDir,
    find_ticket_file,
    ignore_event,
    load_ticket,
    runs_root,
    train_ticket,
    trainings_root,
)
from oneticket.training import Speed

if TYPE_CHECKING:
    from oneticket.experiments.tasks import Task

log = logging.getLogger("oneticket")


@dataclass(frozen=True)
class JobOutcome:
    results: list[LevelResult]  # the levels (IMP) or the training it finished or found finished
    failure: str | None = None  # why the job cannot go on (a diverged level, a missing ticket)


class DataCache:
    """The datasets of recent jobs, kept on the device (at most ``size`` at a time)."""

    def __init__(self, data_dir: Path | None, device: torch.device, show_progress: bool, size: int = 2):
        self.data_dir, self.device, self.show_progress, self.size = data_dir, device, show_progress, size
        self.entries: dict[tuple[object, ...], DeviceData] = {}

    def get(self, dataset: str, train_size: int | None, subset_seed: int, batch_size: int) -> DeviceData:
        key = (dataset, train_size, subset_seed if train_size is not None else None, batch_size)  # the seed only picks subsets
        if key not in self.entries:
            while len(self.entries) >= self.size:
                self.entries.pop(next(iter(self.entries)))
            loaded = load_dataset(dataset, self.data_dir, train_size, subset_seed, show_progress=self.show_progress)
            self.entries[key] = DeviceData(loaded, self.device, batch_size)
        return self.entries[key]


def job_directory(job: Job, store: Path) -> Path:
    if isinstance(job, ImpJob):
        return RunDir.for_spec(store, job.spec).root
    return trainings_root(store) / job.spec.job_id()


def run_imp(job: ImpJob, store: Path, data: DataCache, speed: Speed, on_event: EventSink = ignore_event,
            through_level: int | None = None) -> JobOutcome:
    """Run (or resume) the IMP run of ``job`` through ``through_level`` (default: all its levels)."""
    spec = job.spec
    if through_level is not None:
        spec = spec.model_copy(update={"levels": through_level})  # levels are not hashed: the same run
    run_dir = RunDir.for_spec(store, spec)
    with claimed(run_dir.root, "run"):
        run_dir.write_or_check_spec(spec)
        device_data = data.get(spec.dataset, spec.train_size, spec.seeds()["subset"], spec.batch_size)
        results = ImpRun(spec, run_dir, device_data, on_event, speed).run()
    last = results[-1]
    return JobOutcome(results, last.message if last.diverged else None)


def run_training(job: TrainJob, store: Path, data: DataCache, speed: Speed, on_event: EventSink = ignore_event) -> JobOutcome:
    """Train (or resume, or read back) the ticket training of ``job``."""
    spec = job.spec
    ticket_file = job.ticket_file or find_ticket_file(store, spec.source, spec.level)
    if ticket_file is None:
        return JobOutcome([], f"no ticket of level {spec.level} in run {spec.source}: its IMP run stopped before "
                              f"that level (see {runs_root(store) / spec.source})")
    directory = TrainingDir(trainings_root(store) / spec.job_id())
    with claimed(directory.root, "training"):
        seeds = spec.seeds()
        device_data = data.get(spec.dataset, spec.train_size, seeds["subset"], spec.batch_size)
        ticket = load_ticket(ticket_file)
        if ticket.info.run_id != spec.source or ticket.info.level != spec.level:
            raise UserError(f"{ticket_file} holds the ticket of run {ticket.info.run_id} level {ticket.info.level}, "
                            f"not of run {spec.source} level {spec.level}; remove it and rerun")
        result = train_ticket(spec, ticket, directory, device_data, on_event, speed)
    return JobOutcome([result], result.message if result.diverged else None)


def run_job(job: Job, store: Path, data: DataCache, speed: Speed, on_event: EventSink = ignore_event,
            through_level: int | None = None) -> JobOutcome:
    if isinstance(job, ImpJob):
        return run_imp(job, store, data, speed, on_event, through_level)
    return run_training(job, store, data, speed, on_event)


@dataclass(frozen=True)
class TaskOutcome:
    results: tuple[LevelResult, ...]  # what the task finished (an IMP task: its level only)
    failure: str | None
    resumed_epoch: int  # the checkpointed epoch its training resumed after (0: from the start)


def run_task(task: Task, store: Path, data: DataCache, speed: Speed, on_event: EventSink = ignore_event) -> TaskOutcome:
    """Run one task of a task graph (an IMP level, or a ticket training) in ``store``."""
    starts: list[int] = []

    def note_resume(event: Event) -> None:
        if isinstance(event, LevelStarted) and (task.level is None or event.level == task.level):
            starts.append(event.resumed_epoch)
        on_event(event)

    while True:
        try:
            outcome = run_job(task.job, store, data, speed, note_resume, through_level=task.level)
            break
        except DirectoryBusy as busy:  # another process (another 'oneticket run' on this store) has it
            log.warning("%s; waiting for it", str(busy).split(";")[0])
            wait_until_free(job_directory(task.job, store))  # then read its result back, or resume it
    finished = tuple(r for r in outcome.results if task.level is None or r.level == task.level)
    return TaskOutcome(finished, outcome.failure, starts[0] if starts else 0)
