"""``oneticket plan | run | report | results | transfer | demo``: experiments from TOML specs."""

from __future__ import annotations

import sys
from importlib import resources
from pathlib import Path
from typing import Annotated

import torch
import typer
from rich.console import Console
from rich.table import Table

from oneticket.cli import Interrupted, app
from oneticket.cli.display import percent
from oneticket.cli.options import build_spec
from oneticket.cli.run_display import RunDisplay, TaskDisplay
from oneticket.errors import UserError
from oneticket.experiments import (
    ExperimentSpec,
    JobGraph,
    LocalExecutor,
    MeasuredThroughput,
    Plan,
    Row,
    Summary,
    TrainJob,
    expand_all,
    load_experiment,
    make_plan,
    parse_experiment,
    tidy_rows,
)
from oneticket.experiments.graph import ImpJob, TicketSource
from oneticket.experiments.tasks import task_graph
from oneticket.experiments.throughput import ReferenceThroughput
from oneticket.report import rows_csv, write_report
from oneticket.tickets import TrainingDir, TrainSpec, imported_root, load_ticket, runs_root, trainings_root, variant
from oneticket.training import Speed, resolve_device

console = Console(highlight=False)

SpecFiles = Annotated[list[Path], typer.Argument(help="experiment spec files (.toml), e.g. experiments/quick/across_datasets.toml", show_default=False)]
StoreOption = Annotated[Path | None, typer.Option(help="where runs are kept (default: $ONETICKET_STORE or ~/.oneticket)", show_default=False)]
DataDirOption = Annotated[Path | None, typer.Option(help="folder with the datasets (default: $ONETICKET_DATA or ~/.oneticket/data); missing files are downloaded", show_default=False)]
DeviceOption = Annotated[str, typer.Option(help="auto (CUDA if available), cpu, cuda or cuda:N")]
ChannelsLastOption = Annotated[bool, typer.Option("--channels-last/--no-channels-last", help="channels-last (NHWC) memory format; not part of any job id")]
EvalEveryOption = Annotated[int | None, typer.Option(min=1, show_default=False, help="evaluate every N epochs and after the last (default: automatic, a small share of the time)")]


def make_speed(channels_last: bool, compile_: bool, eval_every: int | None) -> Speed:
    return Speed(channels_last=channels_last, compile=compile_, eval_every=eval_every)


def _store(store: Path | None) -> Path:
    from oneticket.cli.commands import default_store

    return store or default_store()


def load_graph(paths: list[Path]) -> JobGraph:
    specs = [load_experiment(p) for p in paths]
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise UserError(f"two spec files have the same name ({', '.join(names)}); give each experiment its own name")
    return expand_all(specs)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def plan_table(plan: Plan) -> Table:
    """IMP runs one per row; trainings grouped by (kind, source -> target, optimizer, seed)."""
    table = Table(title="jobs")
    for column in ("job", "state", "trainings done", "epochs left", "estimate"):
        table.add_column(column, justify="right" if column != "job" else "left")
    groups: dict[str, list] = {}
    for status in plan.statuses:
        if isinstance(status.job, ImpJob):
            table.add_row(status.job.describe(), status.state, f"{status.trainings_done}/{status.trainings_total}",
                          str(status.epochs_left), _duration(status.seconds_left) if not status.finished else "")
        else:
            s, src = status.job.spec, status.job.source
            key = f"{s.kind}: {src.dataset} ({src.optimizer}) -> {s.dataset} ({s.optimizer}), seed {s.seed}"
            groups.setdefault(key, []).append(status)
    for key, statuses in groups.items():
        states = sorted({s.state for s in statuses})
        seconds = None if any(s.seconds_left is None and not s.finished for s in statuses) else sum(s.seconds_left or 0 for s in statuses)
        table.add_row(f"{key}, {len(statuses)} levels", "/".join(states), f"{sum(s.trainings_done for s in statuses)}/{len(statuses)}",
                      str(sum(s.epochs_left for s in statuses)), _duration(seconds) if seconds else "")
    return table


@app.command()
def plan(
    specs: SpecFiles,
    store: StoreOption = None,
    device: DeviceOption = "auto",
    measure: Annotated[bool, typer.Option(help="measure this machine's training speed for the estimate (a few seconds per model)")] = True,
    reference: Annotated[str | None, typer.Option(help="estimate for a reference GPU instead (e.g. H100), from recorded epoch times", show_default=False)] = None,
) -> None:
    """Show what an experiment will run: its jobs, which are done, the work left and a time estimate.

    Jobs shared between spec files (the same IMP run, say) are listed once.
    """
    graph = load_graph(specs)
    store_path = _store(store)
    throughput: MeasuredThroughput | ReferenceThroughput | None = None
    if reference is not None:
        throughput = ReferenceThroughput(reference)
    elif measure:
        throughput = MeasuredThroughput(store_path, resolve_device(device))
    result = make_plan(graph, store_path, throughput)
    console.print(plan_table(result))
    left = [s for s in result.statuses if not s.finished]
    console.print(
        f"{len(result.statuses)} jobs ({result.jobs_done} finished, {len(left)} to run), "
        f"{result.trainings_total} trainings ({result.trainings_left} left), {result.epochs_left} epochs left"
    )
    if isinstance(throughput, ReferenceThroughput):
        console.print(f"estimated time on one {reference} (recorded epoch times): {_duration(result.seconds_left)}")
    elif throughput is not None:
        measured = f" (measured now: {'; '.join(throughput.measured)})" if throughput.measured else ""
        console.print(f"estimated time on {throughput.device}: {_duration(result.seconds_left)}{measured}")
    if result.failed:
        console.print(f"[red]{len(result.failed)} job(s) failed (a level diverged); see 'oneticket report'[/]")


def execute(graph: JobGraph, store: Path, data_dir: Path | None, device: str, speed: Speed | None = None,
            threads: int | None = None) -> int:
    """Run every unfinished job of ``graph`` here with the live display; 1 if any job failed."""
    torch_device = resolve_device(device)
    if threads is not None:
        torch.set_num_threads(threads)
    plan_now = make_plan(graph, store)
    executor = LocalExecutor(store, data_dir, torch_device, speed=speed)
    try:
        with RunDisplay(console, plan_now) as display:
            executor.emit = display
            summary = executor.run(graph)
    except KeyboardInterrupt:
        raise Interrupted("interrupted; finished epochs are checkpointed, rerun the same command to continue") from None
    return _summarize(summary, f"on {torch_device}")


def execute_on_ray(graph: JobGraph, store: Path, data_dir: Path | None, options: object, speed: Speed) -> int:
    """Run every unfinished job of ``graph`` as Ray tasks; 1 if any job failed."""
    from oneticket.experiments.ray_executor import RayExecutor  # Ray is an optional extra

    tasks = task_graph(graph, store)
    executor = RayExecutor(store, data_dir, options, speed=speed)  # type: ignore[arg-type]
    try:
        with TaskDisplay(console, len(tasks.tasks)) as display:
            executor.emit = display
            summary = executor.run(graph)
    except KeyboardInterrupt:
        raise Interrupted("interrupted; finished epochs are checkpointed, rerun the same command to continue") from None
    artifacts = "shared store" if executor.shared else "artifacts through Ray's object store"
    return _summarize(summary, f"on Ray ({artifacts})")


def _summarize(summary: Summary, where: str) -> int:
    console.print(f"{summary.done} job(s) run, {summary.skipped} already finished, {len(summary.failed)} failed, "
                  f"in {_duration(summary.seconds)} {where}")
    for job, why in summary.failed:
        console.print(f"[red]failed: {job.describe()}: {why}[/]")
    return 1 if summary.failed else 0


EXECUTORS = ("local", "ray")


@app.command()
def run(
    specs: SpecFiles,
    store: StoreOption = None,
    data_dir: DataDirOption = None,
    device: DeviceOption = "auto",
    channels_last: ChannelsLastOption = True,
    compile_: Annotated[bool, typer.Option("--compile/--no-compile", help="torch.compile the training step (long GPU runs); not part of any job id")] = False,
    eval_every: EvalEveryOption = None,
    threads: Annotated[int | None, typer.Option(min=1, show_default=False, help="PyTorch CPU threads (default: all cores). CPU results are bit-identical for the same thread count")] = None,
    executor: Annotated[str, typer.Option(help="local (this process) or ray (Ray tasks on this machine or a cluster; needs pip install 'oneticket\\[ray]')")] = "local",
    address: Annotated[str | None, typer.Option(help="ray: the cluster to join (auto, or ray://HEAD:10001); default: start Ray here for this run", show_default=False)] = None,
    cpus_per_task: Annotated[float | None, typer.Option(show_default=False, help="ray: CPUs per task, also its PyTorch thread count (default: 1 with GPUs; else this machine's thread count, so results equal the local executor's; 1 runs more small tasks at once, with other bits)")] = None,
    gpus_per_task: Annotated[float | None, typer.Option(show_default=False, help="ray: GPUs per task (default: 1 where the cluster has GPUs, else 0; 0.25 runs 4 small tasks per GPU)")] = None,
    retries: Annotated[int, typer.Option(help="ray: reruns of a task whose worker died")] = 3,
    artifacts: Annotated[str, typer.Option(help="ray: auto, shared (every node sees --store) or object-store (results travel to this machine)")] = "auto",
) -> int:
    """Run the jobs of experiment specs that are not finished yet (resumable: rerun to continue).

    Ctrl-C stops cleanly; the next run continues from the last finished epoch. With --executor ray the
    jobs run as Ray tasks, trainings of a level as soon as its ticket exists; the results are the same.
    """
    if executor not in EXECUTORS:
        raise UserError(f"unknown --executor {executor!r}; choose one of: {', '.join(EXECUTORS)}")
    graph = load_graph(specs)
    speed = make_speed(channels_last, compile_, eval_every)
    if executor == "local":
        if address is not None:
            raise UserError("--address is for --executor ray; add --executor ray or drop --address")
        return execute(graph, _store(store), data_dir, device, speed, threads)
    if threads is not None:
        raise UserError("with --executor ray each task uses --cpus-per-task threads; use that instead of --threads")
    from oneticket.experiments.ray_executor import RayOptions  # Ray is an optional extra

    if device == "cpu" and gpus_per_task is None:
        gpus_per_task = 0.0
    options = RayOptions(address=address, cpus_per_task=cpus_per_task, gpus_per_task=gpus_per_task, retries=retries,
                         artifacts=artifacts)
    return execute_on_ray(graph, _store(store), data_dir, options, speed)


def _default_report_dir(store: Path, graph: JobGraph) -> Path:
    return store / "reports" / "+".join(spec.name for spec in graph.experiments)


@app.command()
def report(
    specs: SpecFiles,
    store: StoreOption = None,
    out: Annotated[Path | None, typer.Option(help="output folder (default: <store>/reports/<experiment names>)", show_default=False)] = None,
) -> None:
    """Draw the figures and write the report (Markdown, self-contained HTML, CSV) of finished results."""
    graph = load_graph(specs)
    store_path = _store(store)
    written = write_report(graph, store_path, out or _default_report_dir(store_path, graph))
    for section in written.sections:
        points = sum(line.points for line in section.lines)
        console.print(f"{section.spec.name}: {len(section.lines)} lines, {points} points, "
                      f"{section.jobs_finished}/{section.jobs} jobs finished")
    console.print(f"report: {written.html}\n        {written.markdown}")


@app.command()
def results(
    specs: SpecFiles,
    store: StoreOption = None,
    csv: Annotated[bool, typer.Option("--csv", help="print CSV (one tidy row per point and seed) instead of a table")] = False,
) -> None:
    """Print the results of experiment specs as one tidy table."""
    graph = load_graph(specs)
    rows = tidy_rows(graph, _store(store))
    if csv:
        sys.stdout.write(rows_csv(rows))
        return
    table = Table()
    for column in Row.columns()[:-1]:
        table.add_column(column.replace("_", " "))
    for row in rows:
        values = row.values()[:-1]
        values[-2] = percent(row.fraction_pruned)
        values[-1] = percent(row.test_accuracy)
        table.add_row(*map(str, values))
    console.print(table)
    if not rows:
        console.print("no finished results yet; run 'oneticket run' with the same spec files")


def _parse_levels(text: str | None) -> set[int] | None:
    if text is None:
        return None
    try:
        levels = {int(part) for part in text.split(",") if part.strip()}
    except ValueError:
        raise UserError(f"--levels must be a comma-separated list of level numbers, got {text!r}") from None
    if not levels or min(levels) < 0:
        raise UserError(f"--levels must list levels 0 or higher, got {text!r}")
    return levels


def ticket_files(source: str, store: Path) -> list[Path]:
    """The ticket files a ``--from`` names: a ticket file, a run directory, a run id, or an exported folder."""
    path = Path(source).expanduser()
    if path.is_file():
        return [path]
    if not path.exists() and len(source) == 16:
        found = [root / source for root in (runs_root(store), imported_root(store)) if (root / source).is_dir()]
        path = found[0] if found else path
    if path.is_dir():
        files = sorted(path.glob("level_*/ticket.safetensors")) or sorted(path.glob("*.safetensors"))
        if files:
            return files
        raise UserError(f"{path} holds no ticket files; give a run directory, a run id, a ticket file or an exported folder")
    raise UserError(f"--from {source}: no such ticket file, run directory, or run id in {store} (runs or imported tickets)")


@app.command()
def transfer(
    from_: Annotated[str, typer.Option("--from", help="a run directory, run id, ticket file or exported ticket folder", show_default=False)],
    dataset: Annotated[str, typer.Option(help="target dataset", show_default=False)],
    optimizer: Annotated[str, typer.Option(help="target optimizer: sgd or adam")] = "sgd",
    levels: Annotated[str | None, typer.Option(help="comma-separated levels to train (default: every ticket found)", show_default=False)] = None,
    epochs: Annotated[int | None, typer.Option(help="target epochs (default: the model's paper schedule)", show_default=False)] = None,
    train_size: Annotated[int | None, typer.Option(help="train on a stratified subset of this many images", show_default=False)] = None,
    batch_size: Annotated[int, typer.Option(help="training batch size")] = 512,
    seed: Annotated[int, typer.Option(help="seed of the target training (data order, augmentation, new output layer)")] = 0,
    precision: Annotated[str, typer.Option(help="fp32, or bf16 (mixed precision; changes results)")] = "fp32",
    kind: Annotated[str, typer.Option("--variant", help="transfer (the ticket), random (global permutation + fresh init), random-layerwise, random-mask, random-weights")] = "transfer",
    store: StoreOption = None,
    data_dir: DataDirOption = None,
    device: DeviceOption = "auto",
    channels_last: ChannelsLastOption = True,
    eval_every: EvalEveryOption = None,
) -> int:
    """Train a run's tickets on a target dataset with a target optimizer.

    Same mask, same rewind-point weights; a fresh seeded output layer exactly when the class counts differ. --variant trains a random-ticket baseline instead.
    """
    store_path = _store(store)
    wanted = _parse_levels(levels)
    mask, weights = variant(kind)
    graph = JobGraph()
    for path in ticket_files(from_, store_path):
        info = load_ticket(path).info
        if wanted is not None and info.level not in wanted:
            continue
        spec = build_spec(TrainSpec, dict(
            source=info.run_id, level=info.level, model=info.model, dataset=dataset, optimizer=optimizer, epochs=epochs,
            batch_size=batch_size, train_size=train_size, seed=seed, mask=mask, weights=weights, precision=precision))
        graph.add(TrainJob(spec, TicketSource.of_ticket(info), path))
    if not graph.jobs:
        raise UserError(f"none of the tickets in {from_} is at levels {levels}")
    status = execute(graph, store_path, data_dir, device, make_speed(channels_last, False, eval_every))
    table = Table(title=f"{kind} -> {dataset} ({optimizer})")
    for column in ("level", "pruned", "test accuracy", "result"):
        table.add_column(column, justify="right")
    for job in graph.ordered():
        assert isinstance(job, TrainJob)
        directory = TrainingDir(trainings_root(store_path) / job.spec.job_id())
        result = directory.read_result()
        if result is not None:
            table.add_row(str(result.level), percent(result.fraction_pruned), percent(result.test_accuracy), str(directory.result_file))
    console.print(table)
    return status


DEMO_SPECS = ("demo_within_distribution.toml", "demo_across_optimizers.toml")


def demo_specs() -> list[ExperimentSpec]:
    folder = resources.files("oneticket.experiments") / "builtin"
    return [parse_experiment((folder / name).read_text(), f"oneticket/experiments/builtin/{name}") for name in DEMO_SPECS]


@app.command()
def demo(
    store: Annotated[Path | None, typer.Option(help="where the demo's runs go (default: <$ONETICKET_STORE or ~/.oneticket>/demo)", show_default=False)] = None,
    device: DeviceOption = "auto",
) -> int:
    """Offline demo on scikit-learn's digits, a few minutes on a laptop; then the report.

    Tickets within one distribution (digits half a -> half b) and across optimizers (SGD <-> Adam), each against its own ticket and a random ticket.
    """
    store_path = store or _store(None) / "demo"
    graph = expand_all(demo_specs())
    status = execute(graph, store_path, None, device)
    written = write_report(graph, store_path, store_path / "report")
    console.print(f"[bold]report:[/] {written.html}\n        {written.markdown}")
    return status
