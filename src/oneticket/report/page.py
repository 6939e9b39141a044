"""The report: for each experiment a computed summary of what its figure shows, the figure, its
numbers, the compute spent, and its settings with what produced the results (versions, device,
threads), as Markdown and as one self-contained HTML page (figures embedded, settings folded),
plus the tidy CSV.

::

    <out>/report.md  report.html  results.csv  <experiment>.png .svg .json
"""

from __future__ import annotations

import base64
import csv
import datetime as dt
import html
import io
import json
import platform
from dataclasses import dataclass
from pathlib import Path

import torch

from oneticket import __version__
from oneticket.experiments import (
    ExperimentSpec,
    ImpJob,
    JobGraph,
    Line,
    ResultsIndex,
    Row,
    TrainJob,
    aggregate,
    make_plan,
    tidy_rows,
)
from oneticket.data import dataset_info
from oneticket.errors import UserError
from oneticket.files import write_bytes_atomic
from oneticket.report.compute import compute_points, compute_table, draw_compute_figure, spending_table
from oneticket.report.figures import draw_experiment, panel_title
from oneticket.report.inside import LabelledMask, draw_layer_profile, layer_table, overlap_table, pair_overlaps
from oneticket.report.summary import panel_summary, seed_count, sparsity_distance
from oneticket.tickets import RunDir, load_ticket, runs_root

Table = tuple[str, list[str], list[list[str]]]  # caption, header, rows


@dataclass(frozen=True)
class Block:
    """A part of an experiment's section beyond its main figure: a title, sentences, a figure, tables."""

    title: str
    text: list[str]
    figure: dict[str, Path] | None
    tables: list[Table]


@dataclass(frozen=True)
class ExperimentSection:
    spec: ExperimentSpec
    lines: list[Line]
    figure: dict[str, Path]
    jobs: int
    jobs_finished: int
    failed: list[tuple[str, str]]  # job description, why
    trainings: int
    epochs: int
    seconds: float
    summary: list[tuple[str, list[str]]]  # (panel title, sentences)
    provenance: list[str]  # distinct "what computed it" lines of its results
    blocks: list[Block]  # compute against accuracy; inside the tickets


@dataclass(frozen=True)
class Report:
    directory: Path
    markdown: Path
    html: Path
    csv: Path
    sections: list[ExperimentSection]


def _cell(line: Line, pruned: float) -> str:
    """The line's accuracy at the point ``pruned`` (rounded as the table's rows are), or ``-``."""
    for i, fraction in enumerate(line.fraction_pruned):
        if round(fraction, 4) == pruned:
            text = f"{100 * line.mean[i]:.2f}"
            return text + (f" ± {100 * line.std[i]:.2f} (n={line.seeds[i]})" if line.seeds[i] > 1 else "")
    return "-"


def panel_tables(lines: list[Line]) -> list[tuple[str, list[str], list[list[str]]]]:
    """(title, header, rows) per panel: one row per sparsity, one column per line (accuracy in %).
    Rows go by the fraction pruned, not the level: finders and IMP number their levels differently;
    the level column says which level(s) each row is."""
    tables = []
    for panel in dict.fromkeys(line.panel for line in lines):
        mine = [line for line in lines if line.panel == panel]
        levels: dict[float, set[int]] = {}
        for line in mine:
            for level, fraction in zip(line.levels, line.fraction_pruned):
                levels.setdefault(round(fraction, 4), set()).add(level)
        header = ["level", "pruned %"] + [line.label for line in mine]
        rows = [[", ".join(map(str, sorted(levels[f]))), f"{100 * f:.2f}"] + [_cell(line, f) for line in mine]
                for f in sorted(levels)]
        tables.append((panel_title(panel), header, rows))
    return tables


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:.2f} h" if seconds >= 3600 else f"{seconds / 60:.1f} min"


def experiment_jobs(graph: JobGraph, name: str) -> set[str]:
    """The jobs behind an experiment's points, with the IMP runs whose tickets they train."""
    points = {p.job_id for s in graph.series if s.experiment == name for p in s.points}
    sources = {graph.jobs[j].depends_on[0] for j in points if isinstance(graph.jobs[j], TrainJob)}  # type: ignore[union-attr]
    return points | sources


def build_section(spec: ExperimentSpec, graph: JobGraph, rows: list[Row], store: Path, out: Path) -> ExperimentSection:
    mine = [r for r in rows if r.experiment == spec.name]
    lines = [line for line in aggregate(graph, mine) if line.experiment == spec.name]
    figure = draw_experiment(spec.display_title, lines, out / spec.name)
    job_ids = experiment_jobs(graph, spec.name)
    statuses = [s for s in make_plan(graph, store).statuses if s.job.id in job_ids]
    borrowed = [(j, 0) for j in job_ids if isinstance(graph.jobs.get(j), ImpJob) and graph.jobs[j].dense_job is not None]  # type: ignore[union-attr]
    trainings, epochs, seconds = ResultsIndex(store, reader=True).compute(job_ids, borrowed)
    failed = [(s.job.describe(), "diverged or its ticket does not exist") for s in statuses if s.state == "failed"]
    blocks = [b for b in (compute_block(spec, mine, out), inside_block(spec, graph, store, out)) if b is not None]
    return ExperimentSection(spec, lines, figure, len(statuses), sum(s.finished for s in statuses), failed,
                             trainings, epochs, seconds, summaries(lines), provenance_lines(mine), blocks)


def compute_block(spec: ExperimentSpec, rows: list[Row], out: Path) -> Block | None:
    """Accuracy at the chosen sparsities against the compute that found each ticket."""
    sparsities = spec.comparison_sparsities()
    points = compute_points(rows, sparsities)
    if not any(p.find_passes for p in points):
        return None  # results written before compute was recorded
    title = f"{spec.display_title}: accuracy against the compute that found the ticket"
    figure = draw_compute_figure(title, points, sparsities, out / f"{spec.name}-compute")
    header, spending = spending_table(rows)
    text = ["Circles: own tickets (trained where they were found); squares: tickets transferred to the target. "
            "Each point is a ticket line's level nearest the sparsity (its own sparsity in brackets when it differs); "
            "compute in image passes (forward + backward) and time on its device, mean over seeds. IMP's level L "
            "ticket costs the trainings of levels 0 to L-1 (which are also its own tickets' trainings: counted in "
            "both columns below); oneshot the dense training; the other finders the dense run up to the rewind "
            "point plus their scoring passes. A ticket that cost nothing to find (rewind point 0it, random masks) "
            "is in the tables, not on the log-scale figure."]
    tables = compute_table(points, sparsities) + [("Compute per source and finder, all seeds: finding the tickets "
                                                   "(each seed's costliest) and training them", header, spending)]
    return Block("Accuracy and the cost of finding tickets", text, figure, tables)


def _compared_runs(spec: ExperimentSpec, graph: JobGraph) -> dict[str, str]:
    """run id -> label of the ticket runs an experiment compares (its first model and seed)."""
    runs: dict[str, str] = {}
    first = [s for s in graph.series if s.experiment == spec.name and s.kind in ("own", "transfer")]
    if not first:
        return runs
    model, seed = first[0].model, min(s.seed for s in first)
    for series in first:
        if (series.model, series.seed) != (model, seed) or not series.points:
            continue
        job = graph.jobs[series.points[-1].job_id]
        run_id = job.spec.source if isinstance(job, TrainJob) else job.spec.run_id()
        runs.setdefault(run_id, series.source)
    return runs


def _ticket_near(run: RunDir, sparsity: float) -> Path | None:
    results = [r for r in run.results() if r.ticket is not None and not r.diverged]
    if not results:
        return None
    best = min(results, key=lambda r: sparsity_distance(r.fraction_pruned, sparsity))
    return run.root / best.ticket  # type: ignore[operator]


def inside_block(spec: ExperimentSpec, graph: JobGraph, store: Path, out: Path) -> Block | None:
    """The per-layer profile and the mask overlap of the tickets an experiment compares, at the middle
    of its chosen sparsities."""
    chosen = sorted(spec.comparison_sparsities())
    if not chosen:
        return None
    target = chosen[len(chosen) // 2]
    masks = []
    for run_id, label in _compared_runs(spec, graph).items():
        path = _ticket_near(RunDir(runs_root(store) / run_id), target)
        if path is not None:
            masks.append(LabelledMask(label, load_ticket(path).mask))
    if len(masks) < 2:
        return None
    title = f"{spec.display_title}: the tickets inside, near {100 * target:g}% pruned"
    figure = draw_layer_profile(title, masks, out / f"{spec.name}-layers")
    pairs = pair_overlaps(masks)
    text = [f"Tickets of the first model and seed, each at its level nearest {100 * target:g}% pruned. "
            "IoU: weights both masks keep over weights either keeps; chance: what two random masks with the "
            "same per-layer counts share on average."]
    tables = [("Mask overlap", *overlap_table(pairs)), ("Weights kept per layer (%)", *layer_table(masks, pairs if len(masks) == 2 else []))]
    return Block("Inside the tickets", text, figure, tables)


def summaries(lines: list[Line]) -> list[tuple[str, list[str]]]:
    panels = list(dict.fromkeys(line.panel for line in lines))
    out = []
    for panel in panels:
        mine = [line for line in lines if line.panel == panel]
        classes = dataset_info(panel[1]).num_classes
        out.append((f"{panel_title(panel)} ({seed_count(mine)})", panel_summary(mine, classes)))
    return out


def provenance_lines(rows: list[Row]) -> list[str]:
    """One line per distinct (oneticket, commit, torch, device, threads) among ``rows``, with its count."""
    counts: dict[str, int] = {}
    for row in rows:
        if row.torch is None:
            key = "not recorded (results written before oneticket recorded provenance)"
        else:
            commit = f" (git {row.git_commit})" if row.git_commit else ""
            key = f"oneticket {row.oneticket}{commit}, torch {row.torch}, {row.device}, {row.threads} thread(s)"
        counts[key] = counts.get(key, 0) + 1
    return [f"{key}: {n} result(s)" for key, n in counts.items()]


def _settings(spec: ExperimentSpec) -> str:
    return json.dumps(spec.model_dump(exclude_none=True), indent=2)


def _markdown(title: str, sections: list[ExperimentSection], when: str) -> str:
    out = [f"# {title}", "", f"report by oneticket {__version__}, torch {torch.__version__}, host {platform.node()}, {when}", ""]
    for section in sections:
        spec = section.spec
        out += [f"## {spec.display_title}", ""]
        if spec.description:
            out += [spec.description, ""]
        out += ["### What the figure shows", ""]
        for panel, sentences in section.summary:
            out += [f"**{panel}**", ""] + [f"- {sentence}" for sentence in sentences] + [""]
        out += [f"![{spec.display_title}]({section.figure['png'].name})", "",
                f"Vector version: [{section.figure['svg'].name}]({section.figure['svg'].name}); "
                f"plotted numbers: [{section.figure['json'].name}]({section.figure['json'].name}).", ""]
        out += [f"Jobs finished: {section.jobs_finished} of {section.jobs}. Compute spent: {section.trainings} trainings, "
                f"{section.epochs} epochs, {_hours(section.seconds)}.", ""]
        for job, why in section.failed:
            out += [f"- failed: {job} ({why})"]
        out += ["", "### Test accuracy (%)", ""]
        for panel, header, rows in panel_tables(section.lines):
            out += [f"**{panel}**", ""] + _markdown_table(header, rows)
        for block in section.blocks:
            out += _markdown_block(block)
        out += ["### Settings", "", "```json", _settings(spec), "```", "", "Computed with:", ""]
        out += [f"- {line}" for line in section.provenance] + [""]
    return "\n".join(out)


def _markdown_table(header: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] + ["| " + " | ".join(r) + " |" for r in rows] + [""]


def _markdown_block(block: Block) -> list[str]:
    out = [f"### {block.title}", ""] + [*block.text, ""]
    if block.figure is not None:
        out += [f"![{block.title}]({block.figure['png'].name})", "",
                f"Plotted numbers: [{block.figure['json'].name}]({block.figure['json'].name}).", ""]
    for caption, header, rows in block.tables:
        out += [f"**{caption}**", ""] + _markdown_table(header, rows)
    return out


def _html_block(block: Block) -> list[str]:
    e = html.escape
    out = [f"<h3>{e(block.title)}</h3>"] + [f"<p>{e(text)}</p>" for text in block.text]
    if block.figure is not None:
        png = base64.b64encode(block.figure["png"].read_bytes()).decode()
        out += [f"<img alt='{e(block.title)}' src='data:image/png;base64,{png}'>"]
    for caption, header, rows in block.tables:
        out += _html_table(caption, header, rows)
    return out


def _html_table(caption: str, header: list[str], rows: list[list[str]]) -> list[str]:
    e = html.escape
    out = [f"<p><b>{e(caption)}</b></p><table><tr>" + "".join(f"<th>{e(h)}</th>" for h in header) + "</tr>"]
    return out + ["<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>" for row in rows] + ["</table>"]


STYLE = """body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em;font-size:.9em}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:right}
th{background:#f3f3f3}img{max-width:100%}pre{background:#f6f6f6;padding:1em;overflow:auto}.meta{color:#666}"""


def _html(title: str, sections: list[ExperimentSection], when: str) -> str:
    e = html.escape
    out = [f"<!doctype html><html><head><meta charset='utf-8'><title>{e(title)}</title><style>{STYLE}</style></head><body>",
           f"<h1>{e(title)}</h1><p class='meta'>oneticket {__version__}, torch {e(torch.__version__)}, "
           f"host {e(platform.node())}, {e(when)}</p>"]
    for section in sections:
        spec = section.spec
        png = base64.b64encode(section.figure["png"].read_bytes()).decode()
        out += [f"<h2>{e(spec.display_title)}</h2>"]
        if spec.description:
            out += [f"<p>{e(spec.description)}</p>"]
        out += ["<h3>What the figure shows</h3>"]
        for panel, sentences in section.summary:
            out += [f"<p><b>{e(panel)}</b></p><ul>"] + [f"<li>{e(sentence)}</li>" for sentence in sentences] + ["</ul>"]
        out += [f"<img alt='{e(spec.display_title)}' src='data:image/png;base64,{png}'>",
                f"<p>Jobs finished: {section.jobs_finished} of {section.jobs}. Compute spent: {section.trainings} "
                f"trainings, {section.epochs} epochs, {_hours(section.seconds)}.</p>"]
        if section.failed:
            out += ["<ul>"] + [f"<li>failed: {e(job)} ({e(why)})</li>" for job, why in section.failed] + ["</ul>"]
        out += ["<h3>Test accuracy (%)</h3>"]
        for panel, header, rows in panel_tables(section.lines):
            out += _html_table(panel, header, rows)
        for block in section.blocks:
            out += _html_block(block)
        out += ["<details><summary>Settings and what computed the results</summary>",
                f"<pre>{e(_settings(spec))}</pre><ul>"] + [f"<li>{e(line)}</li>" for line in section.provenance]
        out += ["</ul></details>"]
    out += ["</body></html>"]
    return "\n".join(out)


def rows_csv(rows: list[Row]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(Row.columns())
    writer.writerows(row.values() for row in rows)
    return buffer.getvalue()


def write_report(graph: JobGraph, store: Path, out: Path, title: str | None = None) -> Report:
    """Figures, tables and pages for every experiment of ``graph``, written under ``out``."""
    rows = tidy_rows(graph, store)
    if not rows:
        names = " ".join(spec.name for spec in graph.experiments)
        how = "'oneticket demo'" if all(spec.name.startswith("demo_") for spec in graph.experiments) else \
            "'oneticket run' with the same specs"
        raise UserError(f"no finished results for {names} in {store}; run {how} first (or pass the --store they ran in)")
    out.mkdir(parents=True, exist_ok=True)
    sections = [build_section(spec, graph, rows, store, out) for spec in graph.experiments]
    title = title or " + ".join(spec.display_title for spec in graph.experiments)
    when = dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    paths = out / "report.md", out / "report.html", out / "results.csv"
    write_bytes_atomic(paths[0], _markdown(title, sections, when).encode())
    write_bytes_atomic(paths[1], _html(title, sections, when).encode())
    write_bytes_atomic(paths[2], rows_csv(rows).encode())
    return Report(out, *paths, sections)
