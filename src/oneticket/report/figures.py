"""Figures laid out like the seed's Figures 1-4: test accuracy against the fraction of weights pruned.

One figure per experiment; one row of panels per model and one panel per (target, train optimizer).
Each ticket source, the target's own ticket and each random baseline is one line (the mean over
seeds, with a +-1 std band when there are several). The x axis is linear in -log10(1 - pruned), so
0%, 50%, 90%, 99% and 99.9% are evenly spread, as iterative pruning visits them.

Every line is written with an SVG id ``series-<n>`` and the plotted numbers go to a JSON file
beside the figure, so what a figure shows can be checked without reading pixels.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import FixedLocator, FuncFormatter  # noqa: E402

from oneticket.experiments import Line  # noqa: E402
from oneticket.files import atomic_path, write_json_atomic  # noqa: E402

TICKS = [0.0, 0.5, 0.8, 0.9, 0.95, 0.99, 0.999]
MAX_PRUNED = 0.9995
OWN_COLOR, RANDOM_COLORS = "black", ["#7f7f7f", "#bcbd22", "#8c564b", "#e377c2"]
SOURCE_COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#17becf"]


def _forward(x: np.ndarray) -> np.ndarray:
    return -np.log10(1 - np.clip(x, 0, MAX_PRUNED))


def _inverse(y: np.ndarray) -> np.ndarray:
    return 1 - 10 ** (-np.asarray(y))


def _percent(x: float, _pos: int) -> str:
    return f"{100 * x:.1f}".rstrip("0").rstrip(".")


def _style(line: Line, colors: dict[str, str]) -> dict[str, object]:
    """Own ticket black, each source its colour, random baselines grey-ish and dashed; one line
    keeps its colour across panels."""
    if line.kind == "own":
        return {"color": OWN_COLOR, "linestyle": "-", "marker": "o"}
    palette = SOURCE_COLORS if line.kind == "transfer" else RANDOM_COLORS
    if line.label not in colors:
        used = sum(1 for color in colors.values() if color in palette)
        colors[line.label] = palette[used % len(palette)]
    return {"color": colors[line.label], "linestyle": "-" if line.kind == "transfer" else "--",
            "marker": "s" if line.kind == "transfer" else "^"}


def panel_title(panel: tuple[str, str, str]) -> str:
    model, target, optimizer = panel
    return f"{model}: {target}, trained with {optimizer.upper() if optimizer == 'sgd' else optimizer.capitalize()}"


def draw_experiment(title: str, lines: list[Line], out_stem: Path) -> dict[str, Path]:
    """Draw one experiment's figure to ``<out_stem>.png``, ``.svg`` and ``.json``; return the paths."""
    panels = list(dict.fromkeys(line.panel for line in lines))
    models = list(dict.fromkeys(p[0] for p in panels))
    columns = max(sum(p[0] == m for p in panels) for m in models) if panels else 1
    fig, axes = plt.subplots(len(models) or 1, columns, figsize=(4.6 * columns, 3.6 * max(len(models), 1)),
                             squeeze=False)
    colors: dict[str, str] = {}
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
            panel_record: dict[str, object] = {"panel": list(panel), "title": panel_title(panel), "series": []}
            for line in (ln for ln in lines if ln.panel == panel):
                style = _style(line, colors)
                gid = f"series-{series_number}"
                series_number += 1
                x, mean, std = line.fraction_pruned, [100 * m for m in line.mean], [100 * s for s in line.std]
                (drawn,) = ax.plot(x, mean, label=line.label, markersize=3.5, linewidth=1.4, **style)  # type: ignore[arg-type]
                drawn.set_gid(gid)
                if max(line.seeds) > 1:
                    band = ax.fill_between(x, [m - s for m, s in zip(mean, std)], [m + s for m, s in zip(mean, std)],
                                           color=style["color"], alpha=0.18, linewidth=0)
                    band.set_gid(f"{gid}-band")
                panel_record["series"].append({  # type: ignore[union-attr]
                    "id": gid, "label": line.label, "kind": line.kind, "levels": line.levels,
                    "fraction_pruned": x, "mean_accuracy": line.mean, "std_accuracy": line.std, "seeds": line.seeds,
                })
            _format_axes(ax, panel)
            record["panels"].append(panel_record)  # type: ignore[union-attr]
    handles, labels = [], []
    for ax in fig.axes:
        for h, label in zip(*ax.get_legend_handles_labels()):
            if label not in labels:
                handles.append(h)
                labels.append(label)
    fig.suptitle(title)
    fig.tight_layout()
    fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.0), frameon=False,
               ncol=max(1, min(len(labels), 2 * columns)))
    paths = {"png": out_stem.with_suffix(".png"), "svg": out_stem.with_suffix(".svg"), "json": out_stem.with_suffix(".json")}
    for kind in ("png", "svg"):
        with atomic_path(paths[kind]) as tmp:
            fig.savefig(tmp, format=kind, dpi=130, bbox_inches="tight")
    plt.close(fig)
    write_json_atomic(paths["json"], record)
    return paths


def _format_axes(ax: plt.Axes, panel: tuple[str, str, str]) -> None:
    ax.set_xscale("function", functions=(_forward, _inverse))
    ax.xaxis.set_major_locator(FixedLocator(TICKS))
    ax.xaxis.set_major_formatter(FuncFormatter(_percent))
    ax.set_xlim(0, 0.999)
    ax.set_xlabel("weights pruned (%)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(panel_title(panel), fontsize=10)
    ax.grid(True, alpha=0.3)
