"""Figures laid out like the seed's Figures 1-4: test accuracy against the fraction of weights pruned.

One figure per experiment; one row of panels per model and one panel per (target, train optimizer).
Each ticket source, the target's own ticket and each random baseline is one line (the mean over
seeds, with a +-1 std band clipped to 0-100% and each seed's own point when there are several),
labelled with its seed count in the panel's own legend; a dotted horizontal line (and its band)
marks the dense network, the own ticket's level 0. The x axis is linear in -log10(1 - pruned), so
0%, 50%, 90%, 99% and 99.9% are evenly spread, as iterative pruning visits them, and it ends just
past the highest sparsity plotted. Titles wrap to the figure's width.

Every line is written with an SVG id ``series-<n>`` (its band ``series-<n>-band``, its seeds'
points ``series-<n>-seeds``, the dense line ``dense-<panel>``) and the plotted numbers go to a JSON
file beside the figure, so what a figure shows can be checked without reading pixels.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import FixedLocator, FuncFormatter  # noqa: E402

from oneticket.experiments import Line  # noqa: E402
from oneticket.files import atomic_path, write_json_atomic  # noqa: E402

TICKS = [0.0, 0.5, 0.8, 0.9, 0.95, 0.98, 0.99, 0.995, 0.999]
MAX_PRUNED = 0.9995
X_MARGIN = 0.12  # the axis ends this far (in -log10(1 - pruned)) past the highest sparsity plotted
DENSE_COLOR = "#555555"
OWN_COLOR, RANDOM_COLORS = "black", ["#8c564b", "#bcbd22", "#7f7f7f", "#e377c2"]  # random: brown first, apart from black
LEGEND_INSIDE_MAX = 6  # lines a panel's legend may hold inside the axes
SOURCE_COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#17becf", "#e377c2", "#bcbd22", "#7f7f7f"]


def source_color(source: str, colors: dict[str, str]) -> str:
    """The colour of a ticket source (``cifar10 (sgd, snip)``), the same in every panel and for its
    own and transferred lines; assigned in order of first appearance."""
    if source not in colors:
        colors[source] = SOURCE_COLORS[len(colors) % len(SOURCE_COLORS)]
    return colors[source]


def is_plain_own(kind: str, finder: str) -> bool:
    """An own ticket found by plain IMP (drawn black)."""
    return kind == "own" and finder == "imp"


def _forward(x: np.ndarray) -> np.ndarray:
    return -np.log10(1 - np.clip(x, 0, MAX_PRUNED))


def _inverse(y: np.ndarray) -> np.ndarray:
    return 1 - 10 ** (-np.asarray(y))


def _percent(x: float, _pos: int) -> str:
    return f"{100 * x:.1f}".rstrip("0").rstrip(".")


def _style(line: Line, colors: dict[str, str], random_colors: dict[str, str]) -> dict[str, object]:
    """The own IMP ticket black; each other source (a dataset, or a finder) its colour, circles for
    its own ticket and squares transferred; random baselines brown (then olive, grey, pink) and
    dashed. A source keeps its colour across panels."""
    if is_plain_own(line.kind, line.finder):
        return {"color": OWN_COLOR, "linestyle": "-", "marker": "o"}
    if line.kind in ("own", "transfer"):
        return {"color": source_color(line.source, colors), "linestyle": "-", "marker": "o" if line.kind == "own" else "s"}
    if line.label not in random_colors:
        random_colors[line.label] = RANDOM_COLORS[len(random_colors) % len(RANDOM_COLORS)]
    return {"color": random_colors[line.label], "linestyle": "--", "marker": "^"}


def panel_title(panel: tuple[str, str, str]) -> str:
    model, target, optimizer = panel
    return f"{model}: {target}, trained with {optimizer.upper() if optimizer == 'sgd' else optimizer.capitalize()}"


def seed_label(seeds: list[int]) -> str:
    """``n=3``, or ``n=2-3`` when some points have fewer seeds."""
    low, high = min(seeds), max(seeds)
    return f"n={high}" if low == high else f"n={low}-{high}"


def band(line: Line) -> tuple[list[float], list[float]]:
    """Mean -+ one standard deviation, clipped to accuracies that exist (0 to 1)."""
    return ([max(0.0, m - s) for m, s in zip(line.mean, line.std)], [min(1.0, m + s) for m, s in zip(line.mean, line.std)])


def dense_of(lines: list[Line]) -> dict[str, float | int] | None:
    """The panel's dense network: level 0 of its own ticket's run (mean, std, seeds), if finished."""
    own = next((line for line in lines if is_plain_own(line.kind, line.finder) and 0 in line.levels), None) or \
        next((line for line in lines if line.kind == "own" and 0 in line.levels), None)
    if own is None:
        return None
    i = own.levels.index(0)
    return {"mean_accuracy": own.mean[i], "std_accuracy": own.std[i], "seeds": own.seeds[i]}


def _draw_dense(ax: plt.Axes, dense: dict[str, float | int], gid: str) -> None:
    mean, std, seeds = 100 * float(dense["mean_accuracy"]), 100 * float(dense["std_accuracy"]), int(dense["seeds"])
    spread = f" ± {std:.1f}" if seeds > 1 else ""
    line = ax.axhline(mean, color=DENSE_COLOR, linestyle=":", linewidth=1.2,
                      label=f"dense network: {mean:.1f}{spread}% (n={seeds})")
    line.set_gid(gid)
    if seeds > 1:
        ax.axhspan(max(mean - std, 0.0), min(mean + std, 100.0), color=DENSE_COLOR, alpha=0.08, linewidth=0).set_gid(f"{gid}-band")


def _wrapped(title: str, inches: float) -> str:
    """A title broken into lines that fit the figure's width (about 12 characters per inch at 12 pt),
    never inside an arrow (``a -> b`` stays on one line)."""
    kept = title.replace(" -> ", "\u00a0->\u00a0").replace(" <-> ", "\u00a0<->\u00a0")
    return "\n".join(textwrap.wrap(kept, width=max(int(12 * inches), 20)))


def draw_experiment(title: str, lines: list[Line], out_stem: Path) -> dict[str, Path]:
    """Draw one experiment's figure to ``<out_stem>.png``, ``.svg`` and ``.json``; return the paths."""
    panels = list(dict.fromkeys(line.panel for line in lines))
    models = list(dict.fromkeys(p[0] for p in panels))
    columns = max(sum(p[0] == m for p in panels) for m in models) if panels else 1
    most = max((sum(line.panel == p for line in lines) for p in panels), default=0)
    legend_below = most > LEGEND_INSIDE_MAX  # many lines (finders): the legend goes under its panel, off the data
    row_height = 4.2 + (0.17 * most + 0.4 if legend_below else 0.0)
    fig, axes = plt.subplots(len(models) or 1, columns, figsize=(5.4 * columns, row_height * max(len(models), 1)),
                             squeeze=False)
    colors: dict[str, str] = {}
    random_colors: dict[str, str] = {}
    record: dict[str, object] = {"title": title, "panels": []}
    series_number = 0
    for row, model in enumerate(models):
        model_panels = [p for p in panels if p[0] == model]
        for col in range(columns):
            ax = axes[row][col]
            if col >= len(model_panels):
                ax.set_visible(False)
                continue
            panel = model_panels[col]
            mine = [ln for ln in lines if ln.panel == panel]
            dense = dense_of(mine)
            panel_record: dict[str, object] = {"panel": list(panel), "title": panel_title(panel), "series": [],
                                               "dense": dense, "x_max": 0.0}
            if dense is not None:
                _draw_dense(ax, dense, f"dense-{len(record['panels'])}")  # type: ignore[arg-type]
            for line in (ln for ln in mine if ln.levels):  # a line whose every point diverged has nothing to draw
                style = _style(line, colors, random_colors)
                gid = f"series-{series_number}"
                series_number += 1
                x, mean, std = line.fraction_pruned, [100 * m for m in line.mean], [100 * s for s in line.std]
                label = f"{line.label} ({seed_label(line.seeds)})"
                (drawn,) = ax.plot(x, mean, label=label, markersize=3.5, linewidth=1.4, **style)  # type: ignore[arg-type]
                drawn.set_gid(gid)
                low, high = band(line)
                if max(line.seeds) > 1:
                    drawn_band = ax.fill_between(x, [100 * v for v in low], [100 * v for v in high],
                                                 color=style["color"], alpha=0.15, linewidth=0)
                    drawn_band.set_gid(f"{gid}-band")
                    xs = [f for f, values in zip(x, line.per_seed) for _ in values]
                    ys = [100 * v for values in line.per_seed for v in values]
                    dots = ax.scatter(xs, ys, s=7, color=style["color"], alpha=0.45, linewidths=0, zorder=3)
                    dots.set_gid(f"{gid}-seeds")
                panel_record["series"].append({  # type: ignore[union-attr]
                    "id": gid, "label": label, "kind": line.kind, "levels": line.levels,
                    "fraction_pruned": x, "mean_accuracy": line.mean, "std_accuracy": line.std, "seeds": line.seeds,
                    "band_low": low, "band_high": high, "per_seed": line.per_seed,
                })
            x_max = max((f for line in mine for f in line.fraction_pruned), default=0.0)
            panel_record["x_max"] = _format_axes(ax, panel, x_max)
            if legend_below:
                ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=1, fontsize=7, frameon=False)
            else:
                ax.legend(loc="lower left", fontsize=7, frameon=True, framealpha=0.85)
            record["panels"].append(panel_record)  # type: ignore[union-attr]
    fig.suptitle(_wrapped(title, 5.4 * columns))
    fig.tight_layout()
    return save_figure(fig, record, out_stem, dpi=130)


def save_figure(fig: plt.Figure, record: dict[str, object], out_stem: Path, dpi: int = 120) -> dict[str, Path]:
    """``<out_stem>.png`` and ``.svg`` of ``fig``, and the plotted numbers as ``.json``; closes ``fig``."""
    paths = {"png": out_stem.with_suffix(".png"), "svg": out_stem.with_suffix(".svg"), "json": out_stem.with_suffix(".json")}
    for kind in ("png", "svg"):
        with atomic_path(paths[kind]) as tmp:
            fig.savefig(tmp, format=kind, dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    write_json_atomic(paths["json"], record)
    return paths


def axis_end(x_max: float) -> float:
    """The x axis' right end: just past ``x_max`` on the figure's scale (at least 50% pruned)."""
    return float(_inverse(np.asarray(_forward(np.asarray(max(x_max, 0.5))) + X_MARGIN)))


def _format_axes(ax: plt.Axes, panel: tuple[str, str, str], x_max: float) -> float:
    """Scale, ticks, labels; returns the axis' right end."""
    end = axis_end(x_max)
    ax.set_xscale("function", functions=(_forward, _inverse))
    ax.xaxis.set_major_locator(FixedLocator([t for t in TICKS if t <= end]))
    ax.xaxis.set_major_formatter(FuncFormatter(_percent))
    ax.set_xlim(0, end)
    ax.set_xlabel("weights pruned (%; spaced by the log of the weights left)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(panel_title(panel), fontsize=10)
    ax.grid(True, alpha=0.3)
    return end
