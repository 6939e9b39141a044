"""Live progress and result tables for the terminal (rich)."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from oneticket.sparsity import Mask
from oneticket.training import Compute
from oneticket.tickets import (
    EpochDone,
    Event,
    LevelFinished,
    LevelResult,
    LevelStarted,
    RunStarted,
    StepDone,
    Ticket,
    describe_model,
)


def percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f}%"


class FindDisplay:
    """Renders IMP events: a run bar, a level bar (level, epoch, loss, accuracy, elapsed, ETA)."""

    def __init__(self, console: Console):
        self.console = console
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(bar_width=16),
            TextColumn("{task.fields[status]}"),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(compact=True),
            console=console,
            transient=False,
        )
        self.run_task = None
        self.level_task = None
        self.levels = 0
        self.epochs = 0
        self.steps = 0
        self.state = {"level": 0, "epoch": 0, "loss": None, "acc": None, "pruned": 0.0}

    def __enter__(self) -> FindDisplay:
        return self  # the live display starts at RunStarted, after any dataset download and its own bar

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def __call__(self, event: Event) -> None:
        if isinstance(event, RunStarted):
            self._run_started(event)
        elif isinstance(event, LevelStarted):
            self._level_started(event)
        elif isinstance(event, StepDone):
            self._step(event)
        elif isinstance(event, EpochDone):
            self.state["acc"] = event.record.test_accuracy
            self._refresh_level()
        elif isinstance(event, LevelFinished):
            self._level_finished(event.result, event.skipped)

    def _run_started(self, e: RunStarted) -> None:
        s = e.spec
        self.levels, self.epochs, self.steps = s.levels, s.num_epochs, e.steps_per_epoch
        todo = max(0, s.levels + 1 - e.finished_levels - (1 if s.shares_dense_run and not e.finished_levels else 0))
        pruning = f"rate {s.rate:g} {'layerwise' if s.layerwise else 'global'}, rewind {s.rewind}"
        if s.shares_dense_run:
            finder = ", ".join(f"{k} {v}" for k, v in s.finder_settings().items() if k not in ("finder", "sparsities"))
            targets = ", ".join(f"{100 * t:g}%" for t in s.sparsity_targets())
            pruning = f"finder {s.finder}{' (' + finder + ')' if finder else ''}, " + \
                      (f"{pruning}" if s.finds_by_imp else f"to {targets} pruned, rewind {s.rewind}")
        recipe = f"batch {s.batch_size}, lr {s.base_lr:g}" + (f", warm-up {s.warmup}" if s.warmup else "") + \
                 ("" if s.augment == "crop-flip" else f", augmentation {s.augment}")
        self.console.print(
            f"run [bold]{s.run_id()}[/] in {e.run_dir}\n"
            f"{describe_model(s.model, s.width, s.resolved_model_options())} on {s.dataset} ({e.train_size} images), "
            f"{s.optimizer} ({recipe}), {pruning}; levels 0..{s.levels} x {s.num_epochs} epochs of {e.steps_per_epoch} steps on {e.device}"
            + (f"; {e.finished_levels} level(s) already finished" if e.finished_levels else "")
        )
        self.progress.start()
        self.run_task = self.progress.add_task("all levels", total=todo * self.epochs * self.steps, status="")
        self.level_task = self.progress.add_task("", total=self.epochs * self.steps, status="", visible=False)

    def _level_started(self, e: LevelStarted) -> None:
        self.state.update(level=e.level, epoch=e.resumed_epoch, loss=None, acc=None, pruned=e.fraction_pruned)
        done = e.resumed_epoch * self.steps
        self.progress.reset(self.level_task, total=self.epochs * self.steps, completed=done, visible=True)
        self.progress.advance(self.run_task, done)
        if e.resumed_epoch:
            self.console.print(f"level {e.level}: resuming after epoch {e.resumed_epoch}")
        self._refresh_level()

    def _step(self, e: StepDone) -> None:
        self.state["epoch"] = e.epoch + 1
        if e.loss is not None:
            self.state["loss"] = e.loss
        self.progress.advance(self.level_task)
        self.progress.advance(self.run_task)
        if e.loss is not None or e.step == 0:
            self._refresh_level()

    def _refresh_level(self) -> None:
        s = self.state
        loss = "-" if s["loss"] is None else f"{s['loss']:.3f}"
        self.progress.update(
            self.level_task,
            description=f"level {s['level']}/{self.levels} {100 * s['pruned']:.1f}% pruned, epoch {s['epoch']}/{self.epochs}",
            status=f"loss {loss} acc {percent(s['acc'])}",
        )

    def _level_finished(self, result: LevelResult, skipped: bool) -> None:
        if skipped:
            self.console.print(f"level {result.level}: finished earlier, {percent(result.test_accuracy)} test accuracy")
            return
        if result.diverged:
            self.console.print(f"[red]level {result.level}: {result.message}[/]")
            return
        self.console.print(
            f"level {result.level}: {percent(result.fraction_pruned)} pruned, test accuracy "
            f"{percent(result.test_accuracy)} ({result.seconds:.1f} s)"
        )


def compute_text(compute: dict | None) -> str:
    """``1.0 epochs, 3 steps, 1.4e3 image passes, 0.7 s``; ``not recorded`` for older tickets."""
    if not compute:
        return "not recorded"
    c = Compute.of(compute)
    epochs = f"{c.epochs:g} epoch{'' if c.epochs == 1 else 's'}"
    return f"{epochs} ({c.steps} steps), {c.passes:.2g} image passes (forward + backward), {c.seconds:.1f} s"


def results_table(results: list[LevelResult]) -> Table:
    """One row per level; the ticket file relative to the run folder (printed under the table whole)."""
    table = Table(title="tickets")
    table.add_column("level", justify="right")
    table.add_column("% pruned", justify="right")
    table.add_column("test accuracy", justify="right")
    table.add_column("ticket (in the run folder)", overflow="fold")
    for r in results:
        ticket = str(r.ticket) if r.ticket else (r.message or "-")
        table.add_row(str(r.level), f"{100 * r.fraction_pruned:.2f}", percent(r.test_accuracy), ticket)
    return table


def ticket_tables(ticket: Ticket, path: Path) -> tuple[Table, Table]:
    info = ticket.info
    meta = Table(title=str(path), show_header=False)
    meta.add_column("field", style="bold")
    meta.add_column("value")
    rows = {
        "model": info.describe_model(),
        "classes": str(info.num_classes),
        "dataset": info.dataset + (f" ({info.train_size} training images)" if info.train_size else ""),
        "optimizer": info.optimizer,
        "epochs": str(info.epochs),
        "recipe": "-" if info.batch_size is None else
                  f"batch {info.batch_size}, lr {info.lr:g}" + (f", warm-up {info.warmup}" if info.warmup else "")
                  + f", augmentation {info.augment}",
        "level": str(info.level),
        "finder": ", ".join(f"{k} {v}" if k != "finder" else str(v) for k, v in info.finder_settings.items()) or info.finder,
        "pruning": f"rate {info.rate:g}, {'layerwise' if info.layerwise else 'global'}"
        + (", output layer included" if info.prune_output else ""),
        "compute to find it": compute_text(info.find_compute),
        "fraction pruned": percent(info.fraction_pruned),
        "rewind point": info.rewind,
        "test accuracy": percent(info.test_accuracy),
        "seeds": ", ".join(f"{k} {v}" for k, v in sorted(info.seeds.items(), key=lambda kv: kv[0] != "seed")),
        "run id": info.run_id,
        "file": ("compact (bit-packed mask, surviving weights)" if ticket.compact else "dense (mask and every weight)")
                + f", {path.stat().st_size / 1e6:.2f} MB" if path.is_file() else "",
    }
    if info.finder != "imp":
        rows.pop("pruning")  # the rate of IMP's levels does not apply: the finder row says where its levels are
    for key, value in rows.items():
        meta.add_row(key, value)
    return meta, sparsity_table(ticket.mask)


def sparsity_table(mask: Mask) -> Table:
    table = Table(title="sparsity per layer")
    for column in ("layer", "shape", "kept", "total", "% pruned"):
        table.add_column(column, justify="left" if column in ("layer", "shape") else "right")
    for layer in mask.layers():
        table.add_row(layer.name, "x".join(map(str, layer.shape)), str(layer.alive), str(layer.total), f"{100 * layer.fraction_pruned:.2f}")
    table.add_row("[bold]total[/]", "", str(mask.alive()), str(mask.total()), f"{100 * mask.fraction_pruned():.2f}")
    return table


def plain_table(title: str, header: list[str], rows: list[list[str]]) -> Table:
    """A table of text cells; the first column left-aligned, the rest right-aligned."""
    table = Table(title=title)
    for i, column in enumerate(header):
        table.add_column(column, justify="left" if i == 0 else "right", overflow="fold")
    for row in rows:
        table.add_row(*row)
    return table
