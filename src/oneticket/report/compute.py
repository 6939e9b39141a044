"""What finding a ticket costs, against how well it does: the accuracy-vs-compute figure and tables.

For each panel (model, target, train optimizer), each ticket line (own or transferred, one per
source and finder) and each chosen sparsity, the point is the line's level nearest that sparsity
(within a factor of 1.3 in the fraction of weights left; IMP's levels seldom land exactly on it):
test accuracy (mean +- std over seeds) against the compute spent to find that ticket (image passes,
forward + backward, mean over seeds; log scale). The plotted numbers go to a JSON file beside the
figure. Spending per source and finder separates the compute that found the tickets (the most
expensive ticket's, which includes everything the cheaper ones needed) from the compute that
trained them on their targets (every training of the series, once).
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from oneticket.experiments import Row  # noqa: E402
from matplotlib.ticker import LogFormatterSciNotation, LogLocator, NullFormatter  # noqa: E402

from oneticket.report.figures import OWN_COLOR, is_plain_own, panel_title, save_figure, source_color  # noqa: E402
from oneticket.report.summary import sparsity_distance  # noqa: E402

TICKET_KINDS = ("own", "transfer")
NEAR = 1.3  # a level stands for a sparsity when their fractions of weights left differ by at most this factor


@dataclass(frozen=True)
class ComputePoint:
    panel: tuple[str, str, str]
    label: str
    kind: str
    finder: str
    sparsity: float  # the chosen sparsity
    fraction_pruned: float  # where the level it stands for is
    mean: float
    std: float
    seeds: int
    find_passes: float | None
    find_seconds: float | None
    find_epochs: float | None


def _mean(values: list[float | int | None]) -> float | None:
    known = [float(v) for v in values if v is not None]
    return statistics.fmean(known) if known and len(known) == len(values) else None


def compute_points(rows: list[Row], sparsities: list[float]) -> list[ComputePoint]:
    """One point per (panel, ticket line, chosen sparsity) that a finished level stands for."""
    lines: dict[tuple, dict[int, list[Row]]] = defaultdict(lambda: defaultdict(list))
    for row in rows:
        if row.kind in TICKET_KINDS and row.test_accuracy is not None:
            lines[((row.model, row.target, row.train_optimizer), row.source, row.kind, row.finder)][row.level].append(row)
    points = []
    for (panel, label, kind, finder), levels in lines.items():
        for target in sparsities:
            level, chosen = min(levels.items(), key=lambda item: sparsity_distance(item[1][0].fraction_pruned, target))
            if sparsity_distance(chosen[0].fraction_pruned, target) > math.log(NEAR):
                continue
            accuracies = [float(r.test_accuracy) for r in chosen]  # type: ignore[arg-type]
            points.append(ComputePoint(
                panel, label, kind, finder, target, chosen[0].fraction_pruned, statistics.fmean(accuracies),
                statistics.stdev(accuracies) if len(accuracies) > 1 else 0.0, len(accuracies),
                _mean([r.find_passes for r in chosen]), _mean([r.find_seconds for r in chosen]),
                _mean([r.find_epochs for r in chosen]),
            ))
    return points


def draw_compute_figure(title: str, points: list[ComputePoint], sparsities: list[float], out_stem: Path) -> dict[str, Path]:
    """Rows of panels, one column per chosen sparsity; one point per ticket line (colour = source
    and finder as in the accuracy figure, circle = own ticket, square = transferred), error bars +-1 std."""
    panels = list(dict.fromkeys(p.panel for p in points)) or [("", "", "")]
    columns = max(len(sparsities), 1)
    fig, axes = plt.subplots(len(panels), columns, figsize=(3.6 * columns, 3.2 * len(panels)), squeeze=False)
    colors: dict[str, str] = {}
    record: dict[str, object] = {"title": title, "sparsities": sparsities, "panels": []}
    for r, panel in enumerate(panels):
        for c, target in enumerate(sparsities):
            ax = axes[r][c]
            mine = [p for p in points if p.panel == panel and p.sparsity == target and p.find_passes]
            for p in mine:
                color = OWN_COLOR if is_plain_own(p.kind, p.finder) else source_color(p.label, colors)
                label = f"own ticket: {p.label}" if p.kind == "own" else f"ticket from {p.label}"
                ax.errorbar([p.find_passes], [100 * p.mean], yerr=[100 * p.std], fmt="o" if p.kind == "own" else "s",
                            color=color, markersize=5, capsize=2, label=label)
            ax.set_title(f"{panel_title(panel) if panel[0] else ''}\n{percent_label(target)} pruned", fontsize=8)
            record["panels"].append({"panel": list(panel), "sparsity": target,  # type: ignore[union-attr]
                                     "points": [asdict(p) for p in mine]})
            if not mine:
                ax.text(0.5, 0.5, "no finished ticket near this sparsity", ha="center", va="center", fontsize=7,
                        transform=ax.transAxes)
                ax.set_xticks([])
                ax.set_yticks([])
                continue
            ax.set_xscale("log")
            ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))  # labels even within one decade
            ax.xaxis.set_major_formatter(LogFormatterSciNotation(labelOnlyBase=False))
            ax.xaxis.set_minor_formatter(NullFormatter())
            ax.set_xlabel("compute to find the ticket (image passes)", fontsize=7)
            ax.set_ylabel("test accuracy (%)", fontsize=7)
            ax.tick_params(labelsize=7)
            ax.grid(True, alpha=0.3, which="both")
    handles: dict[str, object] = {}
    for ax in axes.flat:  # one legend for the figure: a source keeps its colour and marker in every panel
        for handle, label in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(label, handle)
    if handles:
        fig.legend(list(handles.values()), list(handles), loc="lower center", ncol=min(3, len(handles)), fontsize=7,
                   bbox_to_anchor=(0.5, 0.0), frameon=False)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0.04 + 0.03 * math.ceil(len(handles) / 3), 1, 1))
    return save_figure(fig, record, out_stem, dpi=120)


def percent_label(fraction: float) -> str:
    """``0.984375`` -> ``98.44%``, ``0.9`` -> ``90%``."""
    return f"{100 * fraction:.2f}".rstrip("0").rstrip(".") + "%"


def passes_text(passes: float | None) -> str:
    """``3.1e6``; ``-`` when not recorded."""
    return "-" if passes is None else f"{passes:.2g}" if passes < 1000 else f"{passes:.1e}".replace("e+0", "e").replace("e+", "e")


def seconds_text(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return f"{seconds / 3600:.2f} h" if seconds >= 3600 else f"{seconds / 60:.1f} min" if seconds >= 60 else f"{seconds:.1f} s"


def compute_table(points: list[ComputePoint], sparsities: list[float]) -> list[tuple[str, list[str], list[list[str]]]]:
    """Per panel: one row per ticket line, the find compute and accuracy at each chosen sparsity."""
    tables = []
    for panel in dict.fromkeys(p.panel for p in points):
        mine = [p for p in points if p.panel == panel]
        header = ["ticket", "kind"] + [f"{percent_label(s)} pruned: accuracy · find compute" for s in sparsities]
        rows = []
        for label, kind in dict.fromkeys((p.label, p.kind) for p in mine):
            cells = []
            for target in sparsities:
                p = next((q for q in mine if (q.label, q.kind, q.sparsity) == (label, kind, target)), None)
                if p is None:
                    cells.append("-")
                    continue
                spread = f" ± {100 * p.std:.1f}" if p.seeds > 1 else ""
                where = f" (at {100 * p.fraction_pruned:.1f}%)" if abs(p.fraction_pruned - target) > 0.005 else ""
                cells.append(f"{100 * p.mean:.1f}{spread}{where} · {passes_text(p.find_passes)} passes, "
                             f"{seconds_text(p.find_seconds)}")
            rows.append([label, kind] + cells)
        tables.append((panel_title(panel), header, rows))
    return tables


def spending_table(rows: list[Row]) -> tuple[list[str], list[list[str]]]:
    """Per (model, source and finder), over all seeds: the compute that found the tickets (each
    seed's costliest ticket, which includes what the cheaper ones needed) and that trained them on
    their targets (every training once)."""
    by_source: dict[tuple[str, str], list[Row]] = defaultdict(list)
    for row in rows:
        if row.kind in TICKET_KINDS:
            by_source[(row.model, row.source)].append(row)
    header = ["model", "tickets from", "seeds", "find: passes", "find: time", "train: passes", "train: time", "trainings"]
    table = []
    for (model, source), mine in by_source.items():
        mine = [r for r in mine if not (r.level == 0 and r.finder != "imp")]  # a finder's level 0 is the IMP run's
        if not mine:
            continue
        costliest: dict[int, Row] = {}
        for row in mine:
            if row.seed not in costliest or (row.find_passes or 0) > (costliest[row.seed].find_passes or 0):
                costliest[row.seed] = row
        trainings = {(r.job_id, r.level): r for r in mine}
        table.append([model, source, str(len(costliest)),
                      passes_text(_total([r.find_passes for r in costliest.values()])),
                      seconds_text(_total([r.find_seconds for r in costliest.values()])),
                      passes_text(_total([r.train_passes for r in trainings.values()])),
                      seconds_text(_total([r.train_seconds for r in trainings.values()])), str(len(trainings))])
    return header, table


def _total(values: list[float | int | None]) -> float | None:
    """The sum, or None when some value was not recorded."""
    return None if any(v is None for v in values) else float(sum(values))  # type: ignore[arg-type]
