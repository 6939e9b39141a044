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
from oneticket.tickets import ImpSpec, TicketInfo, TrainSpec, parse_rewind, variant

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
        """Full trainings of its levels (a run sharing the dense run takes level 0 from it)."""
        return self.spec.levels + (0 if self.spec.shares_dense_run else 1)

    @property
    def epochs_per_training(self) -> int:
        return self.spec.num_epochs

    def level_epochs(self, level: int) -> int:
        """Epochs level ``level`` trains: none for a shared dense level; plus the short mask training
        of ``mask_epochs`` for IMP with short mask training."""
        if level == 0:
            return 0 if self.spec.shares_dense_run else self.spec.num_epochs
        return self.spec.num_epochs + (self.spec.mask_epochs or 0)

    def find_epochs(self) -> float:
        """Epochs of training that found its costliest ticket (the last level): IMP's levels
        before it; short mask trainings plus the rewind point; oneshot the dense run; the other
        finders the dense run up to the rewind point (their scoring passes are not counted here)."""
        s, last = self.spec, self.spec.levels
        rewind_count, unit = parse_rewind(s.rewind)
        rewind = float(rewind_count) if unit == "ep" else 0.0
        if s.finder == "imp":
            return rewind + last * s.mask_epochs if s.mask_epochs else float(last * s.num_epochs)
        return float(s.num_epochs) if s.finder == "oneshot" else rewind

    @property
    def dense_job(self) -> str | None:
        """The IMP job whose level 0 this run shares (a finder other than plain IMP), or None."""
        return f"imp-{self.spec.dense_spec().run_id()}" if self.spec.shares_dense_run else None

    @property
    def finder(self) -> str:
        """``IMP``, or the finder and its settings (``snip``, ``imp, masks from 5 ep``)."""
        return "IMP" if not self.spec.shares_dense_run else self.spec.finder_label

    def describe(self) -> str:
        s = self.spec
        return f"{self.finder} {s.model} w{s.width:g} on {s.dataset} ({s.optimizer}), levels 0-{s.levels}, seed {s.seed}"


@dataclass(frozen=True)
class TicketSource:
    """The run a trained ticket comes from: an IMP run of the graph, or a ticket file's metadata."""

    run_id: str
    model: str
    width: float
    model_options: tuple[tuple[str, Any], ...]
    dataset: str
    optimizer: str
    finder: str = "imp"

    @classmethod
    def of_run(cls, spec: ImpSpec) -> TicketSource:
        options = tuple(sorted(spec.resolved_model_options().items()))
        return cls(spec.run_id(), spec.model, spec.width, options, spec.dataset, spec.optimizer, spec.finder_label)

    @classmethod
    def of_ticket(cls, info: TicketInfo) -> TicketSource:
        options = tuple(sorted(info.model_options.items()))
        return cls(info.run_id, info.model, info.width, options, info.dataset, info.optimizer, info.finder)


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
        finder = "" if self.source.finder == "imp" else f", {self.source.finder}"
        return (f"{s.kind} {self.source.dataset} ({self.source.optimizer}{finder}) level {s.level} -> "
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
    finder: str = "imp"  # the finder of the ticket (a random baseline: of the ticket it permutes), with its settings

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
        """Dependency order: every IMP run (those that share another's dense run after it), then
        trainings by level (cheap early levels first)."""
        imps = sorted((j for j in self.jobs.values() if isinstance(j, ImpJob)), key=lambda j: j.dense_job is not None)
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
        warmup=scale.warmup, augment=scale.augment, finder=source.finder, mask_epochs=source.mask_epochs,
        score_at=source.score_at, rounds=source.rounds, sparsities=None if source.finder == "imp" else pruning.sparsities,
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


def _add_run(graph: JobGraph, run: ImpSpec) -> str:
    """Add the run of ``run`` (and the IMP run whose dense level it shares)."""
    if run.shares_dense_run:
        graph.add(ImpJob(run.dense_spec()))
    return graph.add(ImpJob(run))


def transferred_levels(spec: ExperimentSpec, run: ImpSpec) -> list[int]:
    """The levels of ``run`` trained on other targets: IMP's ``train_levels``; a finder sharing the
    dense run leaves out level 0 (the IMP run's dense ticket, trained there)."""
    if not run.shares_dense_run:
        return spec.pruning.levels_to_train
    if run.finds_by_imp:
        return [level for level in spec.pruning.levels_to_train if level > 0]
    return list(range(1, run.levels + 1))


def _imp_series(graph: JobGraph, spec: ExperimentSpec, model: ModelChoice, panel: tuple[str, str], seed: int,
                kind: str, source: Source) -> None:
    run = imp_spec(spec, model, source, seed)
    job_id = _add_run(graph, run)
    points = tuple(Point(level, job_id) for level in range(run.levels + 1))  # every level: they cost nothing more
    graph.series.append(Series(spec.name, model.label, *panel, seed, kind, source.label, points, source.finder_label))


def _training_series(graph: JobGraph, spec: ExperimentSpec, model: ModelChoice, panel: tuple[str, str], seed: int,
                     kind: str, source: Source) -> None:
    run = imp_spec(spec, model, source, seed)
    _add_run(graph, run)
    target, optimizer = panel
    points = []
    for level in transferred_levels(spec, run):
        job = TrainJob(train_spec(spec, model, run, level, target, optimizer, seed, kind), TicketSource.of_run(run))
        points.append(Point(level, graph.add(job)))
    label = source.label if kind == "transfer" else kind
    graph.series.append(Series(spec.name, model.label, *panel, seed, kind, label, tuple(points), source.finder_label))


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
                        if source.same_place(own):  # found on the target itself: own tickets (of a finder)
                            if source != own:
                                _imp_series(graph, spec, model, panel, seed, "own", source)
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
