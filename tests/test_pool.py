"""The pool executor: worker processes, the schedule's capacity and urgency, failures, and results
that do not depend on how many workers ran them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from oneticket.cli import main
from oneticket.experiments import ResultsIndex, expand, make_plan, parse_experiment, tidy_rows
from oneticket.experiments.graph import ImpJob
from oneticket.experiments.pool import PoolExecutor, WorkerEvent
from oneticket.experiments.schedule import Schedule
from oneticket.experiments.tasks import TaskEnded, task_graph
from oneticket.tickets import EpochDone, RunDir, load_ticket

TINY = """
name = "tiny"
models = [{ name = "vgg19", width = 0.0625 }]
sources = [{ dataset = "digitsa" }]
targets = ["digitsb"]
baselines = ["own", "random"]
seeds = [0, 1]
[scale]
epochs = 2
batch_size = 32
train_size = 200
lr = { sgd = 0.02 }
augment = "none"
[pruning]
levels = 2
rate = 0.5
train_levels = [1, 2]
"""


def test_a_capacity_of_one_runs_every_imp_level_before_any_training(tmp_path: Path):
    graph = expand(parse_experiment(TINY))
    tasks = task_graph(graph, tmp_path)
    submitted, in_flight = [], []

    def submit(task):
        submitted.append(task)
        in_flight.append(task.key)
        assert len(in_flight) <= 1
        return task.key

    def collect(task, handle):
        in_flight.remove(handle)
        return TaskEnded(task, "done", 0.0)

    summary = Schedule(graph, tasks, tmp_path, ResultsIndex(tmp_path), lambda _: None, submit, capacity=1).run(
        lambda handles: handles[0], collect)
    kinds = ["imp" if isinstance(t.job, ImpJob) else "train" for t in submitted]
    assert len(submitted) == len(tasks.tasks) == 4 * 3 + 4 * 2  # 4 IMP runs of 3 levels; 2 series x 2 seeds x 2 levels
    assert kinds == ["imp"] * 12 + ["train"] * 8
    assert [t.level for t in submitted[:4]] == [0, 0, 0, 0]  # every run's level 0 first: they unlock the most
    assert [t.job.spec.level for t in submitted[12:]] == [1, 1, 1, 1, 2, 2, 2, 2]
    assert summary.done == len(graph.jobs) and not summary.failed


def test_without_a_capacity_every_ready_task_is_handed_over(tmp_path: Path):
    graph = expand(parse_experiment(TINY))
    tasks = task_graph(graph, tmp_path)
    first_wave: list[str] = []
    schedule = Schedule(graph, tasks, tmp_path, ResultsIndex(tmp_path), lambda _: None,
                        lambda task: first_wave.append(task.key) or task.key)
    schedule.submit_ready()
    assert len(first_wave) == 4  # the four IMP runs' level 0


def test_a_failure_is_reported_once_with_its_cause_and_what_waited_on_it(tmp_path: Path):
    """A failing IMP level fails its run with its own message; the later levels and the trainings
    that need it are failed as 'needs ..., which failed', and are never run."""
    from oneticket.experiments.schedule import waited_on_failure

    graph = expand(parse_experiment(TINY))
    tasks = task_graph(graph, tmp_path)
    broken = next(t for t in tasks.tasks.values() if isinstance(t.job, ImpJob) and t.level == 1)
    submitted = []

    def collect(task, handle):
        return TaskEnded(task, "failed", 0.0, message="diverged") if task.key == broken.key else TaskEnded(task, "done", 0.0)

    summary = Schedule(graph, tasks, tmp_path, ResultsIndex(tmp_path), lambda _: None,
                       lambda task: submitted.append(task) or task.key, capacity=1).run(lambda handles: handles[0], collect)
    reasons = {job.id: why for job, why in summary.failed}
    assert reasons[broken.job.id] == "diverged"
    waited = [job_id for job_id, why in reasons.items() if job_id != broken.job.id]
    assert waited and all(waited_on_failure(reasons[j]) for j in waited)
    assert not any(t.job.id in waited or (t.job.id == broken.job.id and t.level == 2) for t in submitted)
    assert summary.done == len(graph.jobs) - len(reasons)


@pytest.mark.slow
def test_results_do_not_depend_on_the_number_of_workers(tmp_path: Path, capsys):
    """Two single-threaded workers, one worker, and the in-process executor with one thread give
    the same masks and the same accuracies, bit for bit."""
    spec_file = tmp_path / "tiny.toml"
    spec_file.write_text(TINY)
    graph = expand(parse_experiment(TINY))
    stores = {name: tmp_path / name for name in ("two", "one", "local")}
    assert main(["run", str(spec_file), "--store", str(stores["two"]), "--device", "cpu", "--workers", "2"]) == 0
    assert main(["run", str(spec_file), "--store", str(stores["one"]), "--device", "cpu", "--workers", "1"]) == 0
    threads = torch.get_num_threads()
    try:
        assert main(["run", str(spec_file), "--store", str(stores["local"]), "--device", "cpu", "--threads", "1"]) == 0
    finally:
        torch.set_num_threads(threads)
    out = " ".join(capsys.readouterr().out.split())
    assert "2 worker process(es) of 1 thread" in out
    rows = {name: tidy_rows(graph, store) for name, store in stores.items()}
    assert len(rows["two"]) == 2 * (3 + 2 + 2)  # per seed: own at levels 0-2, transfer and random at 1-2
    as_numbers = {name: [(r.kind, r.seed, r.level, r.test_accuracy) for r in found] for name, found in rows.items()}
    assert as_numbers["two"] == as_numbers["one"] == as_numbers["local"]
    assert {r.threads for r in rows["two"]} == {1} and all(r.torch == torch.__version__ for r in rows["two"])
    assert max(r.test_accuracy for r in rows["two"]) > 0.3  # learns (chance: 0.1)
    for job in (j for j in graph.jobs.values() if isinstance(j, ImpJob)):
        masks = [load_ticket(RunDir.for_spec(stores[name], job.spec).ticket_file(2)).mask for name in stores]
        assert all(torch.equal(masks[0][k], other[k]) for other in masks[1:] for k in masks[0])


def test_a_failing_task_fails_what_needs_it_and_the_rest_goes_on(tmp_path: Path):
    broken = TINY.replace("[pruning]", '[pruning]\nrewind = "50ep"')  # a rewind point after the end of training
    graph = expand(parse_experiment(broken))
    events: list[object] = []
    summary = PoolExecutor(tmp_path, workers=2, on_event=events.append).run(graph)
    assert summary.done == 0 and len(summary.failed) == len(graph.jobs)
    reasons = {why for _, why in summary.failed}
    assert any("rewind point 50ep is not before the end of training" in why for why in reasons)
    assert any(why.startswith("needs IMP") and why.endswith("which failed") for why in reasons)
    assert not any("Traceback" in why for why in reasons)


@pytest.mark.slow
def test_ctrl_c_stops_the_workers_and_a_rerun_ends_as_an_uninterrupted_run(tmp_path: Path):
    graph = expand(parse_experiment(TINY))
    seen: dict[str, object] = {"epochs": 0, "workers": set()}

    def interrupt(event: object) -> None:
        if isinstance(event, WorkerEvent):
            seen["workers"].add(event.worker)  # type: ignore[union-attr]
            if isinstance(event.event, EpochDone):
                seen["epochs"] += 1  # type: ignore[operator]
                if seen["epochs"] == 7:  # mid-way through the second round of trainings
                    raise KeyboardInterrupt

    store = tmp_path / "interrupted"
    with pytest.raises(KeyboardInterrupt):
        PoolExecutor(store, workers=2, on_event=interrupt).run(graph)
    for pid in seen["workers"]:  # type: ignore[union-attr]
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)  # the workers are gone, not training on in the background
    partial = make_plan(graph, store)
    assert 0 < sum(s.trainings_done for s in partial.statuses) < partial.trainings_total

    assert not PoolExecutor(store, workers=2).run(graph).failed
    fresh = tmp_path / "fresh"
    assert not PoolExecutor(fresh, workers=1).run(graph).failed
    resumed_rows, fresh_rows = tidy_rows(graph, store), tidy_rows(graph, fresh)
    assert len(resumed_rows) == 14
    assert [(r.kind, r.seed, r.level, r.test_accuracy) for r in resumed_rows] == \
           [(r.kind, r.seed, r.level, r.test_accuracy) for r in fresh_rows]


def test_a_wrong_data_dir_or_missing_data_stops_the_run_in_one_line(tmp_path: Path, capsys, monkeypatch):
    spec = tmp_path / "c.toml"
    spec.write_text(TINY.replace('sources = [{ dataset = "digitsa" }]', 'sources = [{ dataset = "cifar10a" }]')
                    .replace('targets = ["digitsb"]', 'targets = ["cifar10b"]'))
    store = tmp_path / "store"
    assert main(["run", str(spec), "--store", str(store), "--workers", "2", "--data-dir", str(tmp_path / "no" / "such")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "does not exist, nor does" in err
    monkeypatch.setenv("ONETICKET_OFFLINE", "1")
    assert main(["run", str(spec), "--store", str(store), "--workers", "2", "--data-dir", str(tmp_path / "data")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "data_batch_1" in err and "cifar-10-batches-py" in err
    assert not (store / "runs").exists()  # nothing started
