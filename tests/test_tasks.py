"""The task graph and the shipping of task files (what the Ray executor builds on; no Ray here)."""

from __future__ import annotations

from pathlib import Path

import pytest

from oneticket.experiments import ImpJob, JobGraph, LocalExecutor, TrainJob, expand, parse_experiment
from oneticket.experiments.artifacts import task_inputs, task_outputs, unpack
from oneticket.experiments.tasks import task_graph
from oneticket.tickets import RunDir, runs_root

from test_experiments import TINY


def test_imp_levels_are_a_chain_and_trainings_wait_for_their_level(tmp_path: Path):
    graph = expand(parse_experiment(TINY))
    tasks = task_graph(graph, tmp_path)
    imps = [j for j in graph.jobs.values() if isinstance(j, ImpJob)]
    trainings = [j for j in graph.jobs.values() if isinstance(j, TrainJob)]
    assert len(tasks.tasks) == 3 * len(imps) + len(trainings) == 12
    for imp in imps:
        assert tasks.needs[f"{imp.id}@0"] == ()
        assert tasks.needs[f"{imp.id}@1"] == (f"{imp.id}@0",)
        assert tasks.needs[f"{imp.id}@2"] == (f"{imp.id}@1",)
    for training in trainings:
        imp_id, level = training.depends_on
        assert tasks.needs[training.id] == (f"{imp_id}@{level}",)
    assert tasks.jobs_finished == ()


@pytest.mark.slow
def test_finished_work_is_no_task_and_shipped_files_rebuild_a_level(tmp_path: Path):
    spec = parse_experiment(TINY)
    graph = expand(spec)
    store = tmp_path / "store"
    source = next(j for j in graph.jobs.values() if isinstance(j, ImpJob) and j.spec.dataset == "digitsa")
    partial = JobGraph()
    partial.add(ImpJob(source.spec.model_copy(update={"levels": 1})))
    LocalExecutor(store, None, "cpu").run(partial)  # levels 0 and 1 of the source run

    tasks = task_graph(graph, store)
    assert f"{source.id}@0" not in tasks.tasks and f"{source.id}@1" not in tasks.tasks
    assert tasks.needs[f"{source.id}@2"] == ()
    level1 = [t for t in tasks.tasks.values() if isinstance(t.job, TrainJob) and t.job.spec.level == 1
              and t.job.spec.source == source.spec.run_id()]
    assert level1 and all(tasks.needs[t.key] == () for t in level1)  # their ticket exists: they can start now

    # what a worker without the store needs for level 2, and nothing of levels it does not read
    task = tasks.tasks[f"{source.id}@2"]
    inputs = task_inputs(task, store)
    run = f"runs/{source.spec.run_id()}"
    assert set(inputs) == {f"{run}/spec.json", f"{run}/rewind.safetensors", f"{run}/level_00/result.json",
                           f"{run}/level_01/result.json", f"{run}/level_01/ticket.safetensors",
                           f"{run}/level_01/trained.safetensors"}
    scratch = tmp_path / "scratch"
    unpack(inputs, scratch)
    LocalExecutor(scratch, None, "cpu").run(graph_of(source))
    outputs = task_outputs(task, scratch)
    assert {Path(name).name for name in outputs if "level_02" in name} == {"ticket.safetensors", "trained.safetensors", "result.json"}
    unpack(outputs, store)
    done = RunDir(runs_root(store) / source.spec.run_id()).results()
    assert [r.level for r in done] == [0, 1, 2]
    assert not list((runs_root(store) / source.spec.run_id()).glob("level_02/checkpoint*"))


def graph_of(job: ImpJob) -> JobGraph:
    graph = JobGraph()
    graph.add(job)
    return graph


def test_unpack_refuses_paths_outside_the_store(tmp_path: Path):
    with pytest.raises(ValueError, match="outside the store"):
        unpack({"../evil.txt": b"x"}, tmp_path / "store")
    assert not (tmp_path / "evil.txt").exists()
