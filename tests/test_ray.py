"""The Ray executor on a local Ray instance (2 CPUs here): same results as the local executor, in both
artifact modes; a worker killed mid-task is retried and resumes; a task that keeps failing is
reported while the rest of the graph goes on."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest
import torch

ray = pytest.importorskip("ray")

from oneticket.cli import main  # noqa: E402
from oneticket.experiments import ImpJob, JobGraph, LocalExecutor, ResultsIndex, TrainJob, expand, parse_experiment, tidy_rows  # noqa: E402
from oneticket.experiments.ray_executor import RayExecutor, RayOptions, scratch_store  # noqa: E402
from oneticket.tickets import RunDir, load_ticket, runs_root  # noqa: E402

from test_experiments import TINY, write_spec  # noqa: E402

pytestmark = pytest.mark.slow

SPEC = TINY.replace("epochs = 3", "epochs = 6")  # long enough levels to kill a worker in the middle of one


@pytest.fixture(scope="module")
def local_ray():
    # at least the local executor's threads: the default task size must fit on the node
    ray.init(num_cpus=max(2, torch.get_num_threads()), include_dashboard=False, logging_level="ERROR", log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def graph() -> JobGraph:
    return expand(parse_experiment(SPEC))


@pytest.fixture(scope="module")
def local_store(tmp_path_factory, graph: JobGraph) -> Path:
    """The local executor's results, with the thread count of a 1-CPU Ray task."""
    store = tmp_path_factory.mktemp("local")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        summary = LocalExecutor(store, None, "cpu").run(graph)
    finally:
        torch.set_num_threads(threads)
    assert summary.done == len(graph.jobs) and not summary.failed
    return store


def outcome(graph: JobGraph, store: Path) -> list[tuple]:
    """Every plotted point, and every IMP level's mask (as bytes), of a finished store."""
    rows = [(r.kind, r.source, r.level, r.fraction_pruned, r.test_accuracy) for r in tidy_rows(graph, store)]
    masks = []
    for job in graph.imp_jobs():
        run = RunDir(runs_root(store) / job.spec.run_id())
        for level in range(job.levels + 1):
            mask = load_ticket(run.ticket_file(level)).mask
            masks.append([mask[name].numpy().tobytes() for name in mask])
    return rows + masks


def assert_index_complete(graph: JobGraph, store: Path) -> None:
    """One result per level and training, each with exactly one record per epoch: nothing duplicated."""
    index = ResultsIndex(store)
    results = index.results(graph.jobs)
    expected = sum(j.levels + 1 if isinstance(j, ImpJob) else 1 for j in graph.jobs.values())
    assert len(results) == expected
    for job_id, level in results:
        assert [e["epoch"] for e in index.epochs(job_id, level)] == list(range(1, 7))


@pytest.mark.parametrize("artifacts", ["shared", "object-store"])
def test_ray_results_equal_local_results(local_ray, graph, local_store, tmp_path, artifacts):
    store = tmp_path / "store"
    events = []
    summary = RayExecutor(store, None, RayOptions(cpus_per_task=1, artifacts=artifacts), events.append).run(graph)
    assert summary.done == len(graph.jobs) and not summary.failed
    assert outcome(graph, store) == outcome(graph, local_store)
    assert_index_complete(graph, store)
    ended = [e for e in events if type(e).__name__ == "TaskEnded"]
    assert len(ended) == 12 and all(e.state == "done" for e in ended)
    if artifacts == "object-store":  # the workers ran in a scratch store, and cleared it as each task finished
        scratch = scratch_store(RayExecutor(store).driver_key)
        assert scratch.is_dir() and not [p for p in scratch.rglob("*") if p.is_file()]
    # trainings of level 0 finished before the IMP runs' last level: they did not wait for whole runs
    order = [e.task.key for e in ended]
    first_training = min(i for i, k in enumerate(order) if k.startswith("train-"))
    last_imp = max(i for i, k in enumerate(order) if k.startswith("imp-"))
    assert first_training < last_imp


def _kill_when_checkpointed(level_dir: Path, lock: Path, killed: list[int]) -> None:
    """Wait for ``level_dir``'s first checkpoint, then SIGKILL the worker holding the run's lock."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (level_dir / "checkpoint.pt").exists():
        time.sleep(0.005)
    pid = int(lock.read_text())
    os.kill(pid, signal.SIGKILL)
    killed.append(pid)


def _watch(graph: JobGraph, store: Path, killed: list[int]) -> threading.Thread:
    source = next(j for j in graph.imp_jobs() if j.spec.dataset == "digitsa")
    run = runs_root(store) / source.spec.run_id()
    watcher = threading.Thread(target=_kill_when_checkpointed, args=(run / "level_01", run / ".lock", killed), daemon=True)
    watcher.start()
    return watcher


def test_killed_worker_is_retried_and_resumes(local_ray, graph, local_store, tmp_path):
    store = tmp_path / "store"
    killed: list[int] = []
    watcher = _watch(graph, store, killed)
    events = []
    summary = RayExecutor(store, None, RayOptions(cpus_per_task=1, artifacts="shared", retries=2), events.append).run(graph)
    watcher.join()
    assert killed, "the watcher killed no worker"
    assert summary.done == len(graph.jobs) and not summary.failed
    level1 = next(e for e in events if type(e).__name__ == "TaskEnded" and e.task.key.endswith("@1")
                  and e.task.job.spec.dataset == "digitsa")
    assert f"pid {killed[0]} " not in level1.where + " "  # another worker finished it,
    assert level1.resumed_epoch >= 1  # from the checkpoint of the killed attempt
    assert outcome(graph, store) == outcome(graph, local_store)  # resumed from its checkpoint, bit for bit
    assert_index_complete(graph, store)


def test_task_that_keeps_failing_is_reported_and_the_rest_goes_on(local_ray, graph, local_store, tmp_path):
    store = tmp_path / "store"
    killed: list[int] = []
    watcher = _watch(graph, store, killed)
    summary = RayExecutor(store, None, RayOptions(cpus_per_task=1, artifacts="shared", retries=0)).run(graph)
    watcher.join()
    source = next(j for j in graph.imp_jobs() if j.spec.dataset == "digitsa")
    failed = {job.id: why for job, why in summary.failed}
    assert source.id in failed and "died" in failed[source.id].lower()
    after = [j for j in graph.jobs.values() if isinstance(j, TrainJob) and j.spec.source == source.spec.run_id() and j.spec.level >= 1]
    assert all(j.id in failed and "failed" in failed[j.id] for j in after)
    # everything that does not need the killed level finished, with the local executor's results
    assert summary.done == len(graph.jobs) - len(failed) == len(graph.jobs) - 1 - len(after)
    survivors = [r for r in outcome(graph, local_store)[:9] if not (r[0] == "transfer" and r[2] >= 1)]
    mine = [(r.kind, r.source, r.level, r.fraction_pruned, r.test_accuracy) for r in tidy_rows(graph, store)]
    assert [r for r in survivors if r in mine] == survivors


def test_cli_run_with_ray_equals_cli_run_locally_and_one_line_errors(local_ray, graph, tmp_path, capsys):
    """With default settings on both sides: each Ray task gets the local executor's thread count."""
    spec_file = write_spec(tmp_path, SPEC)
    store, local = tmp_path / "store", tmp_path / "local"
    assert main(["run", str(spec_file), "--store", str(local), "--device", "cpu"]) == 0
    assert main(["run", str(spec_file), "--store", str(store), "--executor", "ray"]) == 0
    out = capsys.readouterr().out
    assert "8 job(s) run, 0 already finished, 0 failed" in out and "shared store" in out
    assert outcome(graph, store) == outcome(graph, local)
    assert main(["run", str(spec_file), "--store", str(store), "--executor", "ray"]) == 0
    assert "0 job(s) run, 8 already finished" in capsys.readouterr().out
    for bad, message in ((["--artifacts", "nfs"], "unknown --artifacts 'nfs'"),
                         (["--threads", "2"], "drop --threads and --workers"),
                         (["--cpus-per-task", "0"], "--cpus-per-task must be positive"),
                         (["--address", "127.0.0.1:1"], "--address 127.0.0.1:1: nothing answers there"),
                         (["--address", "head-node"], "expected auto, HOST:PORT or ray://HOST:PORT")):
        assert main(["run", str(spec_file), "--store", str(store), "--executor", "ray", *bad]) == 2
        assert message in capsys.readouterr().err
