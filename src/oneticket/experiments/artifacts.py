"""Moving a task's files between stores, for workers that do not share the driver's filesystem.

The driver's store is the one source of truth. Before a task runs on such a worker, the driver
packs the finished files the task reads (:func:`task_inputs`); the worker unpacks them into a
scratch store of its own, runs the task there, and packs the files the task finished
(:func:`task_outputs`); the driver writes those into its store, each file atomically and every
``result.json`` last, so a crash of the driver leaves a level either complete or absent.
Checkpoints stay in the worker's scratch store: a retried task that lands on the same machine
resumes from them. A task that finished removes its files from the scratch store
(:func:`clear_task`): the driver has them, and ships them again to any task that needs them.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from oneticket.experiments.graph import ImpJob, TrainJob
from oneticket.experiments.tasks import Task
from oneticket.files import write_bytes_atomic
from oneticket.tickets import RunDir, TrainingDir, find_ticket_file, runs_root, trainings_root

Files = dict[str, bytes]  # path relative to a store -> content
SCRATCH_TICKETS = "incoming"  # where a shipped ticket lands in a scratch store


def _pack(store: Path, paths: list[Path]) -> Files:
    return {str(p.relative_to(store)): p.read_bytes() for p in paths if p.exists()}


def shipped_ticket_path(job: TrainJob) -> str:
    """One file per training: two trainings of one ticket on one node never share (or delete) it."""
    return f"{SCRATCH_TICKETS}/{job.spec.job_id()}.safetensors"


def task_inputs(task: Task, store: Path) -> Files:
    """The files of the driver's ``store`` that ``task`` reads."""
    job = task.job
    if isinstance(job, ImpJob):
        run = RunDir(runs_root(store) / job.spec.run_id())
        assert task.level is not None
        earlier = [run.result_file(level) for level in range(task.level)]
        previous = [run.ticket_file(task.level - 1), run.trained_file(task.level - 1)] if task.level > 0 else []
        return _pack(store, [run.spec_file, run.rewind_file, *earlier, *previous])
    assert isinstance(job, TrainJob)
    ticket = job.ticket_file or find_ticket_file(store, job.spec.source, job.spec.level)
    return {shipped_ticket_path(job): ticket.read_bytes()} if ticket is not None else {}


def task_outputs(task: Task, store: Path) -> Files:
    """The files ``task`` finished in ``store`` (no checkpoints, no locks)."""
    job = task.job
    if isinstance(job, ImpJob):
        run = RunDir(runs_root(store) / job.spec.run_id())
        assert task.level is not None
        level = [run.ticket_file(task.level), run.trained_file(task.level), run.result_file(task.level)]
        return _pack(store, [run.spec_file, *([run.rewind_file] if task.level == 0 else []), *level])
    assert isinstance(job, TrainJob)
    directory = TrainingDir(trainings_root(store) / job.spec.job_id())
    return _pack(store, [directory.spec_file, directory.result_file])


def unpack(files: Files, store: Path) -> None:
    """Write ``files`` under ``store``, atomically, every ``result.json`` after the rest."""
    ordered = sorted(files, key=lambda name: (Path(name).name == "result.json", name))
    for name in ordered:
        target = (store / name).resolve()
        if not target.is_relative_to(store.resolve()):
            raise ValueError(f"refusing to write {name} outside the store")
        write_bytes_atomic(target, files[name])


def clear_task(task: Task, store: Path) -> None:
    """Remove what ``task`` left in a scratch ``store`` once its outputs are packed."""
    job = task.job
    if isinstance(job, ImpJob):
        shutil.rmtree(runs_root(store) / job.spec.run_id(), ignore_errors=True)
    else:
        assert isinstance(job, TrainJob)
        shutil.rmtree(trainings_root(store) / job.spec.job_id(), ignore_errors=True)
        (store / shipped_ticket_path(job)).unlink(missing_ok=True)
