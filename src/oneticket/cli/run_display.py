"""Live progress of a job graph: an overall bar (jobs done, work left, ETA) and the current job's bar."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from oneticket.cli.display import percent
from oneticket.experiments import ImpJob, JobEnded, JobStarted, Plan
from oneticket.experiments.executor import ExecutorEvent
from oneticket.experiments.tasks import TaskEnded
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
