"""The command line as a user runs it: end to end, tables, help, and one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from oneticket.cli import main
from oneticket.models import register_model
from oneticket.models.registry import MODELS
from oneticket.models.vgg import VGG, VGG19_LAYOUT
from oneticket.tickets import RunDir, load_ticket

FIND_TINY = ["find", "--model", "vgg19", "--width", "0.0625", "--dataset", "digits", "--train-size", "256",
             "--epochs", "2", "--batch-size", "64", "--device", "cpu"]


def oneticket(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "ONETICKET_OFFLINE": "1", "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "oneticket", *args], capture_output=True, text=True, env=env, cwd=cwd)


@pytest.mark.slow
def test_find_end_to_end_learns_and_writes_tickets(tmp_path: Path):
    store = tmp_path / "store"
    proc = oneticket("find", "--model", "vgg19", "--width", "0.25", "--dataset", "digits", "--epochs", "4",
                     "--levels", "2", "--batch-size", "128", "--seed", "0", "--store", str(store), "--device", "cpu")
    assert proc.returncode == 0, proc.stderr
    runs = list((store / "runs").iterdir())
    assert len(runs) == 1
    results = RunDir(runs[0]).results()
    assert [r.level for r in results] == [0, 1, 2]
    assert all(r.test_accuracy > 0.5 for r in results), [r.test_accuracy for r in results]  # chance is 0.1
    for r in results:
        assert str(r.ticket) in proc.stdout and (runs[0] / r.ticket).is_file()  # the final table names every ticket
        assert f"{100 * r.test_accuracy:.2f}%" in proc.stdout
        assert (runs[0] / r.trained).exists()
    assert "level 2: 36.00% pruned" in proc.stdout
    assert f"run folder: {runs[0]}" in proc.stdout  # printed whole, under the table

    show = oneticket("tickets", "show", str(runs[0] / results[2].ticket))
    assert show.returncode == 0, show.stderr
    mask = load_ticket(runs[0] / results[2].ticket).mask
    assert "fraction pruned" in show.stdout and "36.00%" in show.stdout and "digits" in show.stdout
    assert f"{mask.alive()}" in show.stdout and f"{mask.total()}" in show.stdout
    assert "features.0.weight" in show.stdout and "classifier" not in show.stdout


def test_rerun_of_a_finished_run_reports_it_without_training(tmp_path: Path, capsys):
    args = FIND_TINY + ["--levels", "1", "--store", str(tmp_path)]
    assert main(args) == 0
    capsys.readouterr()
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "level 0: finished earlier" in out and "level 1: finished earlier" in out


@pytest.mark.parametrize("command", [[], ["find"], ["tickets"], ["tickets", "show"]])
def test_every_command_has_help(command, capsys):
    assert main([*command, "--help"]) == 0
    out = capsys.readouterr().out
    assert "Usage" in out
    if command == ["find"]:
        from oneticket.cli.options import flag_name
        from oneticket.tickets import ImpSpec

        for field in ImpSpec.model_fields:  # every spec field is a flag
            assert flag_name(field) in out
        for flag in ("--data-dir", "--store", "--device"):
            assert flag in out


BAD_INPUTS = {
    "unknown model": (["find", "--model", "vgg11"], "unknown model 'vgg11'"),
    "unknown dataset": (["find", "--dataset", "mnist"], "unknown dataset 'mnist'"),
    "bad rate": (["find", "--rate", "1.5"], "--rate"),
    "bad rewind": (["find", "--rewind", "1epoch"], "must look like 1ep"),
    "bad width": (["find", "--width", "-1"], "--width"),
    "unknown option": (["find", "--learning-rate", "0.1"], "No such option"),
    "stem on vgg": (["find", "--stem", "cifar"], "does not take stem"),
    "missing ticket": (["tickets", "show", "nope.safetensors"], "no such file"),
}


@pytest.mark.parametrize("case", BAD_INPUTS, ids=list(BAD_INPUTS))
def test_bad_input_is_one_line_non_zero_no_traceback(case, tmp_path: Path, capsys):
    args, expected = BAD_INPUTS[case]
    code = main(args + (["--store", str(tmp_path)] if args[0] == "find" else []))
    captured = capsys.readouterr()
    assert code != 0
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and expected in lines[0], captured.err
    assert "Traceback" not in captured.err + captured.out


def test_corrupt_ticket_through_the_console_script(tmp_path: Path):
    path = tmp_path / "broken.safetensors"
    path.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all")
    proc = oneticket("tickets", "show", str(path))
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("error:") and "damaged or truncated" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr


def test_missing_dataset_offline_says_where_files_are_expected(tmp_path: Path, capsys, monkeypatch):
    monkeypatch.setenv("ONETICKET_OFFLINE", "1")
    code = main(["find", "--dataset", "cifar10", "--data-dir", str(tmp_path / "data"), "--store", str(tmp_path)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "data_batch_1" in err and str(tmp_path / "data" / "cifar10" / "cifar-10-batches-py") in err
    assert not list((tmp_path / "data").rglob("*.part"))


def test_find_downloads_a_missing_dataset_with_its_progress_bar(tmp_path: Path, monkeypatch, capsys):
    from test_download import make_cifar10_archive, use_download

    archive, md5 = make_cifar10_archive(tmp_path)
    use_download(monkeypatch, archive.as_uri(), md5)
    data_dir = tmp_path / "data"
    args = ["find", "--model", "vgg19", "--width", "0.0625", "--dataset", "cifar10", "--epochs", "1", "--levels", "0",
            "--batch-size", "8", "--rewind", "0it", "--data-dir", str(data_dir), "--store", str(tmp_path / "store")]
    assert main(args) == 0, capsys.readouterr().err
    assert (data_dir / "cifar10" / "cifar-10-batches-py" / "data_batch_5").exists()
    assert "level 0: 0.00% pruned" in capsys.readouterr().out


def test_cuda_asked_without_a_gpu(tmp_path: Path, capsys):
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    assert main(FIND_TINY[:-2] + ["--device", "cuda", "--store", str(tmp_path)]) == 2
    assert "no CUDA GPU" in capsys.readouterr().err


def test_ctrl_c_exits_130_with_a_resume_hint(tmp_path: Path, capsys, monkeypatch):
    from oneticket import api

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(api, "find_tickets", interrupted)
    assert main(FIND_TINY + ["--store", str(tmp_path)]) == 130
    err = capsys.readouterr().err
    assert "rerun the same command to continue" in err and "Traceback" not in err


class NanVGG(VGG):
    def forward(self, x):
        return super().forward(x) * float("nan")


def test_a_diverging_level_stops_with_its_message_recorded(tmp_path: Path, capsys):
    @register_model(epochs=2, milestones=(1,))
    def nan_vgg(num_classes: int, width: float = 1.0) -> NanVGG:
        return NanVGG(VGG19_LAYOUT, num_classes, width)

    try:
        args = ["find", "--model", "nan_vgg", "--width", "0.0625", "--dataset", "digits", "--train-size", "128",
                "--batch-size", "64", "--levels", "2", "--store", str(tmp_path), "--device", "cpu"]
        assert main(args) == 1
        out = capsys.readouterr().out
        assert "training diverged: the loss became nan" in out
        run = next((tmp_path / "runs").iterdir())
        result = json.loads((run / "level_00" / "result.json").read_text())
        assert result["status"] == "diverged" and result["test_accuracy"] is None
        assert "nan" in result["message"] and result["ticket"] is None
        assert not (run / "level_01").exists()
    finally:
        MODELS.pop("nan_vgg")
