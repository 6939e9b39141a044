"""Experiment specs, the job graph and planner, the results index, the executor, the report."""

from __future__ import annotations

import csv
import io
import json
import multiprocessing
import re
from pathlib import Path

import pytest

from oneticket.cli import main
from oneticket.cli.experiments import demo_specs
from oneticket.errors import UserError
from oneticket.experiments import (
    ImpJob,
    LocalExecutor,
    ResultsIndex,
    TrainJob,
    expand,
    expand_all,
    load_experiment,
    make_plan,
    parse_experiment,
    tidy_rows,
)
from oneticket.tickets import LevelResult, RunDir, load_ticket
from oneticket.tickets.catalogue import catalogue

ROOT = Path(__file__).resolve().parents[1]

TINY = """
name = "tiny"
models = [{ name = "vgg19", width = 0.0625 }]
sources = [{ dataset = "digitsa" }]
targets = ["digitsb"]
baselines = ["own", "random"]
[scale]
epochs = 3
batch_size = 32
train_size = 300
[pruning]
levels = 2
rate = 0.5
"""


def write_spec(folder: Path, text: str = TINY, name: str = "tiny.toml") -> Path:
    path = folder / name
    path.write_text(text)
    return path


# --- specs ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("bogus = 1\n" + TINY, r"tiny\.toml: bogus: unknown key"),
    (TINY + "\nrewnd = '1ep'\n", r"tiny\.toml: pruning\.rewnd: unknown key"),
    (TINY.replace('targets = ["digitsb"]', 'targets = ["imagenet"]'), r"targets\[0\]: unknown dataset 'imagenet'"),
    (TINY.replace('sources = [{ dataset = "digitsa" }]', 'sources = [{ dataset = "digitsa", optimizer = "rmsprop" }]'),
     r"sources\[0\]\.optimizer: Input should be 'sgd' or 'adam'"),
    (TINY + "train_levels = [0, 5]\n", r"pruning: train_levels \[5\] are outside 0\.\.2"),
    (TINY + "train_levels = [1, 1]\n", r"pruning: train_levels lists a level twice"),
    (TINY.replace('name = "tiny"', ""), r"name: required key is missing"),
    (TINY.replace("epochs = 3", "epochs = 0"), r"scale\.epochs: Input should be greater than or equal to 1"),
    (TINY.replace('models = [{ name = "vgg19", width = 0.0625 }]', 'models = ["vgg16"]'), r"models\[0\]\.name: unknown model 'vgg16'"),
    (TINY.replace("[scale]", "[scale\n"), r"tiny\.toml is not valid TOML"),
])
def test_spec_errors_name_the_field(tmp_path: Path, text: str, expected: str):
    with pytest.raises(UserError, match=expected) as info:
        load_experiment(write_spec(tmp_path, text))
    assert "\n" not in str(info.value)


def test_spec_error_through_the_cli_is_one_line(tmp_path: Path, capsys):
    code = main(["plan", str(write_spec(tmp_path, "bogus = 1\n" + TINY)), "--no-measure", "--store", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "bogus: unknown key" in err


def test_shipped_specs_and_the_demo_validate():
    shipped = sorted((ROOT / "experiments").glob("*/*.toml"))
    assert {p.parent.name for p in shipped} == {"paper", "quick", "subsets"} and len(shipped) == 12
    for path in shipped:
        spec = load_experiment(path)
        assert spec.name.removeprefix("quick_").removeprefix("subsets_") == path.stem
    paper = {p.stem: load_experiment(p) for p in (ROOT / "experiments" / "paper").glob("*.toml")}
    assert all(s.pruning.levels == 30 and s.scale.width == 1.0 and s.scale.train_size is None and s.scale.epochs is None
               for s in paper.values())
    assert [m.name for m in paper["across_datasets"].models] == ["vgg19", "resnet50"]
    specs = demo_specs()
    assert [s.name for s in specs] == ["demo_within_distribution", "demo_across_optimizers"]
    assert specs[0].sources[0].dataset == "digitsa" and specs[0].targets == ["digitsb"]


@pytest.mark.parametrize("size", ["quick", "subsets"])
def test_cpu_presets_train_long_enough_with_their_recipe(size):
    """Hundreds of optimizer steps per training, the measured recipe, and a top sparsity where the
    random ticket falls away (docs/presets.md)."""
    for path in sorted((ROOT / "experiments" / size).glob("*.toml")):
        spec = load_experiment(path)
        scale = spec.scale
        epochs = 25 if path.stem == "finders" and size == "subsets" else 70  # cut to fit its 60-odd trainings in an hour
        assert (scale.width, scale.batch_size, scale.epochs, scale.warmup) == (0.125, 128, epochs, "2ep"), path
        assert scale.lr == {"sgd": 0.05, "adam": 2e-3}
        top = max(1 - (1 - spec.pruning.rate) ** spec.pruning.levels, *(spec.pruning.sparsities or [0.0]))
        assert top >= 0.978
        for job in expand(spec).jobs.values():
            images = min(job.spec.train_size or 10**9, 2717 if job.spec.dataset in ("cifar10a", "cifar10b") else 3000)
            assert job.spec.num_epochs * (images // scale.batch_size) >= 1000 * epochs / 70, (path, job.spec.dataset)


def test_subset_presets_read_only_the_real_subsets(tmp_path: Path):
    """Every dataset a subset spec names is in ../shared/datasets: they run offline."""
    from conftest import shared_data_or_skip
    from oneticket.experiments.plan import DatasetSizes

    data = shared_data_or_skip("cifar10")
    sizes = DatasetSizes(data)
    for path in sorted((ROOT / "experiments" / "subsets").glob("*.toml")):
        graph = expand(load_experiment(path))
        for dataset in {job.spec.dataset for job in graph.jobs.values()}:
            assert sizes(dataset)[0] < 6000, dataset  # counted in the subset's files, not the official 50,000
    assert sizes("cifar10") == (5438, 1017) and sizes("cifar10b") == (2717, 1017) and sizes("fashionmnist") == (3000, 615)
    assert sizes.not_found == set()
    elsewhere = DatasetSizes(tmp_path)  # files not there: the official counts, and the plan says so
    assert elsewhere("cifar10b") == (25000, 10000) and elsewhere.not_found == {"cifar10"}


def test_seeds_as_a_count():
    spec = parse_experiment(TINY.replace('name = "tiny"', 'name = "tiny"\nseeds = 3'))
    assert spec.seeds == [0, 1, 2]
    assert len([s for s in expand(spec).series if s.kind == "own"]) == 3


# --- graph and planner ---------------------------------------------------------------------------

def test_planner_shares_the_cifar10_sgd_run_between_experiments():
    paper = ROOT / "experiments" / "paper"
    optimizers, datasets = load_experiment(paper / "across_optimizers.toml"), load_experiment(paper / "across_datasets.toml")
    alone = len(expand(optimizers).jobs) + len(expand(datasets).jobs)
    both = expand_all([optimizers, datasets])
    shared = {j.id for j in expand(optimizers).jobs.values() if isinstance(j, ImpJob)} & \
             {j.id for j in expand(datasets).jobs.values() if isinstance(j, ImpJob)}
    assert len(shared) == 1
    (run,) = [both.jobs[j] for j in shared]
    assert (run.spec.model, run.spec.dataset, run.spec.optimizer) == ("vgg19", "cifar10", "sgd")
    assert len(both.jobs) < alone
    # the shared run's own-ticket series appear in both experiments, pointing at one job
    users = {s.experiment for s in both.series if any(p.job_id == run.id for p in s.points)}
    assert users == {"across_optimizers", "across_datasets"}


def test_graph_lines_per_panel():
    graph = expand(parse_experiment(TINY))
    kinds = sorted(s.kind for s in graph.series)
    assert kinds == ["own", "random", "transfer"]
    transfers = [j for j in graph.jobs.values() if isinstance(j, TrainJob) and j.spec.kind == "transfer"]
    assert sorted(j.spec.level for j in transfers) == [0, 1, 2]
    (own_run,) = [j for j in graph.jobs.values() if isinstance(j, ImpJob) and j.spec.dataset == "digitsb"]
    randoms = [j for j in graph.jobs.values() if isinstance(j, TrainJob) and j.spec.kind == "random"]
    assert {j.spec.source for j in randoms} == {own_run.spec.run_id()}  # random tickets permute the own ticket


# --- results index -------------------------------------------------------------------------------

def _write_many(store: str, worker: int, count: int) -> None:
    index = ResultsIndex(Path(store))
    for i in range(count):
        history = [{"epoch": 1, "train_loss": 1.0, "test_accuracy": 0.5, "lr": 0.1, "seconds": 0.1}]
        index.record_result(f"job-{worker}", LevelResult(i, "done", 0.0, 10, 10, 0.5 + worker, 1.0, history))


def test_two_processes_writing_one_index_lose_nothing(tmp_path: Path):
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_write_many, args=(str(tmp_path), w, 60)) for w in range(2)]
    for p in workers:
        p.start()
    for p in workers:
        p.join(120)
    assert [p.exitcode for p in workers] == [0, 0]
    results = ResultsIndex(tmp_path).results()
    assert len(results) == 120
    assert {results[(f"job-{w}", 59)]["test_accuracy"] for w in range(2)} == {0.5, 1.5}
    assert ResultsIndex(tmp_path).compute(["job-0"]) == (60, 60, 60.0)


# --- end to end ----------------------------------------------------------------------------------

@pytest.mark.slow
def test_tiny_spec_runs_resumes_and_reports(tmp_path: Path, capsys):
    spec_file = write_spec(tmp_path)
    store = tmp_path / "store"
    graph = expand(load_experiment(spec_file))

    class Stop(Exception):
        pass

    seen = {"epochs": 0}

    def interrupt_in_a_training(event: object) -> None:  # Ctrl-C in the middle of a ticket training
        if type(event).__name__ == "EpochDone":
            seen["epochs"] += 1
            if seen["epochs"] == 20:  # the second epoch of the first ticket training
                raise KeyboardInterrupt

    executor = LocalExecutor(store, None, "cpu", interrupt_in_a_training)
    with pytest.raises(KeyboardInterrupt):
        executor.run(graph)
    partial = make_plan(graph, store)
    assert 0 < partial.jobs_done < len(graph.jobs)
    assert any(s.state == "partial" for s in partial.statuses)

    assert main(["run", str(spec_file), "--store", str(store), "--device", "cpu"]) == 0
    plan = make_plan(graph, store)
    assert plan.jobs_done == len(graph.jobs) and plan.trainings_left == 0
    capsys.readouterr()

    # the interrupted-and-resumed results equal an uninterrupted run's, bit for bit
    fresh = tmp_path / "fresh"
    assert main(["run", str(spec_file), "--store", str(fresh), "--device", "cpu"]) == 0
    capsys.readouterr()
    resumed_rows, fresh_rows = tidy_rows(graph, store), tidy_rows(graph, fresh)
    assert len(resumed_rows) == 9
    assert [(r.kind, r.level, r.test_accuracy) for r in resumed_rows] == [(r.kind, r.level, r.test_accuracy) for r in fresh_rows]
    own = [r for r in resumed_rows if r.kind == "own"]
    assert [r.fraction_pruned for r in own] == [0.0, 0.5, 0.75]
    assert max(r.test_accuracy for r in resumed_rows) > 0.3, resumed_rows  # chance is 0.1 (3 epochs: the own run learns slowest)

    # results --csv: one tidy table
    assert main(["results", str(spec_file), "--store", str(store), "--csv"]) == 0
    table = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert len(table) == 9
    assert set(table[0]) >= {"experiment", "model", "source", "target", "train_optimizer", "seed", "level",
                             "fraction_pruned", "test_accuracy"}

    # report: the figure exists and holds the plotted series
    out = tmp_path / "report"
    assert main(["report", str(spec_file), "--store", str(store), "--out", str(out)]) == 0
    assert "report.html" in capsys.readouterr().out
    svg = (out / "tiny.svg").read_text()
    record = json.loads((out / "tiny.json").read_text())
    (panel,) = record["panels"]
    assert sorted(s["kind"] for s in panel["series"]) == ["own", "random", "transfer"]
    by_kind = {s["kind"]: s for s in panel["series"]}
    for row in table:
        series = by_kind[row["kind"]]
        assert series["mean_accuracy"][series["levels"].index(int(row["level"]))] == pytest.approx(float(row["test_accuracy"]))
    for series in panel["series"]:
        group = re.search(rf'<g id="{series["id"]}">\s*<path d="([^"]+)"', svg)
        assert group, series["id"]
        assert len(re.findall(r"[ML]", group.group(1))) == len(series["levels"]) == 3  # one vertex per level
    assert (out / "tiny.png").stat().st_size > 10_000
    html = (out / "report.html").read_text()
    assert "data:image/png;base64," in html and "ticket from digitsa (sgd)" in html
    assert "Compute spent: 12 trainings" in (out / "report.md").read_text()


@pytest.mark.slow
def test_transfer_command_and_ticket_catalogue(tmp_path: Path, capsys):
    store = tmp_path / "store"
    assert main(["find", "--model", "vgg19", "--width", "0.0625", "--dataset", "digitsa", "--train-size", "200",
                 "--epochs", "1", "--batch-size", "64", "--levels", "1", "--rewind", "2it", "--store", str(store),
                 "--device", "cpu"]) == 0
    (run_dir,) = (store / "runs").iterdir()
    capsys.readouterr()
    code = main(["transfer", "--from", str(run_dir), "--dataset", "digitsb", "--optimizer", "adam", "--epochs", "1",
                 "--batch-size", "64", "--train-size", "200", "--levels", "1", "--store", str(store), "--device", "cpu"])
    assert code == 0
    out = capsys.readouterr().out
    (training,) = (store / "trainings").iterdir()
    assert "adam" in out and training.name in out and f"results: {store / 'trainings'}/<training>/result.json" in out
    assert main(["transfer", "--from", str(run_dir), "--dataset", "digitsb", "--levels", "1,4,8", "--store", str(store)]) == 2
    assert "--levels 4,8: no ticket at that level" in capsys.readouterr().err
    record = json.loads((training / "spec.json").read_text())
    result = json.loads((training / "result.json").read_text())
    ticket = load_ticket(RunDir(run_dir).ticket_file(1))
    assert record["spec"]["source"] == run_dir.name and record["spec"]["level"] == 1
    assert result["alive"] == ticket.mask.alive()

    # catalogue: list, export, import into another store, verify
    assert main(["tickets", "list", "--store", str(store)]) == 0
    assert "digitsa" in capsys.readouterr().out
    out = tmp_path / "published"
    assert main(["tickets", "export", str(out), "--from", run_dir.name, "--store", str(store)]) == 0
    files = sorted(out.glob("*.safetensors"))
    assert len(files) == 2 and (out / "README.md").exists() and (out / "tickets.json").exists()
    other = tmp_path / "other"
    assert main(["tickets", "import", str(out), "--store", str(other)]) == 0
    assert main(["tickets", "verify", str(files[1])]) == 0
    assert "weights survive, as level 1" in capsys.readouterr().out
    assert main(["tickets", "list", "--store", str(other)]) == 0
    listed = catalogue(other)
    assert [(e.info.level, e.imported) for e in listed] == [(0, True), (1, True)]
    assert listed[1].path.read_bytes() == files[1].read_bytes()
    # an imported ticket is a transfer source by run id
    assert main(["transfer", "--from", run_dir.name, "--dataset", "digits", "--epochs", "1", "--batch-size", "64",
                 "--train-size", "200", "--levels", "0", "--store", str(other), "--device", "cpu"]) == 0
    # exporting into a non-empty folder, or a damaged file, is a one-line error
    assert main(["tickets", "export", str(out), "--from", run_dir.name, "--store", str(store)]) == 2
    damaged = tmp_path / "damaged.safetensors"
    data = bytearray(files[0].read_bytes())
    data[-5] ^= 0xFF
    damaged.write_bytes(bytes(data))
    assert main(["tickets", "verify", str(damaged)]) == 2
    assert "modified after it was written" in capsys.readouterr().err


def test_an_index_written_before_provenance_is_upgraded_in_place(tmp_path: Path):
    import sqlite3

    old_schema = """
    CREATE TABLE jobs (job_id TEXT PRIMARY KEY, kind TEXT NOT NULL, spec TEXT NOT NULL, directory TEXT NOT NULL);
    CREATE TABLE results (job_id TEXT NOT NULL, level INTEGER NOT NULL, status TEXT NOT NULL, fraction_pruned REAL,
        alive INTEGER, total INTEGER, test_accuracy REAL, seconds REAL, message TEXT, PRIMARY KEY (job_id, level));
    """
    tmp_path.mkdir(exist_ok=True)
    with sqlite3.connect(tmp_path / "results.sqlite") as conn:
        conn.executescript(old_schema)
        conn.execute("INSERT INTO results VALUES ('old', 0, 'done', 0.0, 10, 10, 0.9, 1.0, NULL)")
    index = ResultsIndex(tmp_path)
    assert index.results()[("old", 0)]["provenance"] == {} and index.results()[("old", 0)]["test_accuracy"] == 0.9
    made = {"torch": "2.x", "threads": 1}
    index.record_result("new", LevelResult(0, "done", 0.0, 10, 10, 0.5, 1.0, [], provenance=made))
    assert index.results()[("new", 0)]["provenance"] == made
    assert ResultsIndex(tmp_path).results()[("old", 0)]["test_accuracy"] == 0.9  # upgrading twice is harmless
