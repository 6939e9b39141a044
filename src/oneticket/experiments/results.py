"""Results as one tidy table: a row per (experiment, panel, line, seed, level), and their
aggregation over seeds (mean and standard deviation) for figures and reports."""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from oneticket.experiments.graph import JobGraph
from oneticket.experiments.store import ResultsIndex
from oneticket.training import Compute


@dataclass(frozen=True)
class Row:
    experiment: str
    model: str
    source: str
    target: str
    train_optimizer: str
    kind: str
    seed: int
    level: int
    fraction_pruned: float
    test_accuracy: float | None  # None when that training diverged
    job_id: str
    # provenance: what computed it (empty for results written before it was recorded)
    oneticket: str | None = None
    git_commit: str | None = None
    torch: str | None = None
    device: str | None = None
    threads: int | None = None
    train_images: int | None = None  # the images it trained on (subset files and official files differ)
    # compute (oneticket.training.Compute): finding the ticket, and this training of it (None: not recorded)
    finder: str = "imp"
    find_epochs: float | None = None
    find_passes: int | None = None
    find_seconds: float | None = None
    train_passes: int | None = None
    train_seconds: float | None = None

    @classmethod
    def columns(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    def values(self) -> list[object]:
        return list(asdict(self).values())


def tidy_rows(graph: JobGraph, store: Path) -> list[Row]:
    """Every finished point of every series of ``graph``, read from the results index."""
    index = ResultsIndex(store, reader=True)
    index.sync()
    found = index.results(graph.jobs)
    rows = []
    for series in graph.series:
        for point in series.points:
            result = found.get((point.job_id, point.level))
            if result is None:
                continue
            made, finding, trained = result["provenance"], result["find_compute"], result["compute"]
            rows.append(Row(series.experiment, series.model, series.source, series.target, series.train_optimizer,
                            series.kind, series.seed, point.level, result["fraction_pruned"],
                            result["test_accuracy"], point.job_id, made.get("oneticket"), made.get("git_commit"),
                            made.get("torch"), made.get("device"), made.get("threads"), made.get("train_images"),
                            series.finder, finding.get("epochs"), _passes(finding), finding.get("seconds"),
                            _passes(trained), trained.get("seconds")))
    return rows


def _passes(compute: dict) -> int | None:
    return Compute.of(compute).passes if compute else None


@dataclass(frozen=True)
class Line:
    """A series aggregated over seeds: per level, mean and std of the test accuracy."""

    experiment: str
    panel: tuple[str, str, str]  # model, target, train optimizer
    label: str
    kind: str
    levels: list[int]
    fraction_pruned: list[float]
    mean: list[float]
    std: list[float]
    seeds: list[int]  # how many seeds each point has
    per_seed: list[list[float]] = field(default_factory=list)  # each point's accuracies, seed by seed
    diverged: dict[int, tuple[float, int]] = field(default_factory=dict)  # level -> (fraction pruned, seeds that diverged)
    source: str = ""  # where its tickets come from ("cifar10 (sgd, snip)"), or the random variant
    finder: str = "imp"  # the finder of its tickets, with its settings ("imp", "snip at init")

    @property
    def points(self) -> int:
        return len(self.levels)


def aggregate(graph: JobGraph, rows: list[Row]) -> list[Line]:
    """Group rows by experiment, panel and line; mean and sample std over seeds. Diverged points are
    left out of the means and counted in ``Line.diverged``."""
    labels = {(s.experiment, s.panel, s.kind, s.source): s.label for s in graph.series}
    grouped: dict[tuple, dict[int, list[Row]]] = defaultdict(lambda: defaultdict(list))
    diverged: dict[tuple, dict[int, tuple[float, int]]] = defaultdict(dict)
    for row in rows:
        key = (row.experiment, (row.model, row.target, row.train_optimizer), row.kind, row.source)
        if row.test_accuracy is None:
            count = diverged[key].get(row.level, (row.fraction_pruned, 0))[1]
            diverged[key][row.level] = (row.fraction_pruned, count + 1)
            continue
        grouped[key][row.level].append(row)
    lines = []
    for key in labels:
        if key not in grouped and key not in diverged:
            continue
        by_level = grouped[key]
        levels = sorted(by_level)
        accuracies = [[r.test_accuracy for r in by_level[level]] for level in levels]
        lines.append(Line(
            experiment=key[0], panel=key[1], label=labels[key], kind=key[2], levels=levels,
            fraction_pruned=[by_level[level][0].fraction_pruned for level in levels],
            mean=[statistics.fmean(a) for a in accuracies],  # type: ignore[arg-type]
            std=[statistics.stdev(a) if len(a) > 1 else 0.0 for a in accuracies],  # type: ignore[arg-type]
            seeds=[len(a) for a in accuracies],
            per_seed=[[float(v) for v in a] for a in accuracies],  # type: ignore[arg-type]
            diverged=dict(diverged[key]),
            source=key[3],
            finder=next(iter(grouped[key].values()))[0].finder if grouped[key] else "imp",
        ))
    return lines
