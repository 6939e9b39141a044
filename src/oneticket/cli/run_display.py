"""Live progress of a job graph: an overall bar (jobs done, work left, ETA) and the current job's bar."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from oneticket.cli.display import percent
from oneticket.experiments import ImpJob, JobEnded, JobStarted, Plan
from oneticket.experiments.executor import ExecutorEvent
from oneticket.experiments.pool import WorkerEvent
from oneticket.experiments.schedule import waited_on_failure
from oneticket.experiments.tasks import Task, TaskEnded
from oneticket.tickets import EpochDone, LevelFinished, LevelStarted, StepDone


class RunDisplay:
    """Renders executor events. The overall bar counts work (training images of the jobs left, as
    the planner weighs them), so its ETA reflects long and short jobs alike."""

    def __init__(self, console: Console, plan: Plan):
        self.console = console
        self.cost = {s.job.id: s.images_left for s in plan.statuses}
        self.epochs = {s.job.id: s.job.epochs_per_training for s in plan.statuses}
        self.total_jobs = len(plan.statuses)
        self.jobs_done = 0
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(bar_width=20),
            TextColumn("{task.fields[status]}"),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(compact=True),
            console=console,
        )
        self.overall = self.progress.add_task("jobs", total=max(1, sum(self.cost.values())), status="")
        self.current = self.progress.add_task("", total=1, status="", visible=False)
        self.job: JobStarted | None = None
        self.credited = 0.0  # work credited to the overall bar for the current job
        self.state: dict[str, object] = {}

    def __enter__(self) -> RunDisplay:
        self.progress.start()
        self._refresh_overall()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def __call__(self, event: ExecutorEvent) -> None:
        if isinstance(event, JobStarted):
            self._job_started(event)
        elif isinstance(event, JobEnded):
            self._job_ended(event)
        elif isinstance(event, LevelStarted):
            self.state.update(level=event.level, pruned=event.fraction_pruned, loss=None, acc=None, epoch=event.resumed_epoch)
            self.progress.reset(self.current, total=1, completed=0, visible=True)
            self._refresh_current()
        elif isinstance(event, StepDone):
            total = self.epochs[self.job.job.id] * event.steps if self.job else 1
            self.progress.update(self.current, total=total, completed=event.epoch * event.steps + event.step + 1)
            self.state["epoch"] = event.epoch + 1
            if event.loss is not None:
                self.state["loss"] = event.loss
                self._refresh_current()
        elif isinstance(event, EpochDone):
            self.state["acc"] = event.record.test_accuracy
            self._credit_epoch()
            self._refresh_current()
        elif isinstance(event, LevelFinished) and not event.skipped and self.job and isinstance(self.job.job, ImpJob):
            r = event.result
            self.console.print(f"  level {r.level}: {percent(r.fraction_pruned)} pruned, "
                               f"{'diverged' if r.diverged else percent(r.test_accuracy) + ' test accuracy'}")

    def _job_started(self, e: JobStarted) -> None:
        self.job, self.credited = e, 0.0
        if not e.status.finished:
            self.console.print(f"[bold]job {e.position}/{e.total}[/] {e.job.describe()}")

    def _credit_epoch(self) -> None:
        if self.job is None or not self.job.status.epochs_left:
            return
        share = self.cost[self.job.job.id] / self.job.status.epochs_left
        self.credited += share
        self.progress.advance(self.overall, share)

    def _job_ended(self, e: JobEnded) -> None:
        self.progress.advance(self.overall, max(0.0, self.cost.get(e.job.id, 0) - self.credited))
        self.jobs_done += 1
        self.progress.update(self.current, visible=False)
        if e.state == "done":
            self.console.print(f"  done in {e.seconds:.1f} s")
        elif e.state == "failed":
            self.console.print(f"  [red]failed: {e.message}[/]")
        self._refresh_overall()

    def _refresh_overall(self) -> None:
        self.progress.update(self.overall, description=f"jobs {self.jobs_done}/{self.total_jobs}", status="")

    def _refresh_current(self) -> None:
        s = self.state
        loss = "-" if s.get("loss") is None else f"{s['loss']:.3f}"
        acc = s.get("acc")
        self.progress.update(
            self.current,
            description=f"level {s.get('level')} ({100 * float(s.get('pruned') or 0):.1f}% pruned) "
                        f"epoch {s.get('epoch')}/{self.epochs.get(self.job.job.id) if self.job else '?'}",
            status=f"loss {loss} acc {percent(acc if isinstance(acc, float) else None)}",
        )


class TaskDisplay:
    """Renders the events of an executor that runs many tasks at once: one bar over all tasks, a
    line per finished task (where it ran, how long it took) and per finished or failed job."""

    def __init__(self, console: Console, tasks: int):
        self.console = console
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(bar_width=20),
            TextColumn("{task.completed:.0f}/{task.total:.0f} tasks"),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(compact=True),
            console=console,
        )
        self.bar = self.progress.add_task("ray", total=max(1, tasks))

    def __enter__(self) -> TaskDisplay:
        return self  # the bar starts with the first event: after Ray is up, not before its errors

    def __exit__(self, *exc: object) -> None:
        if self.progress.live.is_started:
            self.progress.stop()

    def __call__(self, event: object) -> None:
        if not self.progress.live.is_started:
            self.progress.start()
        if isinstance(event, TaskEnded):
            self.progress.advance(self.bar)
            if event.state == "done":
                what = "; ".join(f"{percent(r.fraction_pruned)} pruned, {percent(r.test_accuracy)} test accuracy"
                                 for r in event.results) or "already finished"
                resumed = f", resumed after epoch {event.resumed_epoch}" if event.resumed_epoch else ""
                self.console.print(f"{event.task.describe()}: {what} ({event.seconds:.1f} s, {event.where}{resumed})")
        elif isinstance(event, JobEnded) and event.state == "failed":
            self.console.print(f"[red]failed: {event.job.describe()}: {event.message}[/]")


class PoolDisplay:
    """Renders the events of the pool executor: one bar over all trainings (advanced epoch by
    epoch, so its ETA is live) and one line per worker with what it trains now. The text comes
    last on each line, so a narrow terminal cuts its end, not the bars."""

    def __init__(self, console: Console, tasks: list[Task], workers: int):
        self.console = console
        self.epochs = {task.key: task.job.epochs_per_training for task in tasks}
        self.credited: dict[str, float] = {}
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(bar_width=16),
                                 TextColumn("{task.fields[status]}"), console=console)
        self.total = len(tasks)
        self.finished = 0
        self.overall = self.progress.add_task("all     ", total=max(1, self.total), status="")
        self.rows: dict[int, int] = {}  # worker pid -> its progress row
        self.ended: set[str] = set()
        self.workers = workers

    def __enter__(self) -> PoolDisplay:
        self.progress.start()
        self._refresh_overall()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def __call__(self, event: object) -> None:
        if isinstance(event, WorkerEvent):
            self._worker_event(event)
        elif isinstance(event, TaskEnded):
            self.ended.add(event.task.key)
            left = 1.0 - self.credited.pop(event.task.key, 0.0)
            self.progress.advance(self.overall, left)
            self.finished += 1
            if event.state == "failed" and not waited_on_failure(event.message):
                self.console.print(f"failed: {event.task.describe()}: {event.message}", style="red", markup=False)
        self._refresh_overall()

    def _refresh_overall(self) -> None:
        task = self.progress.tasks[self.overall]
        elapsed = _clock(task.elapsed or 0.0)
        eta = f", eta {_clock(task.time_remaining)}" if task.time_remaining is not None and self.finished else ""
        self.progress.update(self.overall, status=f"{self.finished}/{self.total} trainings, {elapsed}{eta}")

    def _row(self, worker: int) -> int:
        if worker not in self.rows:
            self.rows[worker] = self.progress.add_task(f"worker {len(self.rows) + 1}", total=1, status="")
        return self.rows[worker]

    def _worker_event(self, e: WorkerEvent) -> None:
        if e.task.key in self.ended:
            return  # a late event of a task already counted as finished
        row, key, event = self._row(e.worker), e.task.key, e.event
        epochs = self.epochs.get(key, 1)
        if isinstance(event, EpochDone):
            share = 1.0 / epochs
            if self.credited.get(key, 0.0) + share <= 1.0:
                self.credited[key] = self.credited.get(key, 0.0) + share
                self.progress.advance(self.overall, share)
            self.progress.update(row, completed=event.record.epoch / epochs)
        elif isinstance(event, LevelStarted):
            self.progress.update(row, completed=event.resumed_epoch / epochs, total=1,
                                 status=f"{_short(e.task)}, {100 * event.fraction_pruned:.1f}% pruned")
        elif isinstance(event, StepDone) and event.loss is not None:
            self.progress.update(row, completed=(event.epoch + (event.step + 1) / event.steps) / epochs)


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}" if seconds >= 3600 else f"{seconds // 60}:{seconds % 60:02d}"


def _short(task: Task) -> str:
    """``IMP digitsa (sgd) s1 L2`` / ``random digitsb (sgd) L2 -> digitsb (adam) s1``."""
    job = task.job
    if isinstance(job, ImpJob):
        s = job.spec
        return f"{job.finder} {s.dataset} ({s.optimizer}) seed {s.seed} level {task.level}"
    s, src = job.spec, job.source
    finder = "" if src.finder == "imp" else f", {src.finder}"
    return f"{s.kind} {src.dataset} ({src.optimizer}{finder}) level {s.level} -> {s.dataset} ({s.optimizer}) seed {s.seed}"
