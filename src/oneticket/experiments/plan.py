"""What a job graph still needs: job states from the store, work left, and a time estimate.

Work is counted in trainings, epochs and images: a training of ``E`` epochs on ``N`` images costs
``E * N`` training images plus its passes over the test set (as often as the loop evaluates). The estimate divides that by the
training throughput measured on this machine for each (model, width, batch) (see
:mod:`oneticket.experiments.throughput`). Image counts are the official datasets' unless
:class:`DatasetSizes` is given a data directory whose files say otherwise (the real subsets in
``../shared/datasets``, say).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from oneticket.data import dataset_info, load_dataset
from oneticket.data.splits import half_indices
from oneticket.errors import UserError
from oneticket.experiments.graph import ImpJob, Job, JobGraph, TrainJob
from oneticket.tickets import LevelResult, RunDir, TrainingDir, find_ticket_file, runs_root, trainings_root
from oneticket.training import Speed
from oneticket.training.speed import eval_interval, evaluated_epochs

EVAL_COST = 1 / 3  # a test image costs about a third of a training image (forward only)

# (job) -> images per second for its model, width and batch size
Throughput = Callable[[Job], float]


@dataclass(frozen=True)
class JobStatus:
    job: Job
    state: str  # done, partial, todo, waiting (its ticket does not exist yet), failed (diverged / no ticket)
    trainings_done: int
    trainings_total: int
    epochs_left: int
    images_left: int  # training images plus weighted test images still to process
    seconds_left: float | None = None

    @property
    def finished(self) -> bool:
        return self.state in ("done", "failed")


class DatasetSizes:
    """(training, test) images of a dataset: counted in ``data_dir``'s files where they are there,
    else the official counts of the dataset registry."""

    def __init__(self, data_dir: Path | None = None):
        self.data_dir = data_dir
        self.counted: dict[str, tuple[int, int]] = {}
        self.labels: dict[str, tuple[np.ndarray, int] | None] = {}  # base dataset -> (training labels, test count)
        self.not_found: set[str] = set()  # base datasets not in data_dir: counted at their official size

    def __call__(self, dataset: str) -> tuple[int, int]:
        info = dataset_info(dataset)
        if self.data_dir is None:
            return info.train_count, info.test_count
        if dataset not in self.counted:
            base = info.parent or dataset  # a half: count in its parent's files, read once
            if base not in self.labels:
                try:
                    found = load_dataset(base, self.data_dir, download=False, show_progress=False)
                    self.labels[base] = (found.train_labels.numpy(), len(found.test_labels))
                except UserError:  # not in data_dir (yet): it will be downloaded, at its official size
                    self.labels[base] = None
                    self.not_found.add(base)
            known = self.labels[base]
            if known is None:
                self.counted[dataset] = (info.train_count, info.test_count)
            else:
                labels, test = known
                train = len(labels) if info.half is None else len(half_indices(labels, info.half))
                self.counted[dataset] = (train, test)
        return self.counted[dataset]


OFFICIAL_SIZES = DatasetSizes()


def train_images(dataset: str, train_size: int | None, sizes: DatasetSizes = OFFICIAL_SIZES) -> int:
    count = sizes(dataset)[0]
    return min(train_size, count) if train_size else count


def _cost_per_training(dataset: str, train_size: int | None, epochs: int, sizes: DatasetSizes = OFFICIAL_SIZES) -> int:
    """Training images plus weighted test images, with the default evaluation interval."""
    train, test = train_images(dataset, train_size, sizes), sizes(dataset)[1]
    evaluations = len(evaluated_epochs(epochs, eval_interval(Speed(), train, test)))
    return int(epochs * train + evaluations * EVAL_COST * test)


def imp_status(job: ImpJob, store_runs: RunDir, sizes: DatasetSizes = OFFICIAL_SIZES) -> JobStatus:
    results = store_runs.results()
    levels = job.levels + 1
    finished = min(len(results), levels)
    diverged = any(r.diverged for r in results)
    partial = finished > 0 or any(store_runs.checkpoint_file(level).exists() for level in range(levels))
    state = "failed" if diverged else "done" if finished >= levels else "partial" if partial else "todo"
    shared = 1 if job.spec.shares_dense_run else 0  # level 0 taken from the dense run: no training
    done = max(finished - shared, 0)
    left = [] if state in ("done", "failed") else list(range(finished, levels))
    epochs = sum(job.level_epochs(level) for level in left)
    cost = _cost_per_training(job.spec.dataset, job.spec.train_size, job.epochs_per_training, sizes)
    return JobStatus(job, state, done, job.trainings, epochs, round(cost * epochs / job.epochs_per_training))


def training_status(job: TrainJob, store: Path, sizes: DatasetSizes = OFFICIAL_SIZES) -> JobStatus:
    directory = TrainingDir(trainings_root(store) / job.spec.job_id())
    result = directory.read_result()
    cost = _cost_per_training(job.spec.dataset, job.spec.train_size, job.epochs_per_training, sizes)
    source = RunDir(runs_root(store) / job.spec.source)
    level_result = source.read_result(job.spec.level)
    if result is not None and not _trained_another_ticket(directory, job, level_result):
        return JobStatus(job, "failed" if result.diverged else "done", 1, 1, 0, 0)
    if level_result is not None and level_result.diverged:
        return JobStatus(job, "failed", 0, 1, 0, 0)
    ticket = job.ticket_file or find_ticket_file(store, job.spec.source, job.spec.level)
    state = "partial" if directory.checkpoint_file.exists() else "todo" if ticket is not None else "waiting"
    return JobStatus(job, state, 0, 1, job.epochs_per_training, cost)


def _trained_another_ticket(directory: TrainingDir, job: TrainJob, level_result: LevelResult | None) -> bool:
    """Whether a finished training's recorded ticket differs from the ticket the job names now (a
    source level computed again, say): then it is to be trained again, never reused."""
    trained = directory.trained_ticket()
    current = job.spec.ticket or (level_result.ticket_sha256 if level_result is not None else None)
    return trained is not None and current is not None and trained != current


def job_status(job: Job, store: Path, sizes: DatasetSizes = OFFICIAL_SIZES) -> JobStatus:
    if isinstance(job, ImpJob):
        return imp_status(job, RunDir(runs_root(store) / job.spec.run_id()), sizes)
    return training_status(job, store, sizes)


@dataclass(frozen=True)
class Plan:
    statuses: list[JobStatus]

    @property
    def jobs_done(self) -> int:
        return sum(s.finished for s in self.statuses)

    @property
    def trainings_total(self) -> int:
        return sum(s.trainings_total for s in self.statuses)

    @property
    def trainings_left(self) -> int:
        return sum(0 if s.finished else s.trainings_total - s.trainings_done for s in self.statuses)

    @property
    def epochs_left(self) -> int:
        return sum(s.epochs_left for s in self.statuses)

    @property
    def seconds_left(self) -> float | None:
        if any(s.seconds_left is None and not s.finished for s in self.statuses):
            return None
        return sum(s.seconds_left or 0.0 for s in self.statuses)

    @property
    def failed(self) -> list[JobStatus]:
        return [s for s in self.statuses if s.state == "failed"]


@dataclass(frozen=True)
class FinderCost:
    """Per model, ticket source and finder (over seeds): epochs of training to find the tickets (the
    costliest one of each run) and to train them (own levels, and on every other target)."""

    model: str
    source: str  # "cifar10 (sgd)"
    finder: str  # "IMP", "snip", "imp, masks from 5 ep"
    runs: int
    find_epochs: float
    evaluate_epochs: int


def finder_costs(graph: JobGraph) -> list[FinderCost]:
    """What each source and finder costs, split into finding and evaluating (planned, in epochs)."""
    imps = [job for job in graph.ordered() if isinstance(job, ImpJob)]
    bases = {job.dense_job for job in imps}  # IMP runs there only for their dense level: no tickets of their own
    runs = [job for job in imps if not (job.spec.levels == 0 and job.id in bases)]
    trainings: dict[str, int] = {}
    for job in graph.jobs.values():
        if isinstance(job, TrainJob) and job.spec.kind == "transfer":
            key = f"imp-{job.spec.source}"
            trainings[key] = trainings.get(key, 0) + job.spec.num_epochs
    grouped: dict[tuple[str, str, str], list[ImpJob]] = {}
    for job in runs:
        s = job.spec
        grouped.setdefault((s.model, f"{s.dataset} ({s.optimizer})", job.finder), []).append(job)
    return [FinderCost(model, source, finder, len(jobs), sum(j.find_epochs() for j in jobs),
                       sum(j.spec.num_epochs * j.trainings + trainings.get(j.id, 0) for j in jobs))
            for (model, source, finder), jobs in grouped.items()]


def make_plan(graph: JobGraph, store: Path, throughput: Throughput | None = None,
              sizes: DatasetSizes = OFFICIAL_SIZES) -> Plan:
    """Each job's state and the work left; seconds too when a ``throughput`` is given."""
    statuses = []
    for job in graph.ordered():
        status = job_status(job, store, sizes)
        if throughput is not None and not status.finished:
            status = JobStatus(**{**status.__dict__, "seconds_left": status.images_left / throughput(job)})
        statuses.append(status)
    return Plan(statuses)
