"""The job graph: an experiment spec expanded into IMP runs and ticket trainings.

Every job is identified by the content hash of its full spec (an IMP run by its run id, a
training by its job id), so the same job reached from two experiments is one job: the
across-optimizers and across-datasets experiments share their VGG19 / CIFAR-10 / SGD IMP run. A
training of level ``l`` depends on the ticket of level ``l`` of its source run.

Alongside the jobs, the graph keeps the *series* each experiment plots: one per (model, target,
train optimizer, seed, line), each a list of (level, job) points.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from pydantic import ValidationError

from oneticket.errors import UserError

from oneticket.experiments.spec import RANDOM_BASELINES, ExperimentSpec, ModelChoice, Source
from oneticket.tickets import ImpSpec, TicketInfo, TrainSpec, variant

T = TypeVar("T")


@dataclass(frozen=True)
class ImpJob:
    spec: ImpSpec

    @property
    def id(self) -> str:
        return f"imp-{self.spec.run_id()}"

    @property
    def levels(self) -> int:
        return self.spec.levels

    @property
    def trainings(self) -> int:
        return self.spec.levels + 1

    @property
    def epochs_per_training(self) -> int:
        return self.spec.num_epochs

    def describe(self) -> str:
        s = self.spec
        return f"IMP {s.model} w{s.width:g} on {s.dataset} ({s.optimizer}), levels 0-{s.levels}, seed {s.seed}"


@dataclass(frozen=True)
class TicketSource:
    """The run a trained ticket comes from: an IMP run of the graph, or a ticket file's metadata."""

    run_id: str
    model: str
    width: float
    model_options: tuple[tuple[str, Any], ...]
    dataset: str
    optimizer: str

    @classmethod
    def of_run(cls, spec: ImpSpec) -> TicketSource:
        options = tuple(sorted(spec.resolved_model_options().items()))
        return cls(spec.run_id(), spec.model, spec.width, options, spec.dataset, spec.optimizer)

    @classmethod
    def of_ticket(cls, info: TicketInfo) -> TicketSource:
        options = tuple(sorted(info.model_options.items()))
        return cls(info.run_id, info.model, info.width, options, info.dataset, info.optimizer)


@dataclass(frozen=True)
class TrainJob:
    spec: TrainSpec
    source: TicketSource
    ticket_file: Path | None = None  # where the ticket is, when it is not in the store

    @property
    def id(self) -> str:
        return f"train-{self.spec.job_id()}"

    @property
    def depends_on(self) -> tuple[str, int]:
        """(IMP job id, level) whose ticket this training needs."""
        return f"imp-{self.spec.source}", self.spec.level

    @property
    def trainings(self) -> int:
        return 1

    @property
    def epochs_per_training(self) -> int:
        return self.spec.num_epochs

    def describe(self) -> str:
        s = self.spec
        return (f"{s.kind} {self.source.dataset} ({self.source.optimizer}) level {s.level} -> "
                f"{s.dataset} ({s.optimizer}), seed {s.seed}")


Job = ImpJob | TrainJob


@dataclass(frozen=True)
class Point:
    level: int
    job_id: str  # an ImpJob (its level's result) or a TrainJob


@dataclass(frozen=True)
class Series:
    """One line of one panel for one seed."""

    experiment: str
    model: str
    target: str
    train_optimizer: str
    seed: int
    kind: str  # "own", "transfer", or a random-ticket variant
    source: str  # "cifar10 (sgd)" for tickets, the variant name for random baselines
    points: tuple[Point, ...]

    @property
    def label(self) -> str:
        if self.kind == "own":
            return f"own ticket: {self.source}"
        if self.kind == "transfer":
            return f"ticket from {self.source}"
        return f"{self.kind} ticket"

    @property
    def panel(self) -> tuple[str, str, str]:
        return self.model, self.target, self.train_optimizer


@dataclass
class JobGraph:
    jobs: dict[str, Job] = field(default_factory=dict)
    series: list[Series] = field(default_factory=list)
    experiments: list[ExperimentSpec] = field(default_factory=list)

    def add(self, job: Job) -> str:
        """Add ``job`` unless an identical job is there; an IMP run keeps the most levels asked."""
        known = self.jobs.get(job.id)
        if isinstance(job, ImpJob) and isinstance(known, ImpJob) and known.levels < job.levels:
            self.jobs[job.id] = job
        elif known is None:
            self.jobs[job.id] = job
        return job.id

    def ordered(self) -> list[Job]:
        """Dependency order: every IMP run, then trainings by level (cheap early levels first)."""
        imps = [j for j in self.jobs.values() if isinstance(j, ImpJob)]
        trainings = [j for j in self.jobs.values() if isinstance(j, TrainJob)]
        return [*imps, *sorted(trainings, key=lambda j: j.spec.level)]

    def imp_jobs(self) -> Iterator[ImpJob]:
        return (j for j in self.jobs.values() if isinstance(j, ImpJob))


def _built(spec: ExperimentSpec, make: Callable[[], T]) -> T:
    """A job spec made from an experiment spec; what only the job spec can check (a warm-up
    longer than the model's training, say) becomes a one-line error naming the experiment."""
    try:
        return make()
    except ValidationError as exc:
        message = "; ".join(error["msg"].removeprefix("Value error, ") for error in exc.errors())
        raise UserError(f"experiment {spec.name}: {message}") from None


def imp_spec(spec: ExperimentSpec, model: ModelChoice, source: Source, seed: int) -> ImpSpec:
    return _built(spec, lambda: _imp_spec(spec, model, source, seed))


def _imp_spec(spec: ExperimentSpec, model: ModelChoice, source: Source, seed: int) -> ImpSpec:
    scale, pruning = model.scale(spec.scale), spec.pruning
    return ImpSpec(
        model=model.name, width=scale.width, stem=model.stem, dataset=source.dataset, train_size=scale.train_size,
        optimizer=source.optimizer, epochs=scale.epochs, batch_size=scale.batch_size, levels=pruning.levels,
        rate=pruning.rate, layerwise=pruning.layerwise, prune_output=pruning.prune_output, rewind=pruning.rewind,
        seed=seed, precision=scale.precision, lr=scale.lr_for(source.optimizer), lr_scaling=scale.lr_scaling,
        warmup=scale.warmup, augment=scale.augment,
    )


def train_spec(spec: ExperimentSpec, model: ModelChoice, source: ImpSpec, level: int, target: str,
               optimizer: str, seed: int, kind: str) -> TrainSpec:
    scale = model.scale(spec.scale)
    mask, weights = variant(kind)
    return _built(spec, lambda: TrainSpec(
        source=source.run_id(), level=level, model=model.name, dataset=target, optimizer=optimizer,
        epochs=scale.epochs, batch_size=scale.batch_size, train_size=scale.train_size, seed=seed,
        mask=mask, weights=weights, precision=scale.precision, lr=scale.lr_for(optimizer), lr_scaling=scale.lr_scaling,
        warmup=scale.warmup, augment=scale.augment,
    ))


def _imp_series(graph: JobGraph, spec: ExperimentSpec, model: ModelChoice, panel: tuple[str, str], seed: int,
                kind: str, source: Source) -> None:
    run = imp_spec(spec, model, source, seed)
    job_id = graph.add(ImpJob(run))
    points = tuple(Point(level, job_id) for level in range(spec.pruning.levels + 1))  # every level: they cost nothing more
    graph.series.append(Series(spec.name, model.label, *panel, seed, kind, source.label, points))


def _training_series(graph: JobGraph, spec: ExperimentSpec, model: ModelChoice, panel: tuple[str, str], seed: int,
                     kind: str, source: Source) -> None:
    run = imp_spec(spec, model, source, seed)
    graph.add(ImpJob(run))
    target, optimizer = panel
    points = []
    for level in spec.pruning.levels_to_train:
        job = TrainJob(train_spec(spec, model, run, level, target, optimizer, seed, kind), TicketSource.of_run(run))
        points.append(Point(level, graph.add(job)))
    label = source.label if kind == "transfer" else kind
    graph.series.append(Series(spec.name, model.label, *panel, seed, kind, label, tuple(points)))


def expand(spec: ExperimentSpec, graph: JobGraph | None = None) -> JobGraph:
    """Add ``spec``'s jobs and series to ``graph`` (a new one by default)."""
    graph = graph if graph is not None else JobGraph()
    graph.experiments.append(spec)
    for model in spec.models:
        for seed in spec.seeds:
            for target in spec.targets:
                for optimizer in spec.train_optimizers:
                    panel = (target, optimizer)
                    own = Source(dataset=target, optimizer=optimizer)
                    for source in spec.sources:
                        if source == own:
                            continue
                        _training_series(graph, spec, model, panel, seed, "transfer", source)
                    if "own" in spec.baselines or own in spec.sources:
                        _imp_series(graph, spec, model, panel, seed, "own", own)
                    compared = own if "own" in spec.baselines or own in spec.sources else spec.sources[0]
                    for kind in RANDOM_BASELINES:
                        if kind in spec.baselines:
                            _training_series(graph, spec, model, panel, seed, kind, compared)
    return graph


def expand_all(specs: Iterable[ExperimentSpec]) -> JobGraph:
    """One graph for several experiments; identical jobs are one job."""
    graph = JobGraph()
    for spec in specs:
        expand(spec, graph)
    return graph
