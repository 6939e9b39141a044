"""``oneticket plan | run | report | results | transfer | demo``: experiments from TOML specs."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path
from typing import Annotated, get_args

import typer
from rich.console import Console
from rich import box
from rich.table import Table

from oneticket import api
from oneticket.cli import Interrupted, app
from oneticket.cli.display import percent
from oneticket.cli.options import choices, existing_folder, flag_name
from oneticket.cli.run_display import PoolDisplay, RunDisplay, TaskDisplay
from oneticket.errors import UserError
from oneticket.experiments import (
    ExperimentSpec,
    JobGraph,
    JobStatus,
    MeasuredThroughput,
    Plan,
    Row,
    Summary,
    TrainJob,
    builtin_names,
    expand_all,
    is_demo,
    load_specs,
    make_plan,
)
from oneticket.experiments.graph import ImpJob
from oneticket.experiments.spec import DEMO, DEMO_SPECS, Optimizer
from oneticket.data import default_data_dir
from oneticket.experiments.plan import DatasetSizes, FinderCost, finder_costs
from oneticket.experiments.pool import default_workers
from oneticket.experiments.schedule import waited_on_failure
from oneticket.experiments.tasks import task_graph
from oneticket.experiments.throughput import ReferenceThroughput
from oneticket.report import rows_csv, write_report
from oneticket.tickets import VARIANTS, ImpSpec, TrainSpec, load_ticket, trainings_root
from oneticket.tickets.spec import AUGMENT_HELP, LR_HELP, LR_SCALING_HELP, WARMUP_HELP, Augment, LrScaling
from oneticket.training import Speed, resolve_device

console = Console(highlight=False)

SpecFiles = Annotated[list[str], typer.Argument(
    metavar="SPEC...", show_default=False,
    help=f"experiment specs: .toml files, or built-in specs by name ({', '.join(builtin_names())}; "
         "demo: both demo specs, read from the demo's store, $ONETICKET_STORE/demo or ~/.oneticket/demo, "
         "unless --store names another)")]
StoreOption = Annotated[Path | None, typer.Option(metavar="DIR", help="where runs are kept (default: $ONETICKET_STORE or ~/.oneticket)", show_default=False)]
DataDirOption = Annotated[Path | None, typer.Option(metavar="DIR", callback=existing_folder, help="folder with the datasets (default: $ONETICKET_DATA or ~/.oneticket/data); missing files are downloaded", show_default=False)]
DeviceOption = Annotated[str, typer.Option(metavar="DEVICE", help="auto (CUDA if available), cpu, cuda or cuda:N")]
ChannelsLastOption = Annotated[bool, typer.Option("--channels-last/--no-channels-last", help="channels-last (NHWC) memory format; not part of any job id")]
EvalEveryOption = Annotated[int | None, typer.Option(min=1, metavar="N", show_default=False, help="evaluate every N epochs and after the last (default: automatic, a small share of the time)")]


def make_speed(channels_last: bool, compile_: bool, eval_every: int | None) -> Speed:
    return Speed(channels_last=channels_last, compile=compile_, eval_every=eval_every)


def _store(store: Path | None) -> Path:
    return api.store_path(store)


demo_store = api.demo_store
_experiment_store = api.experiment_store


def load_graph(names: list[str]) -> JobGraph:
    """The job graph of spec files or built-in spec names."""
    return api.experiment_graph(names)


def _duration(seconds: float | None) -> str:
    """``45 s``, ``3 min 20 s`` (under 5 min), ``42 min``, ``7.5 h`` (under 48 h), ``3.2 days``."""
    if seconds is None:
        return "?"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 300:
        minutes, rest = divmod(round(seconds), 60)
        return f"{minutes} min {rest} s" if rest else f"{minutes} min"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def _job_group(status: JobStatus) -> str:
    """The ``plan`` row a job joins: IMP runs by model, dataset and optimizer; trainings by kind,
    model, source -> target and optimizer; the seeds of one row are counted in its own column."""
    job = status.job
    if isinstance(job, ImpJob):
        s = job.spec
        return f"{job.finder} {s.model} w{s.width:g} {s.dataset}/{s.optimizer} {_recipe(s)}, levels 0-{s.levels}"
    s, src = job.spec, job.source
    finder = "" if src.finder == "imp" else f" ({src.finder})"
    return f"{s.kind} {src.model} w{src.width:g} {src.dataset}/{src.optimizer}{finder} -> {s.dataset}/{s.optimizer} {_recipe(s)}"


def _recipe(spec: ImpSpec | TrainSpec) -> str:
    """What tells apart rows of the same kind in specs of different scales: epochs and images."""
    images = f", {spec.train_size} img" if spec.train_size is not None else ""
    return f"{spec.num_epochs}ep{images}"


def _seed_list(seeds: list[int]) -> str:
    """``[0, 1, 2, 5]`` -> ``"0-2, 5"``."""
    runs: list[list[int]] = []
    for seed in sorted(set(seeds)):
        if runs and seed == runs[-1][-1] + 1:
            runs[-1].append(seed)
        else:
            runs.append([seed])
    return ", ".join(str(r[0]) if len(r) == 1 else f"{r[0]}-{r[-1]}" for r in runs)


def plan_table(plan: Plan) -> Table:
    """One row per IMP run or per series of trainings, over all seeds: state, work done and left, time."""
    table = Table(title="jobs (epochs and time: still to go)", box=box.SIMPLE_HEAD, pad_edge=False)
    for column in ("job", "seeds", "state", "done", "epochs", "time"):  # epochs and time still to go
        table.add_column(column, justify="left" if column in ("job", "seeds", "state") else "right")
    groups: dict[str, list[JobStatus]] = {}
    for status in plan.statuses:
        groups.setdefault(_job_group(status), []).append(status)
    for key, statuses in groups.items():
        states = sorted({s.state for s in statuses})
        left = [s for s in statuses if not s.finished]
        seconds = None if any(s.seconds_left is None for s in left) else sum(s.seconds_left or 0.0 for s in left)
        levels = {s.job.spec.level for s in statuses if isinstance(s.job, TrainJob)}
        what = key if not levels else f"{key} ({len(levels)} level{'s' if len(levels) > 1 else ''})"
        table.add_row(what, _seed_list([s.job.spec.seed for s in statuses]), "/".join(states),
                      f"{sum(s.trainings_done for s in statuses)}/{sum(s.trainings_total for s in statuses)}",
                      str(sum(s.epochs_left for s in statuses)), _duration(seconds) if left and seconds is not None else "")
    return table


def finder_cost_table(costs: list[FinderCost]) -> Table:
    """Per source and finder: epochs of training that find the tickets, and that train them."""
    table = Table(title="compute per source and finder (epochs of training, all seeds)", box=box.SIMPLE_HEAD, pad_edge=False)
    for column in ("model", "tickets from", "finder", "runs", "to find", "to train them"):
        table.add_column(column, justify="right" if column in ("runs", "to find", "to train them") else "left")
    for c in costs:
        table.add_row(c.model, c.source, c.finder, str(c.runs), f"{c.find_epochs:g}", str(c.evaluate_epochs))
    return table


@app.command()
def plan(
    specs: SpecFiles,
    store: StoreOption = None,
    device: DeviceOption = "auto",
    measure: Annotated[bool, typer.Option(help="measure this machine's training speed for the estimate (a few seconds per model)")] = True,
    reference: Annotated[str | None, typer.Option(metavar="GPU", help="estimate for a reference GPU instead (e.g. H100), from recorded epoch times", show_default=False)] = None,
    data_dir: Annotated[Path | None, typer.Option(metavar="DIR", callback=existing_folder, help="folder with the datasets, to count their images (default: $ONETICKET_DATA or ~/.oneticket/data); nothing is downloaded", show_default=False)] = None,
    workers: Annotated[int | None, typer.Option(min=1, metavar="N", show_default=False, help="estimate for 'run --workers N' (N one-thread workers) instead of one process")] = None,
) -> None:
    """Show what an experiment will run: its jobs, which are done, the work left and a time estimate.

    Jobs shared between spec files (the same IMP run, say) are listed once. With --data-dir, image counts come from the files there (real subsets, say).
    """
    graph = load_graph(specs)
    store_path = _experiment_store(store, graph)
    throughput: MeasuredThroughput | ReferenceThroughput | None = None
    if reference is not None:
        throughput = ReferenceThroughput(reference)
    elif measure:
        throughput = MeasuredThroughput(store_path, resolve_device(device), workers)
    sizes = DatasetSizes(data_dir or default_data_dir())
    result = make_plan(graph, store_path, throughput, sizes)
    console.print(plan_table(result))
    costs = finder_costs(graph)
    if any(cost.finder != "IMP" for cost in costs):
        console.print(finder_cost_table(costs))
    left = [s for s in result.statuses if not s.finished]
    console.print(
        f"{len(result.statuses)} jobs ({result.jobs_done} finished, {len(left)} to run), "
        f"{result.trainings_total} trainings ({result.trainings_left} left), {result.epochs_left} epochs left"
    )
    if isinstance(throughput, ReferenceThroughput):
        console.print(f"estimated time on one {reference} (recorded epoch times): {_duration(result.seconds_left)}")
    elif throughput is not None:
        measured = f" (measured now: {'; '.join(throughput.measured)})" if throughput.measured else ""
        how = f", {workers} one-thread worker(s)" if workers else ""
        console.print(f"estimated time on {throughput.device}{how}: {_duration(result.seconds_left)}{measured}")
    if sizes.not_found:
        console.print(f"not in {sizes.data_dir}, so their official image counts were used: "
                      f"{', '.join(sorted(sizes.not_found))} (pass --data-dir where your files are)")
    if result.failed:
        console.print(f"[red]{len(result.failed)} job(s) failed (a level diverged); see 'oneticket report'[/]")


def execute(graph: JobGraph, store: Path, data_dir: Path | None, device: str, speed: Speed | None = None,
            threads: int | None = None) -> int:
    """Run every unfinished job of ``graph`` here with the live display; 1 if any job failed."""
    executor = api.make_executor(store, data_dir, resolve_device(device), speed, threads)  # --device errors name the flag
    try:
        with RunDisplay(console, make_plan(graph, store)) as display:
            summary = api.run_graph(graph, executor, display)
    except KeyboardInterrupt:
        raise Interrupted("interrupted; finished epochs are checkpointed, rerun the same command to continue") from None
    return _summarize(summary, f"on {executor.device}")


def execute_in_pool(graph: JobGraph, store: Path, data_dir: Path | None, device: str, speed: Speed | None,
                    workers: int, threads_per_worker: int = 1) -> int:
    """Run every unfinished job of ``graph`` on ``workers`` processes here; 1 if any job failed."""
    executor = api.make_executor(store, data_dir, resolve_device(device), speed, threads_per_worker, workers)
    tasks = task_graph(graph, store)
    try:
        with PoolDisplay(console, list(tasks.tasks.values()), workers) as display:
            summary = api.run_graph(graph, executor, display)
    except KeyboardInterrupt:
        raise Interrupted("interrupted; finished epochs are checkpointed, rerun the same command to continue") from None
    threads = "thread" if threads_per_worker == 1 else "threads"
    return _summarize(summary, f"on {executor.device}, {workers} worker process(es) of {threads_per_worker} {threads}")


def execute_on_ray(graph: JobGraph, store: Path, data_dir: Path | None, options: object, speed: Speed) -> int:
    """Run every unfinished job of ``graph`` as Ray tasks; 1 if any job failed."""
    executor = api.make_executor(store, data_dir, speed=speed, ray=options)
    tasks = task_graph(graph, store)
    try:
        with TaskDisplay(console, len(tasks.tasks)) as display:
            summary = api.run_graph(graph, executor, display)
    except KeyboardInterrupt:
        raise Interrupted("interrupted; finished epochs are checkpointed, rerun the same command to continue") from None
    artifacts = "shared store" if executor.shared else "artifacts through Ray's object store"
    return _summarize(summary, f"on Ray ({artifacts})")


def _summarize(summary: Summary, where: str) -> int:
    """The run's last lines: counts, each failure's cause, and how many jobs only waited on one."""
    console.print(f"{summary.done} job(s) run, {summary.skipped} already finished, {len(summary.failed)} failed, "
                  f"in {_duration(summary.seconds)} {where}")
    waited = [job for job, why in summary.failed if waited_on_failure(why)]
    for job, why in summary.failed:
        if not waited_on_failure(why):
            console.print(f"failed: {job.describe()}: {why}", style="red", markup=False)
    if waited:
        console.print(f"{len(waited)} more job(s) not run: they need one of the failed ones", style="red")
    return 1 if summary.failed else 0


EXECUTORS = ("local", "ray")
ARTIFACTS = ("auto", "shared", "object-store")  # as oneticket.experiments.ray_executor checks them (it needs Ray)


@app.command()
def run(
    specs: SpecFiles,
    store: StoreOption = None,
    data_dir: DataDirOption = None,
    device: DeviceOption = "auto",
    channels_last: ChannelsLastOption = True,
    compile_: Annotated[bool, typer.Option("--compile/--no-compile", help="torch.compile the training step (long GPU runs); not part of any job id")] = False,
    eval_every: EvalEveryOption = None,
    threads: Annotated[int | None, typer.Option(min=1, metavar="N", show_default=False, help="PyTorch CPU threads (default: all cores; with --workers: 1 per worker). CPU results are bit-identical for the same thread count")] = None,
    workers: Annotated[int | None, typer.Option(min=1, metavar="N", show_default=False, help="run this many jobs at once, each in a worker process with --threads threads (default 1): small models train faster side by side, and a busy machine slows them only by its share")] = None,
    executor: Annotated[str, typer.Option(metavar=choices(EXECUTORS), help="local (this process) or ray (Ray tasks on this machine or a cluster; needs pip install 'oneticket[ray]')")] = "local",
    address: Annotated[str | None, typer.Option(metavar="ADDRESS", help="ray: the cluster to join (auto, or ray://HEAD:10001); default: start Ray here for this run", show_default=False)] = None,
    cpus_per_task: Annotated[float | None, typer.Option(metavar="CPUS", show_default=False, help="ray: CPUs per task, also its PyTorch thread count (default: 1 with GPUs; else this machine's thread count, so results equal the local executor's; 1 runs more small tasks at once, with other bits)")] = None,
    gpus_per_task: Annotated[float | None, typer.Option(metavar="GPUS", show_default=False, help="ray: GPUs per task (default: 1 where the cluster has GPUs, else 0; 0.25 runs 4 small tasks per GPU)")] = None,
    retries: Annotated[int, typer.Option(metavar="N", help="ray: reruns of a task whose worker died")] = 3,
    artifacts: Annotated[str, typer.Option(metavar=choices(ARTIFACTS), help="ray: auto, shared (every node sees --store) or object-store (results travel to this machine)")] = "auto",
) -> int:
    """Run the jobs of experiment specs that are not finished yet (resumable: rerun to continue).

    Ctrl-C stops cleanly; the next run continues from the last finished epoch. With --executor ray the
    jobs run as Ray tasks, trainings of a level as soon as its ticket exists; the results are the same.
    """
    if executor not in EXECUTORS:
        raise UserError(f"unknown --executor {executor!r}; choose one of: {', '.join(EXECUTORS)}")
    graph = load_graph(specs)
    store = _experiment_store(store, graph)
    speed = make_speed(channels_last, compile_, eval_every)
    if executor == "local":
        if address is not None:
            raise UserError("--address is for --executor ray; add --executor ray or drop --address")
        if workers is not None:
            return execute_in_pool(graph, store, data_dir, device, speed, workers, threads or 1)
        return execute(graph, store, data_dir, device, speed, threads)
    if threads is not None or workers is not None:
        raise UserError("with --executor ray each task uses --cpus-per-task threads and Ray decides how many run at once; "
                        "drop --threads and --workers")
    from oneticket.experiments.ray_executor import RayOptions  # Ray is an optional extra

    if device == "cpu" and gpus_per_task is None:
        gpus_per_task = 0.0
    options = RayOptions(address=address, cpus_per_task=cpus_per_task, gpus_per_task=gpus_per_task, retries=retries,
                         artifacts=artifacts)
    return execute_on_ray(graph, store, data_dir, options, speed)


def _default_report_dir(store: Path, graph: JobGraph) -> Path:
    """``<store>/reports/<experiment names>``; the demo's: ``<store>/report``, where 'oneticket demo' writes it."""
    if sorted(spec.name for spec in graph.experiments) == sorted(DEMO_SPECS):
        return store / "report"
    return store / "reports" / "+".join(spec.name for spec in graph.experiments)


@app.command()
def report(
    specs: SpecFiles,
    store: StoreOption = None,
    out: Annotated[Path | None, typer.Option(metavar="DIR", help="output folder (default: <store>/reports/<experiment names>; for the demo: <store>/report)", show_default=False)] = None,
) -> None:
    """Draw the figures and write the report (Markdown, self-contained HTML, CSV) of finished results."""
    graph = load_graph(specs)
    store_path = _experiment_store(store, graph)
    written = write_report(graph, store_path, out or _default_report_dir(store_path, graph))
    for section in written.sections:
        points = sum(line.points for line in section.lines)
        console.print(f"{section.spec.name}: {len(section.lines)} lines, {points} points, "
                      f"{section.jobs_finished}/{section.jobs} jobs finished")
    console.print(f"report: {written.html}", soft_wrap=True, markup=False)
    console.print(f"        {written.markdown}", soft_wrap=True, markup=False)


@app.command()
def results(
    specs: SpecFiles,
    store: StoreOption = None,
    csv: Annotated[bool, typer.Option("--csv", help="print CSV (one tidy row per point and seed) instead of a table")] = False,
) -> None:
    """Print the results of experiment specs as one tidy table."""
    graph = load_graph(specs)
    rows = api.result_rows(graph, store)
    if csv:
        sys.stdout.write(rows_csv(rows))
        return
    for (experiment, model), mine in _by_experiment_and_model(rows).items():
        console.print(results_table(f"{experiment}: {model}", mine))
    if not rows:
        demo = store is None and all(is_demo(spec) for spec in graph.experiments)
        how = "'oneticket demo'" if demo else "'oneticket run' with the same specs"
        console.print(f"no finished results yet; run {how}")


def _by_experiment_and_model(rows: list[Row]) -> dict[tuple[str, str], list[Row]]:
    groups: dict[tuple[str, str], list[Row]] = {}
    for row in rows:
        groups.setdefault((row.experiment, row.model), []).append(row)
    return groups


def results_table(title: str, rows: list[Row]) -> Table:
    """One experiment and model: a row per point and seed, narrow enough for 80 columns."""
    table = Table(title=title, box=box.SIMPLE_HEAD)
    for column in ("target", "trained", "line", "seed", "level", "pruned", "accuracy"):
        table.add_column(column, justify="right" if column in ("seed", "level", "pruned", "accuracy") else "left")
    for row in rows:
        line = {"own": f"own {row.source}", "transfer": f"from {row.source}"}.get(row.kind, row.kind)
        table.add_row(row.target, row.train_optimizer, line, str(row.seed), str(row.level), percent(row.fraction_pruned),
                      percent(row.test_accuracy))
    return table


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


@app.command()
def transfer(
    from_: Annotated[str, typer.Option("--from", metavar="RUN", help="a run directory, run id, ticket file or exported ticket folder", show_default=False)],
    dataset: Annotated[str, typer.Option(metavar="DATASET", help="target dataset", show_default=False)],
    optimizer: Annotated[str, typer.Option(metavar=choices(get_args(Optimizer)), help="target optimizer: sgd or adam")] = "sgd",
    levels: Annotated[str | None, typer.Option(metavar="LEVELS", help="comma-separated levels to train (default: every ticket found)", show_default=False)] = None,
    epochs: Annotated[int | None, typer.Option(metavar="N", help="target epochs (default: the model's paper schedule)", show_default=False)] = None,
    train_size: Annotated[int | None, typer.Option(metavar="N", help="train on a stratified subset of this many images", show_default=False)] = None,
    batch_size: Annotated[int, typer.Option(metavar="N", help="training batch size")] = 512,
    seed: Annotated[int, typer.Option(metavar="SEED", help="seed of the target training (data order, augmentation, new output layer)")] = 0,
    precision: Annotated[str, typer.Option(metavar=choices(("fp32", "bf16")), help="fp32, or bf16 (mixed precision; changes results)")] = "fp32",
    lr: Annotated[float | None, typer.Option(metavar="LR", help=LR_HELP, show_default=False)] = None,
    lr_scaling: Annotated[str, typer.Option(metavar=choices(get_args(LrScaling)), help=LR_SCALING_HELP)] = "none",
    warmup: Annotated[str | None, typer.Option(metavar="LENGTH", help=WARMUP_HELP, show_default=False)] = None,
    augment: Annotated[str, typer.Option(metavar=choices(get_args(Augment)), help=AUGMENT_HELP)] = "crop-flip",
    kind: Annotated[str, typer.Option("--variant", metavar=choices(VARIANTS), help="transfer (the ticket), random (global permutation + fresh init), random-layerwise, random-mask, random-weights")] = "transfer",
    store: StoreOption = None,
    data_dir: DataDirOption = None,
    device: DeviceOption = "auto",
    channels_last: ChannelsLastOption = True,
    eval_every: EvalEveryOption = None,
    threads: Annotated[int | None, typer.Option(min=1, metavar="N", show_default=False, help="PyTorch CPU threads (default: all cores); CPU results are bit-identical for the same count")] = None,
) -> int:
    """Train a run's tickets on a target dataset with a target optimizer.

    Same mask, same rewind-point weights; a fresh seeded output layer exactly when the class counts differ. --variant trains a random-ticket baseline instead.
    """
    store_path = _store(store)
    wanted = _parse_levels(levels)
    tickets = [(path, load_ticket(path)) for path in api.ticket_files(from_, store_path)]
    missing = sorted((wanted or set()) - {ticket.info.level for _, ticket in tickets})
    if missing:
        found = ", ".join(str(level) for level in sorted(ticket.info.level for _, ticket in tickets))
        raise UserError(f"--levels {','.join(map(str, missing))}: no ticket at that level in {from_} "
                        f"(it has levels {found}); list only those")
    chosen = [(path, ticket) for path, ticket in tickets if wanted is None or ticket.info.level in wanted]
    graph = api.transfer_graph(chosen, dataset, optimizer, kind, flag_name, epochs=epochs, batch_size=batch_size,
                               train_size=train_size, seed=seed, precision=precision, lr=lr, lr_scaling=lr_scaling,
                               warmup=warmup, augment=augment)
    status = execute(graph, store_path, data_dir, device, make_speed(channels_last, False, eval_every), threads)
    table = Table(title=f"{kind} -> {dataset} ({optimizer})")
    for column in ("level", "pruned", "test accuracy", "training"):
        table.add_column(column, justify="right")
    for trained in api.trainings(graph, store_path):
        if trained.result is not None:
            table.add_row(str(trained.result.level), percent(trained.result.fraction_pruned),
                          percent(trained.result.test_accuracy), trained.spec.job_id())
    console.print(table)
    console.print(f"results: {trainings_root(store_path)}/<training>/result.json", soft_wrap=True, markup=False)
    return status


def demo_specs() -> list[ExperimentSpec]:
    """The demo's two specs, as the built-in name ``demo`` gives them."""
    return load_specs([DEMO])


@app.command()
def demo(
    store: Annotated[Path | None, typer.Option(metavar="DIR", help="where the demo's runs go (default: <$ONETICKET_STORE or ~/.oneticket>/demo)", show_default=False)] = None,
    device: DeviceOption = "auto",
    threads: Annotated[int | None, typer.Option(min=1, metavar="N", show_default=False, help="CPU cores to use: one single-threaded worker process each (default: every core this process may use); the results do not depend on it")] = None,
) -> int:
    """Offline demo on scikit-learn's digits, about 2 minutes on 2 CPU cores; then the report.

    Tickets within one distribution (digits half a -> half b) and across optimizers (SGD <-> Adam), each against its own ticket and a random ticket, over 3 seeds.
    """
    store_path = store or demo_store()
    graph = expand_all(demo_specs())
    status = execute_in_pool(graph, store_path, None, device, None, threads or default_workers())
    written = write_report(graph, store_path, _default_report_dir(store_path, graph))
    for section in written.sections:
        console.print(f"\n[bold]{section.spec.display_title}[/]")
        for panel, sentences in section.summary:
            console.print(f"  {panel}")
            for sentence in sentences:
                console.print(textwrap.fill(sentence, width=max(console.width, 40), initial_indent="    - ",
                                            subsequent_indent="      "), soft_wrap=True, markup=False)
    store_flag = "" if store is None else f" --store {store_path}"
    console.print("")
    for line in (f"report:  {written.html}", f"         {written.markdown}", f"numbers: oneticket results demo{store_flag}",
                 f"tickets: oneticket tickets list --store {store_path}"):
        console.print(line, soft_wrap=True, markup=False)  # paths whole, never broken across lines
    return status
