"""The command line's surface: --version, --help pages, built-in specs by name, the demo's store,
and the plan table. Nothing here trains."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

import pytest
import torch
from rich.console import Console

from oneticket import __version__, provenance
from oneticket.cli import main
from oneticket.cli.experiments import _duration, _experiment_store, demo_specs, load_graph, plan_table
from oneticket.cli.options import field_metavar
from oneticket.errors import UserError
from oneticket.experiments import builtin_names, expand_all, load_specs, make_plan, parse_experiment

COMMANDS = [[], ["find"], ["plan"], ["run"], ["report"], ["results"], ["transfer"], ["demo"], ["tickets"],
            ["tickets", "list"], ["tickets", "show"], ["tickets", "export"], ["tickets", "import"], ["tickets", "verify"]]
# typer's internal type names, number ranges and argument names in braces
NOISE = re.compile(r"<(bool|str|int|float|path|int range|float range|list\[\w+\])>|\{\w+\}|\[x?[<>]=|\d<=x")


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The default store ($ONETICKET_STORE), empty."""
    monkeypatch.setenv("ONETICKET_STORE", str(tmp_path))
    return tmp_path


# --version


@pytest.mark.parametrize("commit", ["4811dc381c45-dirty", None])
def test_version_is_one_line_with_torch_and_the_commit(commit, monkeypatch, capsys):
    monkeypatch.setattr(provenance, "git_commit", lambda: commit)
    assert main(["--version"]) == 0
    out = capsys.readouterr().out
    git = f", git {commit}" if commit else ""
    assert out == f"oneticket {__version__} (torch {torch.__version__}{git})\n"


def test_version_names_this_checkouts_commit(capsys):
    assert main(["--version"]) == 0
    commit = provenance.git_commit()
    assert capsys.readouterr().out.strip().endswith(f", git {commit})" if commit else f"(torch {torch.__version__})")


# --help


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "oneticket")
def test_help_shows_no_internal_metavars(command, monkeypatch, capsys):
    monkeypatch.setenv("COLUMNS", "200")
    assert main([*command, "--help"]) == 0
    out = capsys.readouterr().out
    assert "Usage: oneticket" in out
    assert NOISE.findall(out) == []
    assert "--help" in out and "Show this message and exit." in out


def test_help_shows_choices_and_short_words(monkeypatch, capsys):
    monkeypatch.setenv("COLUMNS", "200")

    def row(command: list[str], flag: str) -> str:
        assert main([*command, "--help"]) == 0
        lines = [line for line in capsys.readouterr().out.splitlines() if re.match(rf"\s+{flag}[\s/]", line)]
        assert len(lines) == 1, (flag, lines)
        return lines[0]

    assert "<sgd|adam>" in row(["find"], "--optimizer")
    assert "<none|linear>" in row(["find"], "--lr-scaling")
    assert "<crop-flip|crop|none>" in row(["find"], "--augment")
    assert "<fp32|bf16>" in row(["find"], "--precision")
    assert "<imagenet|cifar>" in row(["find"], "--stem")
    assert re.search(r"--levels\s+N\s", row(["find"], "--levels"))
    assert re.search(r"--rate\s+RATE\s", row(["find"], "--rate"))
    assert re.search(r"--layerwise / --no-layerwise\s+prune", row(["find"], "--layerwise"))  # a flag shows no type
    assert re.search(r"--store\s+DIR\s", row(["find"], "--store"))
    assert "<local|ray>" in row(["run"], "--executor")
    assert "<auto|shared|object-store>" in row(["run"], "--artifacts")
    assert re.search(r"--threads\s+N\s", row(["run"], "--threads"))
    assert "<transfer|random|random-layerwise|random-mask|random-weights>" in row(["transfer"], "--variant")
    assert "<sgd|adam>" in row(["transfer"], "--optimizer")
    assert "<none|linear>" in row(["transfer"], "--lr-scaling")
    assert re.search(r"--levels\s+LEVELS\s", row(["transfer"], "--levels"))
    assert main(["run", "--help"]) == 0
    out = capsys.readouterr().out
    assert "Usage: oneticket run [OPTIONS] SPEC..." in out and "quick/within_distribution" in out


def test_field_metavars_of_generated_options():
    assert field_metavar("layerwise", bool) == ""
    assert field_metavar("optimizer", Literal["sgd", "adam"]) == "<sgd|adam>"
    assert field_metavar("epochs", int | None) == "N"
    assert field_metavar("new_ratio", float) == "X"
    assert field_metavar("rewind", str) == "POINT"
    assert field_metavar("stem", str | None) == "<imagenet|cifar>"


def test_ranges_are_still_checked_with_the_range_hidden(store: Path, capsys):
    assert main(["run", "demo", "--threads", "0"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--threads" in err and "greater than or equal to 1" in err


def test_no_arguments_shows_help_without_an_empty_error_line(capsys):
    assert main([]) == 2  # click's convention for a missing command
    captured = capsys.readouterr()
    assert "Usage: oneticket" in captured.out and captured.err == ""


# built-in specs by name


def test_builtin_names():
    names = builtin_names()
    assert names[0] == "demo"
    for name in ("demo_within_distribution", "demo_across_optimizers", "quick/within_distribution",
                 "quick/across_datasets", "paper/across_datasets", "paper/within_distribution"):
        assert name in names
    assert all(not name.endswith(".toml") for name in names)


def test_every_builtin_spec_loads_by_name():
    for name in builtin_names():
        specs = load_specs([name])
        assert specs and all(spec.name for spec in specs)


def test_spec_names_resolve_to_the_shipped_files(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no experiments/ folder here
    assert [s.name for s in load_specs(["demo"])] == ["demo_within_distribution", "demo_across_optimizers"]
    assert [s.name for s in demo_specs()] == ["demo_within_distribution", "demo_across_optimizers"]
    quick = load_specs(["quick/within_distribution"])
    assert quick == load_specs(["quick/within_distribution.toml"]) == load_specs(["experiments/quick/within_distribution.toml"])
    shipped = Path(__file__).parents[1] / "src/oneticket/experiments/builtin/quick/within_distribution.toml"
    assert quick == [parse_experiment(shipped.read_text())]
    assert [s.name for s in load_specs(["demo_within_distribution", "paper/across_datasets"])] == \
        ["demo_within_distribution", "across_datasets"]


def test_an_existing_file_wins_over_a_builtin_name(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "quick").mkdir()
    text = (Path(__file__).parents[1] / "src/oneticket/experiments/builtin/quick/within_distribution.toml").read_text()
    (tmp_path / "quick/within_distribution.toml").write_text(re.sub(r'(?m)^name = ".*"$', 'name = "mine"', text))
    assert [s.name for s in load_specs(["quick/within_distribution.toml"])] == ["mine"]
    assert [s.name for s in load_specs(["quick/within_distribution"])] == ["quick_within_distribution"]


def test_unknown_spec_name_is_one_line_naming_the_builtins(store: Path, capsys):
    with pytest.raises(UserError) as caught:
        load_specs(["qick/x"])
    message = str(caught.value)
    assert message.startswith("no spec file or built-in spec 'qick/x'; built-in: demo, ")
    assert "quick/within_distribution" in message and "\n" not in message
    assert main(["plan", "qick/x", "--no-measure"]) == 2
    err = capsys.readouterr().err
    assert err == f"error: {message}\n"


# the demo's store


def test_demo_specs_use_the_demos_store(store: Path, tmp_path: Path):
    assert _experiment_store(None, load_graph(["demo"])) == store / "demo"
    assert _experiment_store(None, load_graph(["demo_across_optimizers"])) == store / "demo"
    assert _experiment_store(None, load_graph(["quick/within_distribution"])) == store
    assert _experiment_store(None, load_graph(["demo_within_distribution", "quick/within_distribution"])) == store
    assert _experiment_store(tmp_path / "mine", load_graph(["demo"])) == tmp_path / "mine"


def test_results_and_report_of_the_demo_read_its_store(store: Path, capsys):
    assert main(["results", "demo"]) == 0
    out = capsys.readouterr().out
    assert "no finished results yet; run 'oneticket demo'" in out
    assert main(["report", "demo"]) != 0
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1 and captured.err.startswith("error: no finished results")
    assert str(store / "demo") in captured.err
    assert "Traceback" not in captured.err + captured.out


# tickets list and the demo's tickets


def _fake_demo_tickets(store: Path, count: int) -> None:
    for level in range(count):
        path = store / "demo" / "runs" / "0123456789abcdef" / f"level_{level:02d}" / "ticket.safetensors"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")


def test_tickets_list_points_to_the_demos_tickets(store: Path, monkeypatch, capsys):
    monkeypatch.setenv("COLUMNS", "300")
    _fake_demo_tickets(store, 3)
    assert main(["tickets", "list"]) == 0
    out = capsys.readouterr().out
    assert f"no tickets in {store} yet" in out and "dataset" not in out  # no empty table
    assert f"the demo made 3 ticket(s), in its own store: oneticket tickets list --store {store / 'demo'}\n" in out


def test_tickets_list_without_a_demo_or_with_a_store_has_no_demo_line(store: Path, monkeypatch, capsys):
    monkeypatch.setenv("COLUMNS", "300")
    assert main(["tickets", "list"]) == 0
    assert "the demo made" not in capsys.readouterr().out
    _fake_demo_tickets(store, 2)
    assert main(["tickets", "list", "--store", str(store / "other")]) == 0
    assert "the demo made" not in capsys.readouterr().out


# plan


@pytest.mark.parametrize("seconds, text", [
    (None, "?"), (0, "0 s"), (45, "45 s"), (89, "89 s"), (90, "1 min 30 s"), (200, "3 min 20 s"), (240, "4 min"),
    (299.4, "4 min 59 s"), (300, "5 min"), (2700, "45 min"), (5399, "90 min"), (5400, "1.5 h"), (47.5 * 3600, "47.5 h"),
    (48 * 3600, "2.0 days"), (10.25 * 86400, "10.2 days"),
])
def test_duration(seconds, text):
    assert _duration(seconds) == text


TWO_MODELS = """
name = "two_models"
models = ["vgg19", "resnet50"]
sources = [{ dataset = "digitsa", optimizer = "sgd" }]
targets = ["digitsb"]
baselines = ["own", "random"]
seeds = [0]
[scale]
width = 0.125
epochs = 1
[pruning]
levels = 2
"""


def test_plan_gives_each_model_its_own_rows(tmp_path: Path):
    graph = expand_all([parse_experiment(TWO_MODELS)])
    console = Console(record=True, width=400)
    console.print(plan_table(make_plan(graph, tmp_path)))
    lines = console.export_text().splitlines()
    rows = [line for line in lines if re.search(r"\(\d+ levels\)", line)]
    for kind, source in (("transfer", "digitsa"), ("random", "digitsb")):  # a random ticket shuffles the own ticket
        for model in ("vgg19", "resnet50"):
            mine = [line for line in rows if f"{kind} {model} w0.125 {source}/sgd -> digitsb/sgd 1ep (3 levels)" in line]
            assert len(mine) == 1, (kind, model, rows)
            assert re.search(r"\s0\s+waiting\s+0/3\s", mine[0]), mine[0]  # seeds, state, trainings done
    assert len(rows) == 4
    assert sum("IMP vgg19" in line for line in lines) == 2 and sum("IMP resnet50" in line for line in lines) == 2


def test_tickets_list_shows_pruning_levels_as_they_are():
    from oneticket.cli.catalogue import _pruned_percent

    assert [_pruned_percent(f) for f in (0.0, 0.5, 0.9375, 0.984375, 0.2)] == ["0%", "50%", "93.75%", "98.44%", "20%"]


def test_plan_says_which_datasets_it_could_not_count(tmp_path: Path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "300")
    assert main(["plan", "subsets/within_distribution", "--no-measure", "--store", str(tmp_path / "s"),
                 "--data-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert f"not in {tmp_path}, so their official image counts were used: cifar10 (pass --data-dir" in out
