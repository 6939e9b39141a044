"""Iterative magnitude pruning end to end (tiny VGG19 on digits): counts, rewinding, seeds, resume."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from oneticket.data import DeviceData, load_dataset
from oneticket.errors import UserError
from oneticket.models import create_model
from oneticket.tickets import ImpSpec, LevelFinished, LevelStarted, RunDir, find_tickets, load_ticket, load_weights
from oneticket.tickets import imp as imp_module
from oneticket.training import TrainHooks, TrainSettings, train

TINY = dict(model="vgg19", width=0.0625, dataset="digits", train_size=256, epochs=2, batch_size=64)


def spec(**overrides) -> ImpSpec:
    return ImpSpec(**{**TINY, "levels": 3, **overrides})


def masks_and_accuracies(store: Path, s: ImpSpec) -> tuple[list, list]:
    run = RunDir.for_spec(store, s)
    results = run.results()
    return [load_ticket(run.root / r.ticket).mask for r in results], [r.test_accuracy for r in results]


def test_fraction_pruned_follows_one_minus_0_8_to_the_l(store: Path):
    s = spec(levels=4, epochs=1, rewind="1it")
    results = find_tickets(s, store)
    assert [r.level for r in results] == [0, 1, 2, 3, 4]
    total = results[0].total
    alive = total
    for r in results:
        assert r.alive == alive and r.total == total
        assert abs((total - r.alive) - total * (1 - 0.8**r.level)) <= max(r.level, 1)
        ticket = load_ticket(RunDir.for_spec(store, s).root / r.ticket)
        assert ticket.mask.alive() == r.alive and ticket.info.level == r.level
        assert ticket.info.fraction_pruned == pytest.approx(1 - r.alive / total)
        alive -= round(0.2 * alive)


def test_rewound_weights_equal_the_snapshot_buffers_included(store: Path, monkeypatch):
    s = spec(levels=2, rewind="3it")
    started: dict[int, dict[str, torch.Tensor]] = {}
    real_train = imp_module.train

    def recording_train(model, data, settings, mask, checkpoint, hooks, **options):
        started[len(started)] = {k: v.clone() for k, v in model.state_dict().items()}
        return real_train(model, data, settings, mask, checkpoint, hooks, **options)

    monkeypatch.setattr(imp_module, "train", recording_train)
    find_tickets(s, store)
    run = RunDir.for_spec(store, s)
    rewind = load_weights(run.rewind_file)
    assert int(rewind["features.1.num_batches_tracked"]) == 3  # BatchNorm state after exactly 3 steps

    # The snapshot is the state of an independent dense run after 3 iterations.
    seeds = s.seeds()
    data = DeviceData(load_dataset("digits", train_size=256, subset_seed=seeds["subset"]), "cpu", 64)
    model = create_model("vgg19", 10, 0.0625, seeds["init"])
    captured = {}
    hooks = TrainHooks(snapshot_step=3, on_snapshot=lambda m: captured.update({k: v.clone() for k, v in m.state_dict().items()}))
    train(model, data, TrainSettings("sgd", 1, s.milestones, seeds["train"]), hooks=hooks)
    assert captured.keys() == rewind.keys()
    assert all(torch.equal(captured[k], rewind[k]) for k in rewind)

    # Levels 1 and 2 start from exactly the snapshot (running_mean/var and counters too) ...
    for level in (1, 2):
        assert all(torch.equal(started[level][k], rewind[k]) for k in rewind), level
    # ... and every ticket carries it.
    for level in (0, 1, 2):
        state = load_ticket(run.ticket_file(level)).state
        assert all(torch.equal(state[k], rewind[k]) for k in rewind)
    assert any("running_var" in k for k in rewind)


def test_same_seed_same_tickets_other_seed_other_masks(tmp_path: Path):
    s = spec(levels=2)
    find_tickets(s, tmp_path / "a")
    find_tickets(s, tmp_path / "b")
    masks_a, acc_a = masks_and_accuracies(tmp_path / "a", s)
    masks_b, acc_b = masks_and_accuracies(tmp_path / "b", s)
    assert acc_a == acc_b and all(a.equal(b) for a, b in zip(masks_a, masks_b))
    other = spec(levels=2, seed=1)
    find_tickets(other, tmp_path / "a")
    masks_c, _ = masks_and_accuracies(tmp_path / "a", other)
    assert not masks_c[1].equal(masks_a[1]) and masks_c[1].alive() == masks_a[1].alive()


def test_finished_levels_are_skipped_and_more_levels_continue_the_run(store: Path, monkeypatch):
    first = find_tickets(spec(levels=1), store)

    def no_training(*args, **kwargs):
        raise AssertionError("a finished level was trained again")

    monkeypatch.setattr(imp_module, "train", no_training)
    events = []
    again = find_tickets(spec(levels=1), store, on_event=events.append)
    assert again == first
    assert [e.skipped for e in events if isinstance(e, LevelFinished)] == [True, True]
    monkeypatch.undo()

    more = find_tickets(spec(levels=2), store)
    assert more[:2] == first and more[2].level == 2
    assert RunDir.for_spec(store, spec(levels=2)).root == RunDir.for_spec(store, spec(levels=1)).root


def test_output_layer_is_pruned_only_when_asked(store: Path):
    s = spec(levels=1, epochs=1, rewind="0it", prune_output=True)
    find_tickets(s, store)
    mask = load_ticket(RunDir.for_spec(store, s).ticket_file(1)).mask
    assert "classifier.weight" in mask
    default = spec(levels=1, epochs=1, rewind="0it")
    find_tickets(default, store)
    assert "classifier.weight" not in load_ticket(RunDir.for_spec(store, default).ticket_file(1)).mask


def test_a_run_in_use_by_another_process_is_refused(store: Path):
    from oneticket.files import DirectoryLock

    with DirectoryLock(RunDir.for_spec(store, spec()).root, "run"):
        with pytest.raises(UserError, match="in use by process"):
            find_tickets(spec(), store)


def test_rewind_after_the_end_of_training_is_refused(store: Path):
    with pytest.raises(UserError, match="rewind point 2ep"):
        find_tickets(spec(rewind="2ep"), store)


KILLER = """
import json, os, signal, sys, torch
torch.set_num_threads(int(sys.argv[4]))
from oneticket.tickets import ImpSpec, StepDone, find_tickets
spec = ImpSpec(**json.loads(sys.argv[1]))
target = tuple(json.loads(sys.argv[3]))
def on_event(event):
    if isinstance(event, StepDone) and (event.level, event.epoch, event.step) == target:
        os.kill(os.getpid(), signal.SIGKILL)
find_tickets(spec, sys.argv[2], on_event=on_event)
"""


def run_and_kill(s: ImpSpec, store: Path, level: int, epoch: int, step: int) -> None:
    args = [sys.executable, "-c", KILLER, json.dumps(s.model_dump()), str(store), json.dumps([level, epoch, step]),
            str(torch.get_num_threads())]
    proc = subprocess.run(args, capture_output=True, text=True, env={**os.environ, "ONETICKET_OFFLINE": "1"})
    assert proc.returncode == -9, proc.stderr


@pytest.mark.slow
def test_resume_after_kill_9_ends_identical_to_an_uninterrupted_run(tmp_path: Path):
    s = spec(levels=2, epochs=3)
    find_tickets(s, tmp_path / "clean")
    killed = tmp_path / "killed"
    run_and_kill(s, killed, level=0, epoch=1, step=2)  # mid-epoch, after the 1ep rewind snapshot
    run_and_kill(s, killed, level=1, epoch=2, step=1)  # mid-epoch of a pruned level
    run = RunDir.for_spec(killed, s)
    assert run.checkpoint_file(1).exists() and not run.result_file(1).exists()
    events = []
    find_tickets(s, killed, on_event=events.append)
    starts = {e.level: e.resumed_epoch for e in events if isinstance(e, LevelStarted)}
    assert starts == {1: 2, 2: 0}  # level 0 was finished by the second process; level 1 resumed
    masks_clean, acc_clean = masks_and_accuracies(tmp_path / "clean", s)
    masks_killed, acc_killed = masks_and_accuracies(killed, s)
    assert acc_killed == acc_clean
    assert all(a.equal(b) for a, b in zip(masks_clean, masks_killed))
    clean_run = RunDir.for_spec(tmp_path / "clean", s)
    for level in range(3):
        a, b = load_weights(clean_run.trained_file(level)), load_weights(run.trained_file(level))
        assert all(torch.equal(a[k], b[k]) for k in a)
    assert not run.checkpoint_file(1).exists()
