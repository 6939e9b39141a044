"""Faults a user meets, each one line and each recoverable: damaged checkpoints, SIGTERM, a full
disk, a read-only store, a file where a folder should be, leftovers of killed writers, failed
starts, and file modes. The disk tests mount a tiny tmpfs (skipped where the test cannot mount)."""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from oneticket.cli import main
from oneticket.tickets import ImpSpec, RunDir, find_tickets, load_weights

from test_imp import masks_and_accuracies, run_and_kill, spec

ENV = {**os.environ, "ONETICKET_OFFLINE": "1", "COLUMNS": "300"}
FIND = ["find", "--model", "vgg19", "--width", "0.0625", "--dataset", "digits", "--train-size", "256", "--epochs", "2",
        "--batch-size", "64", "--levels", "2", "--device", "cpu"]


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "oneticket", *args], capture_output=True, text=True, env=ENV)


def error_line(proc: subprocess.CompletedProcess) -> str:
    """The one line a failed command printed on stderr (never a traceback)."""
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    return lines[0]


def umask() -> int:
    current = os.umask(0o022)
    os.umask(current)
    return current


def stray_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.name.endswith(".part")]


# --- damaged checkpoints -------------------------------------------------------------------------

def _damage(path: Path, how: str) -> None:
    if how == "empty":
        path.write_bytes(b"")
    elif how == "garbage":
        path.write_bytes(b"not a checkpoint\n" * 10)
    elif how == "truncated":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif how == "another model":
        state = torch.load(path, weights_only=True)
        state["model"] = {k: v[..., :1] if v.dim() else v for k, v in state["model"].items()}
        torch.save(state, path)


@pytest.mark.slow
@pytest.mark.parametrize("how", ["empty", "garbage", "truncated", "another model"])
def test_a_damaged_checkpoint_is_set_aside_and_the_level_ends_identical(tmp_path: Path, how: str, caplog):
    s = spec(levels=1, epochs=3)
    find_tickets(s, tmp_path / "clean")
    killed = tmp_path / "killed"
    run_and_kill(s, killed, level=1, epoch=1, step=2)
    run = RunDir.for_spec(killed, s)
    checkpoint = run.checkpoint_file(1)
    assert checkpoint.exists()
    _damage(checkpoint, how)
    with caplog.at_level(logging.WARNING, logger="oneticket"):
        find_tickets(s, killed)
    (warning,) = [r.getMessage() for r in caplog.records if r.name == "oneticket"]
    assert f"checkpoint {checkpoint}" in warning and "set aside as checkpoint.pt.damaged" in warning
    assert "weights_only" not in warning
    assert (checkpoint.parent / "checkpoint.pt.damaged").exists() and not checkpoint.exists()  # kept, renamed
    assert masks_and_accuracies(killed, s)[1] == masks_and_accuracies(tmp_path / "clean", s)[1]
    a, b = (load_weights(RunDir.for_spec(store, s).trained_file(1)) for store in (tmp_path / "clean", killed))
    assert all(torch.equal(a[k], b[k]) for k in a)


# --- signals -------------------------------------------------------------------------------------

@pytest.mark.slow
def test_sigterm_stops_like_ctrl_c_with_exit_143(tmp_path: Path):
    """SIGTERM once training has started: one line, exit 143, no temporary files left."""
    store = tmp_path / "store"
    proc = subprocess.Popen([sys.executable, "-m", "oneticket", *FIND, "--epochs", "50", "--store", str(store)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
    assert proc.stdout is not None
    for line in proc.stdout:  # the run's first line is printed once the run has begun
        if line.startswith("run "):
            break
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate()
    assert proc.returncode == 143, err
    (line,) = [x for x in err.splitlines() if x.strip()]
    assert line.startswith("terminated (SIGTERM)") and "rerun the same command" in line
    assert not stray_files(store)


# --- disks ---------------------------------------------------------------------------------------

@pytest.fixture
def tiny_disk(tmp_path: Path):
    """A 600 KiB tmpfs (grown or made read-only by the test): needs root and a kernel that allows it."""
    mount = tmp_path / "disk"
    mount.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=600k", "tmpfs", str(mount)], capture_output=True)
    if made.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def remount(mount: Path, options: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{options}", str(mount)], check=True)


@pytest.mark.slow
def test_a_full_disk_is_one_line_and_the_same_command_resumes_identically(tiny_disk: Path, tmp_path: Path):
    store = tiny_disk / "store"
    full = cli(*FIND, "--store", str(store))
    assert full.returncode == 74
    line = error_line(full)
    assert line.startswith("error: no space left to write ") and "checkpoint.pt (needs " in line
    assert "free some space, then rerun the same command" in line
    assert not stray_files(store)
    remount(tiny_disk, "size=40m")
    assert cli(*FIND, "--store", str(store)).returncode == 0
    assert cli(*FIND, "--store", str(tmp_path / "roomy")).returncode == 0
    s = ImpSpec(model="vgg19", width=0.0625, dataset="digits", train_size=256, epochs=2, batch_size=64, levels=2)
    masks_a, acc_a = masks_and_accuracies(store, s)
    masks_b, acc_b = masks_and_accuracies(tmp_path / "roomy", s)
    assert acc_a == acc_b and all(a.equal(b) for a, b in zip(masks_a, masks_b))


EXPERIMENT = """
name = "faults"
models = [{ name = "vgg19", width = 0.0625 }]
sources = [{ dataset = "digitsa" }]
targets = ["digitsb"]
baselines = ["own"]
seeds = [0]
[scale]
epochs = 2
batch_size = 64
train_size = 200
[pruning]
levels = 1
"""


@pytest.mark.slow
def test_a_read_only_store_can_be_read(tiny_disk: Path, tmp_path: Path):
    remount(tiny_disk, "size=40m")
    store = tiny_disk / "store"
    spec_file = tmp_path / "faults.toml"
    spec_file.write_text(EXPERIMENT)
    assert cli(*FIND, "--store", str(store)).returncode == 0
    assert cli("run", str(spec_file), "--store", str(store), "--device", "cpu").returncode == 0
    before = cli(*FIND, "--store", str(store)).stdout
    remount(tiny_disk, "ro")
    again = cli(*FIND, "--store", str(store))  # a finished run: read back, nothing written
    assert again.returncode == 0 and not again.stderr.strip(), again.stderr
    assert [x for x in again.stdout.splitlines() if "%" in x and "│" in x] == \
        [x for x in before.splitlines() if "%" in x and "│" in x]
    results = cli("results", str(spec_file), "--store", str(store))
    assert results.returncode == 0 and "digitsb" in results.stdout, results.stderr
    out = tmp_path / "report"
    assert cli("report", str(spec_file), "--store", str(store), "--out", str(out)).returncode == 0
    assert (out / "report.html").is_file()
    listed = cli("tickets", "list", "--store", str(store))
    assert listed.returncode == 0 and "digits" in listed.stdout
    refused = cli(*FIND, "--seed", "1", "--store", str(store))  # new work on a read-only store
    assert refused.returncode == 74 and "read-only file system" in error_line(refused)
    report_in_store = cli("report", str(spec_file), "--store", str(store))
    assert report_in_store.returncode == 74 and "choose a folder you can write" in error_line(report_in_store)


# --- paths, leftovers, failed starts, modes ------------------------------------------------------

def test_a_store_under_a_file_is_one_line(tmp_path: Path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    proc = cli(*FIND, "--store", str(blocker / "store"))
    assert proc.returncode == 74 and "a file stands where a folder is needed" in error_line(proc)


def test_read_commands_never_create_a_store(tmp_path: Path):
    missing = tmp_path / "nowhere"
    for args in (["results", "demo"], ["report", "demo"], ["tickets", "list"], ["plan", "demo", "--no-measure"]):
        assert main([*args, "--store", str(missing)]) in (0, 2), args
        assert not missing.exists(), args


def test_a_failed_start_leaves_no_run_folder(tmp_path: Path):
    store = tmp_path / "store"
    proc = cli(*FIND, "--rewind", "100ep", "--store", str(store))
    assert proc.returncode == 2 and "rewind point 100ep" in error_line(proc)
    assert list((store / "runs").glob("*")) == [] if (store / "runs").exists() else not store.exists()


@pytest.mark.slow
def test_leftovers_of_killed_writers_go_and_files_get_the_users_mode(tmp_path: Path):
    store = tmp_path / "store"
    assert main([*FIND, "--store", str(store)]) == 0
    (run,) = (store / "runs").iterdir()
    stale = run / "level_01" / ".trained.safetensors.x1y2z3.part"
    stale.write_bytes(b"half a file")
    assert main([*FIND, "--store", str(store)]) == 0  # the next run on it removes the leftovers
    assert not stale.exists() and not stray_files(store)
    file_mode, folder_mode = 0o666 & ~umask(), 0o777 & ~umask()
    for path in (run / "spec.json", run / "level_01" / "ticket.safetensors", run / "level_01" / "result.json"):
        assert path.stat().st_mode & 0o777 == file_mode, path
    out = tmp_path / "published"
    assert main(["tickets", "export", str(out), "--from", run.name, "--store", str(store)]) == 0
    assert out.stat().st_mode & 0o777 == folder_mode
    assert all(p.stat().st_mode & 0o777 == file_mode for p in out.iterdir())


# --- damaged tickets in finished runs ------------------------------------------------------------

@pytest.mark.slow
def test_a_damaged_ticket_is_reported_on_rerun_and_listed_as_damaged(tmp_path: Path, capsys, monkeypatch):
    """An edited accuracy in a finished level's ticket: rerunning says which level and how to make it
    again; 'tickets list' shows it as damaged; following the advice gives back the same run."""
    from test_tickets import _rewrite_metadata

    monkeypatch.setenv("COLUMNS", "300")
    store = tmp_path / "store"
    assert main([*FIND, "--store", str(store)]) == 0
    (run,) = (store / "runs").iterdir()
    s = ImpSpec(model="vgg19", width=0.0625, dataset="digits", train_size=256, epochs=2, batch_size=64, levels=2)
    masks, accuracies = masks_and_accuracies(store, s)

    def better(metadata):
        info = json.loads(metadata["info"])
        return {**metadata, "info": json.dumps({**info, "test_accuracy": 0.99}, sort_keys=True)}

    _rewrite_metadata(run / "level_01" / "ticket.safetensors", better)
    capsys.readouterr()
    assert main([*FIND, "--store", str(store)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"level 1 of run {run.name} is damaged" in err and "metadata was modified" in err
    assert main(["tickets", "list", "--store", str(store)]) == 0
    out = capsys.readouterr().out
    assert f"damaged: {run / 'level_01' / 'ticket.safetensors'}" in out
    assert sum(run.name in line and "%" in line for line in out.splitlines()) == 2  # levels 0 and 2 listed
    for level in (1, 2):
        shutil.rmtree(run / f"level_{level:02d}")
    assert main([*FIND, "--store", str(store)]) == 0
    again_masks, again = masks_and_accuracies(store, s)
    assert again == accuracies and all(a.equal(b) for a, b in zip(masks, again_masks))


# --- content-addressed results and verified chains -----------------------------------------------

TRANSFER = ["transfer", "--dataset", "digitsb", "--epochs", "1", "--batch-size", "64", "--train-size", "200",
            "--device", "cpu"]


@pytest.mark.slow
def test_a_different_ticket_under_the_same_run_id_never_reuses_a_result(tmp_path: Path, capsys, caplog):
    """The issue's case: two tickets of one run id and level (other bits) imported into one store;
    each is trained, neither result is taken for the other's, both files are kept."""
    from oneticket.tickets import load_ticket, save_ticket
    from oneticket.tickets.ticket import Ticket

    found = tmp_path / "found"
    assert main([*FIND, "--store", str(found)]) == 0
    (run,) = (found / "runs").iterdir()
    first = run / "level_02" / "ticket.safetensors"
    ticket = load_ticket(first)
    state = dict(ticket.state)
    name = next(k for k, v in state.items() if v.is_floating_point() and v.dim() > 1)
    state[name] = state[name] + 1e-3
    other = tmp_path / "other.safetensors"
    save_ticket(other, Ticket(ticket.info, ticket.mask, state))
    store = tmp_path / "shared"
    assert main(["tickets", "import", str(first), "--store", str(store)]) == 0
    assert main([*TRANSFER, "--from", str(first), "--store", str(store)]) == 0
    assert main(["tickets", "import", str(other), "--store", str(store)]) == 0
    assert "imported beside a different ticket of the same run and level" in capsys.readouterr().out
    assert main([*TRANSFER, "--from", str(other), "--store", str(store)]) == 0
    out = capsys.readouterr().out
    assert "1 job(s) run, 0 already finished" in out
    trainings = sorted((store / "trainings").glob("*/result.json"))
    assert len(trainings) == 2
    assert len(list((store / "imported").glob("*/level_02/ticket.safetensors"))) == 2

    # a training folder whose recorded ticket is not the one now given: set aside, trained again
    spec_file = trainings[0].parent / "spec.json"
    record = json.loads(spec_file.read_text())
    record["ticket_sha256"] = "0" * 64
    spec_file.write_text(json.dumps(record))
    source = first if record["spec"]["ticket"] == ticket.sha256 else other
    with caplog.at_level(logging.WARNING, logger="oneticket"):
        assert main([*TRANSFER, "--from", str(source), "--store", str(store)]) == 0
    assert any("trained another ticket" in r.getMessage() for r in caplog.records)
    assert len(list((store / "trainings" / ".superseded").glob("*/result.json"))) == 1
    assert trainings[0].exists()


@pytest.mark.slow
def test_a_broken_chain_of_levels_is_one_line_naming_where_and_the_repair(tmp_path: Path, capsys):
    store, elsewhere = tmp_path / "store", tmp_path / "elsewhere"
    args = [*FIND, "--levels", "3"]
    assert main([*args, "--store", str(store)]) == 0
    (run,) = (store / "runs").iterdir()
    s = ImpSpec(model="vgg19", width=0.0625, dataset="digits", train_size=256, epochs=2, batch_size=64, levels=3)
    masks, accuracies = masks_and_accuracies(store, s)
    (run / "level_01" / "result.json").unlink()  # a middle level's result gone: the later ones derive from nothing
    capsys.readouterr()
    assert main([*args, "--store", str(store)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"error: run {run.name}: level 2 is finished but level 1, which it was pruned from, has no result. "
                   f"To recompute from level 1: delete the folders level_01 to level_03 in {run} and rerun the same command")

    # a level replaced by another computation of it (here: one with a different level 0)
    assert main([*args, "--seed", "0", "--store", str(elsewhere), "--rewind", "2it"]) == 0
    shutil.rmtree(run / "level_01")
    (other,) = (elsewhere / "runs").iterdir()
    shutil.copytree(other / "level_01", run / "level_01")
    assert main([*args, "--store", str(store)]) == 2
    assert "level 1 was pruned from other weights than level 0's" in capsys.readouterr().err
    for level in (1, 2, 3):  # the repair it names
        shutil.rmtree(run / f"level_{level:02d}")
    assert main([*args, "--store", str(store)]) == 0
    again_masks, again = masks_and_accuracies(store, s)
    assert again == accuracies and all(a.equal(b) for a, b in zip(masks, again_masks))


# --- several processes, one store ----------------------------------------------------------------

SHARED = """
name = "shared"
models = [{ name = "vgg19", width = 0.0625 }]
sources = [{ dataset = "digitsa" }, { dataset = "digitsb" }]
targets = ["digitsa", "digitsb"]
baselines = ["own", "random"]
seeds = [0]
[scale]
epochs = 2
batch_size = 64
train_size = 200
augment = "none"
[pruning]
levels = 2
rate = 0.5
train_levels = [1, 2]
"""


@pytest.mark.slow
@pytest.mark.parametrize("how", [["--threads", "1"], ["--workers", "1"]])
def test_two_runs_on_one_store_share_the_work_and_equal_one_run(tmp_path: Path, how: list[str]):
    """Two 'oneticket run' processes started together on one store both finish, each job is computed
    once (the in-process executor: the two processes' 'run' counts add up to the graph), and the
    results equal one process's."""
    from oneticket.experiments import expand, parse_experiment, tidy_rows

    spec_file = tmp_path / "shared.toml"
    spec_file.write_text(SHARED)
    shared, alone = tmp_path / "shared", tmp_path / "alone"
    command = [sys.executable, "-m", "oneticket", "run", str(spec_file), "--device", "cpu", *how]
    both = [subprocess.Popen([*command, "--store", str(shared)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, env=ENV) for _ in range(2)]
    outputs = [p.communicate() for p in both]
    assert [p.returncode for p in both] == [0, 0], [err for _, err in outputs]
    assert cli("run", str(spec_file), "--store", str(alone), "--device", "cpu", *how).returncode == 0
    graph = expand(parse_experiment(SHARED))
    if how[0] == "--threads":
        ran = [int(out.split(" job(s) run")[0].split()[-1]) for out, _ in outputs]
        assert sum(ran) == len(graph.jobs) == 10, ran
    numbers = {store: [(r.kind, r.source, r.target, r.level, r.test_accuracy) for r in tidy_rows(graph, store)]
               for store in (shared, alone)}
    assert len(numbers[alone]) == 14 and numbers[shared] == numbers[alone]


# --- kill -9 at random moments -------------------------------------------------------------------

RUN_KILLER = """
import os, signal, sys
from pathlib import Path
import torch
torch.set_num_threads(1)
from oneticket.experiments import expand, load_experiment
from oneticket.experiments.executor import LocalExecutor
from oneticket.tickets import StepDone
target, seen = int(sys.argv[3]), [0]
def on_event(event):
    if isinstance(event, StepDone):
        seen[0] += 1
        if seen[0] == target:
            os.kill(os.getpid(), signal.SIGKILL)
LocalExecutor(Path(sys.argv[2]), on_event=on_event).run(expand(load_experiment(Path(sys.argv[1]))))
"""


@pytest.mark.slow
def test_run_killed_at_random_steps_resumes_to_the_same_numbers(tmp_path: Path):
    """SIGKILL at three seeded random training steps of an experiment (each kill in a new process),
    then a rerun: the same numbers as an uninterrupted run, no temporary files left."""
    import random

    from oneticket.experiments import expand, parse_experiment, tidy_rows

    spec_file = tmp_path / "shared.toml"
    spec_file.write_text(SHARED)
    clean, killed = tmp_path / "clean", tmp_path / "killed"

    def run(store: Path, kill_at: int) -> int:
        args = [sys.executable, "-c", RUN_KILLER, str(spec_file), str(store), str(kill_at)]
        return subprocess.run(args, capture_output=True, text=True, env=ENV).returncode

    assert run(clean, 0) == 0
    for kill_at in random.Random(11).sample(range(1, 30), 3):  # steps counted from each process's start
        assert run(killed, kill_at) == -9
    assert run(killed, 0) == 0
    graph = expand(parse_experiment(SHARED))
    numbers = [[(r.kind, r.source, r.target, r.level, r.test_accuracy) for r in tidy_rows(graph, store)]
               for store in (clean, killed)]
    assert len(numbers[0]) == 14 and numbers[0] == numbers[1]
    assert not stray_files(killed)


@pytest.mark.slow
def test_an_empty_spec_json_is_written_again(tmp_path: Path):
    store = tmp_path / "store"
    assert main([*FIND, "--store", str(store)]) == 0
    (run,) = (store / "runs").iterdir()
    (run / "spec.json").write_bytes(b"")
    assert main([*FIND, "--store", str(store)]) == 0
    assert json.loads((run / "spec.json").read_text())["run_id"] == run.name


@pytest.mark.slow
def test_find_killed_at_seeded_random_steps_resumes_identically(tmp_path: Path):
    """SIGKILL at three seeded random (level, epoch, step) points of a tiny find, then a rerun:
    the masks and accuracies of an uninterrupted run, and no temporary files."""
    import random

    s = spec(levels=2, epochs=3)
    find_tickets(s, tmp_path / "clean")
    killed = tmp_path / "killed"
    rng = random.Random(5)
    points = sorted({(rng.randrange(3), rng.randrange(3), rng.randrange(4)) for _ in range(3)})
    for level, epoch, step in points:
        run_and_kill(s, killed, level, epoch, step)
    find_tickets(s, killed)
    assert masks_and_accuracies(killed, s)[1] == masks_and_accuracies(tmp_path / "clean", s)[1]
    assert all(a.equal(b) for a, b in zip(masks_and_accuracies(killed, s)[0], masks_and_accuracies(tmp_path / "clean", s)[0]))
    assert not stray_files(killed)
