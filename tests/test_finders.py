"""Ticket finders beyond IMP: the scoring rules against direct computations, the masks every finder
makes, the shared dense run, compute accounting, the experiment and report, and `compare`."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call
from torch.nn.utils import prune

from oneticket.cli import main
from oneticket.data import DeviceData, load_dataset
from oneticket.experiments import expand, load_specs, parse_experiment
from oneticket.experiments.graph import ImpJob
from oneticket.experiments.plan import finder_costs
from oneticket.experiments.tasks import task_graph
from oneticket.models import create_model
from oneticket.sparsity import Mask, magnitude_prune, permute_mask, prunable_weights
from oneticket.sparsity.overlap import mask_overlap
from oneticket.sparsity.profiles import layer_counts, random_profile_mask
from oneticket.sparsity.pruning import kept_count
from oneticket.sparsity.saliency import GRASP_TEMPERATURE, grasp_scores, snip_scores, synflow_prune, synflow_scores
from oneticket.tickets import ImpSpec, RunDir, TrainSpec, find_tickets, load_ticket, load_weights, save_weights, train_ticket
from oneticket.tickets.finders import RULES, FinderInputs, finder_mask
from oneticket.tickets.spec import FINDERS
from oneticket.tickets.transfer import TrainingDir
from oneticket.training import Compute


class Tiny(nn.Module):
    """Conv + BatchNorm + ReLU + pool + linear: small enough for finite differences and a full Hessian."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.fc = nn.Linear(16, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(F.avg_pool2d(F.relu(self.bn(self.conv(x))), 2).flatten(1))


NAMES = ["conv.weight", "fc.weight"]


def tiny_setup() -> tuple[Tiny, list[tuple[torch.Tensor, torch.Tensor]]]:
    torch.manual_seed(0)
    model = Tiny().double()
    with torch.no_grad():
        model.bn.running_mean.uniform_(-0.5, 0.5)
        model.bn.running_var.uniform_(0.5, 2.0)
        model.bn.weight.uniform_(0.5, 1.5)
    gen = torch.Generator().manual_seed(1)
    batches = [(torch.randn(6, 3, 4, 4, generator=gen, dtype=torch.float64), torch.randint(0, 3, (6,), generator=gen))
               for _ in range(2)]
    return model, batches


def flat_weights(model: nn.Module) -> torch.Tensor:
    return torch.cat([model.get_parameter(n).detach().reshape(-1) for n in NAMES])


def with_flat(model: nn.Module, flat: torch.Tensor) -> dict[str, torch.Tensor]:
    """The model's parameters with the prunable weights taken from ``flat``."""
    params = {k: v.detach() for k, v in model.named_parameters()}
    offset = 0
    for name in NAMES:
        n = params[name].numel()
        params[name] = flat[offset:offset + n].view_as(params[name])
        offset += n
    return params


def training_mode_loss(model: nn.Module, batches, temperature: float = 1.0):
    """The summed loss over batches as a function of the prunable weights, BatchNorm on batch statistics."""
    def loss(flat: torch.Tensor) -> torch.Tensor:
        model.train()
        return sum(F.cross_entropy(functional_call(model, with_flat(model, flat), (x,)) / temperature, y, reduction="sum")
                   for x, y in batches)
    return loss


def finite_difference_gradient(f, flat: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    grad = torch.zeros_like(flat)
    for i in range(flat.numel()):
        step = torch.zeros_like(flat)
        step[i] = eps
        grad[i] = (f(flat + step) - f(flat - step)) / (2 * eps)
    return grad


def as_flat(scores: dict[str, torch.Tensor]) -> torch.Tensor:
    return torch.cat([scores[n].reshape(-1) for n in NAMES])


def test_snip_score_is_the_magnitude_of_gradient_times_weight():
    model, batches = tiny_setup()
    w = flat_weights(model)
    g = finite_difference_gradient(training_mode_loss(model, batches), w)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    scores = snip_scores(model, NAMES, batches)
    torch.testing.assert_close(as_flat(scores), (g * w).abs(), rtol=1e-5, atol=1e-9)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())  # scored on a copy: BatchNorm untouched


def test_grasp_score_is_minus_the_paper_score_weight_times_hessian_gradient():
    model, batches = tiny_setup()
    w = flat_weights(model)
    f = training_mode_loss(model, batches, GRASP_TEMPERATURE)
    g = torch.autograd.functional.jacobian(f, w)
    hessian = torch.autograd.functional.hessian(f, w)
    paper_score = -w * (hessian @ g)  # S(-w) = -w * Hg; GraSP removes the largest
    keep = grasp_scores(model, NAMES, batches)
    torch.testing.assert_close(as_flat(keep), -paper_score, rtol=1e-6, atol=1e-14)


def test_synflow_score_is_weight_times_gradient_of_the_absolute_network_output():
    model, _ = tiny_setup()
    linear = Tiny().double()
    linear.load_state_dict({k: v.abs() if v.is_floating_point() else v for k, v in model.state_dict().items()})
    linear.eval()
    ones = torch.ones(1, 3, 4, 4, dtype=torch.float64)

    def flow(flat: torch.Tensor) -> torch.Tensor:
        return functional_call(linear, {**with_flat(linear, flat), **dict(linear.named_buffers())}, (ones,)).sum()

    w = flat_weights(linear)
    expected = w * finite_difference_gradient(flow, w)
    torch.testing.assert_close(as_flat(synflow_scores(model, NAMES, (3, 4, 4))), expected, rtol=1e-5, atol=1e-9)


def test_synflow_keeps_every_vgg19_layer_alive_at_999_percent_where_magnitude_collapses():
    model = create_model("vgg19", 10, 0.125, 0)
    everything = Mask.ones(model)
    mask = synflow_prune(model, everything, 0.999, (3, 32, 32), rounds=100)
    assert mask.alive() == kept_count(everything.total(), 0.999)
    assert all(layer.alive > 0 for layer in mask.layers())
    magnitude = magnitude_prune(model.state_dict(), everything, 0.999)  # the same budget by magnitude at init
    assert any(layer.alive == 0 for layer in magnitude.layers())


@pytest.fixture(scope="module")
def digits_inputs() -> FinderInputs:
    data = DeviceData(load_dataset("digitsa", None, None, 0, show_progress=False), "cpu", 64)

    def make(finder: str, **settings: object) -> FinderInputs:
        spec = ImpSpec(model="vgg19", width=0.0625, dataset="digitsa", finder=finder, sparsities=(0.5, 0.9, 0.99),
                       **settings)
        model = create_model("vgg19", 10, 0.0625, spec.seeds()["init"])
        init = {k: v.clone() for k, v in model.state_dict().items()}
        rewind = {k: v + 0.01 * torch.randn(v.shape, generator=torch.Generator().manual_seed(2)) if v.is_floating_point()
                  else v for k, v in init.items()}
        trained = {k: v * 1.5 + 0.02 for k, v in rewind.items()}
        return FinderInputs(spec, model, Mask.ones(model), init, lambda: rewind, lambda: trained, data)

    return make  # type: ignore[return-value]


@pytest.mark.parametrize("finder", sorted(RULES))
def test_every_finder_masks_only_prunable_weights_at_exactly_the_sparsity_and_is_deterministic(digits_inputs, finder):
    settings = {"rounds": 10} if finder == "synflow" else {}
    inputs = digits_inputs(finder, **settings)
    prunable = prunable_weights(inputs.model)
    for sparsity in (0.5, 0.99):
        mask, compute = finder_mask(inputs, sparsity)
        assert list(mask) == list(prunable) and all(mask[k].shape == prunable[k].shape for k in mask)
        assert mask.alive() == kept_count(mask.total(), sparsity)
        again, _ = finder_mask(digits_inputs(finder, **settings), sparsity)
        assert mask.equal(again)
        assert (compute.passes > 0) == (finder in ("snip", "grasp", "synflow"))


def test_finder_registry_names_every_rule():
    assert set(FINDERS) == set(RULES) | {"imp"}


def test_random_profiles_hit_the_count_and_erk_gives_small_layers_more():
    shapes = {"a": (16, 3, 3, 3), "b": (64, 16, 3, 3), "c": (128, 64, 3, 3), "d": (10, 128)}
    total = sum(math.prod(s) for s in shapes.values())
    for profile in ("uniform", "erk"):
        for sparsity in (0.5, 0.9, 0.99):
            counts = layer_counts(shapes, sparsity, profile)
            assert sum(counts.values()) == kept_count(total, sparsity)
            assert all(0 <= counts[k] <= math.prod(s) for k, s in shapes.items())
    uniform, erk = layer_counts(shapes, 0.9, "uniform"), layer_counts(shapes, 0.9, "erk")
    assert abs(uniform["a"] / 432 - uniform["c"] / 73728) < 0.01  # the same fraction everywhere
    assert erk["a"] / 432 > erk["b"] / 9216 > erk["c"] / 73728
    mask = Mask({k: torch.ones(s, dtype=torch.bool) for k, s in shapes.items()})
    assert random_profile_mask(mask, 0.9, "erk", 3).equal(random_profile_mask(mask, 0.9, "erk", 3))
    assert not random_profile_mask(mask, 0.9, "erk", 3).equal(random_profile_mask(mask, 0.9, "erk", 4))


def test_mask_overlap_with_itself_is_one_and_with_its_permutation_is_chance():
    model = create_model("vgg19", 10, 0.125, 0)
    mask = magnitude_prune(model.state_dict(), Mask.ones(model), 0.8)
    same = mask_overlap(mask, mask)[-1]
    assert same.iou == 1.0 and same.shared == mask.alive()
    shuffled = mask_overlap(mask, permute_mask(mask, 5))[-1]
    assert shuffled.chance_iou == pytest.approx(shuffled.iou, rel=0.05)
    assert shuffled.iou < 0.2


def test_finder_settings_change_the_run_id_and_plain_imp_keeps_its_id():
    assert ImpSpec().run_id() == "fd6d6e3f0800e052"  # the id before finders existed
    assert ImpSpec(finder="imp").run_id() == ImpSpec().run_id()
    ids = {ImpSpec(finder="snip", sparsities=(0.5, 0.9)).run_id(), ImpSpec(finder="snip", sparsities=(0.5, 0.8)).run_id(),
           ImpSpec(finder="snip", sparsities=(0.5, 0.9), score_at="init").run_id(),
           ImpSpec(finder="synflow", sparsities=(0.5, 0.9)).run_id(), ImpSpec(finder="synflow", sparsities=(0.5, 0.9), rounds=20).run_id(),
           ImpSpec(mask_epochs=5).run_id(), ImpSpec(mask_epochs=6).run_id(), ImpSpec().run_id()}
    assert len(ids) == 8
    snip = ImpSpec(finder="snip", sparsities=(0.5, 0.9), levels=30)
    assert snip.levels == 2 and snip.dense_spec().run_id() == ImpSpec().run_id()
    by_levels = ImpSpec(finder="snip", levels=5)  # its sparsities follow from levels and rate, then are its own
    assert by_levels.sparsities == pytest.approx(tuple(1 - 0.8 ** level for level in range(1, 6)))
    assert by_levels.model_copy(update={"levels": 2}).run_id() == by_levels.run_id()  # a task's first levels: one run


@pytest.mark.parametrize("args, words", [
    (["--finder", "magic"], "is not one of"),
    (["--sparsities", "0.5"], "are for the finders other than imp"),
    (["--finder", "snip", "--mask-epochs", "3"], "(--mask-epochs) is a setting of the imp finder"),
    (["--finder", "oneshot", "--score-at", "init"], "(--score-at) applies to snip, grasp, synflow"),
    (["--finder", "snip", "--sparsities", "0.9,0.5"], "must increase"),
    (["--finder", "snip", "--sparsities", "1.5"], "above 0 and below 1"),
    (["--finder", "grasp", "--layerwise", "--sparsities", "0.5"], "(--layerwise) applies to the magnitude finders"),
    (["--mask-epochs", "1", "--warmup", "2ep", "--epochs", "4"], "longer than the 1-epoch trainings that pick the masks"),
])
def test_bad_finder_settings_are_one_line_errors(tmp_path, capsys, args, words):
    assert main(["find", "--dataset", "digits", "--store", str(tmp_path), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert words in err and "\n" not in err and "Traceback" not in err


TINY = dict(model="vgg19", width=0.0625, dataset="digitsa", epochs=2, batch_size=64, lr=0.05, augment="none")


@pytest.fixture(scope="module")
def finder_store(tmp_path_factory) -> Path:
    """One store: IMP (2 levels at rate 0.5), IMP with 1-epoch masks, oneshot and SNIP at 50/75%."""
    store = tmp_path_factory.mktemp("finders")
    find_tickets(ImpSpec(**TINY, levels=2, rate=0.5), store)
    find_tickets(ImpSpec(**TINY, levels=2, rate=0.5, mask_epochs=1), store)
    for finder in ("oneshot", "snip"):
        find_tickets(ImpSpec(**TINY, rate=0.5, finder=finder, sparsities=(0.5, 0.75)), store)  # the same dense run
    return store


def run_of(store: Path, **settings: object) -> RunDir:
    spec = ImpSpec(**TINY, **({"levels": 2, "rate": 0.5} | settings))
    return RunDir.for_spec(store, spec)


def test_oneshot_equals_global_unstructured_on_the_dense_trained_weights(finder_store):
    oneshot = run_of(finder_store, finder="oneshot", sparsities=(0.5, 0.75))
    dense = run_of(finder_store)
    model = create_model("vgg19", 10, 0.0625, 0)
    for level, amount in ((1, 0.5), (2, 0.75)):
        model.load_state_dict(load_weights(dense.trained_file(0)))
        modules = [(m, "weight") for name, m in model.named_modules() if f"{name}.weight" in prunable_weights(model)]
        prune.global_unstructured(modules, pruning_method=prune.L1Unstructured, amount=amount)
        reference = {f"{name}.weight": m.weight_mask.bool() for name, m in model.named_modules() if hasattr(m, "weight_mask")}
        for module, _ in modules:
            prune.remove(module, "weight")
        assert load_ticket(oneshot.ticket_file(level)).mask.equal(Mask(reference))


def test_finders_share_the_dense_run_and_keep_the_rewind_point(finder_store):
    dense, snip = run_of(finder_store), run_of(finder_store, finder="snip", sparsities=(0.5, 0.75))
    assert load_ticket(snip.ticket_file(0)).sha256 == load_ticket(dense.ticket_file(0)).sha256
    assert snip.read_result(0).test_accuracy == dense.read_result(0).test_accuracy
    rewind = load_weights(dense.rewind_file)
    for level in (1, 2):
        ticket = load_ticket(snip.ticket_file(level))
        assert all(torch.equal(ticket.state[k], rewind[k]) for k in rewind)
        assert ticket.info.finder == "snip" and ticket.info.finder_settings["sparsities"] == [0.5, 0.75]
        assert snip.read_result(level).test_accuracy > 0.2  # trained, above chance (10 classes)
    assert [snip.read_result(level).fraction_pruned for level in (1, 2)] == pytest.approx([0.5, 0.75], abs=1e-5)


def test_a_resumed_level_trains_the_mask_found_before_it_was_interrupted(finder_store, tmp_path):
    """The mask is written before a level trains: a level resumed trains it, not a mask scored again."""
    spec = ImpSpec(**TINY, rate=0.5, finder="snip", sparsities=(0.5, 0.75))
    store = tmp_path / "store"
    (store / "runs").mkdir(parents=True)
    for run in (run_of(finder_store), run_of(finder_store, finder="snip", sparsities=(0.5, 0.75))):
        shutil.copytree(run.root, store / "runs" / run.root.name)
    run = RunDir.for_spec(store, spec)
    planted = permute_mask(load_ticket(run.ticket_file(2)).mask, 9)
    for name in ("result.json", "ticket.safetensors", "trained.safetensors"):
        (run.level_dir(2) / name).unlink()
    save_weights(run.level_dir(2) / "mask.safetensors", dict(planted), {"find_compute": None})
    results = find_tickets(spec, store)
    assert load_ticket(run.ticket_file(2)).mask.equal(planted) and results[2].find_compute is None
    assert not (run.level_dir(2) / "mask.safetensors").exists()  # gone once the level is finished


def test_compute_is_recorded_for_finding_and_for_training(finder_store):
    imp, short = run_of(finder_store), run_of(finder_store, mask_epochs=1)
    oneshot, snip = run_of(finder_store, finder="oneshot", sparsities=(0.5, 0.75)), run_of(finder_store, finder="snip", sparsities=(0.5, 0.75))
    level = {run.root: [run.read_result(i) for i in range(3)] for run in (imp, short, oneshot, snip)}
    dense = level[imp.root][0]
    train = Compute.of(dense.compute)
    assert train.epochs == 2 and train.backward == train.images > 0 and train.forward > train.images  # + test passes
    rewind_part = Compute.of(dense.find_compute)
    assert rewind_part.epochs == 1 and rewind_part.steps == train.steps // 2
    assert Compute.of(level[imp.root][1].find_compute) == train  # level 1: the dense training
    assert Compute.of(level[imp.root][2].find_compute) == train + Compute.of(level[imp.root][1].compute)
    assert Compute.of(level[oneshot.root][2].find_compute) == train
    short1, short2 = (Compute.of(level[short.root][i].find_compute) for i in (1, 2))
    assert short1.epochs == 1 + 1 and short2.epochs == 1 + 2  # the rewind point and 1 epoch per mask
    snip1 = Compute.of(level[snip.root][1].find_compute)
    assert snip1.epochs == 1 and snip1.forward == rewind_part.forward + 100 and snip1.backward == rewind_part.backward + 100
    ticket = load_ticket(snip.ticket_file(2))
    assert ticket.info.find_compute == level[snip.root][2].find_compute
    spec = TrainSpec(source=ticket.info.run_id, level=2, model="vgg19", dataset="digitsb", epochs=1, batch_size=64, lr=0.05,
                     augment="none")
    data = DeviceData(load_dataset("digitsb", None, None, 0, show_progress=False), "cpu", 64)
    result = train_ticket(spec, ticket, TrainingDir(finder_store / "t"), data)
    assert result.find_compute == ticket.info.find_compute and Compute.of(result.compute).epochs == 1


def test_compare_prints_overlap_and_draws_the_profile(finder_store, tmp_path, capsys):
    a = run_of(finder_store).ticket_file(2)
    b = run_of(finder_store, finder="snip", sparsities=(0.5, 0.75)).ticket_file(2)
    assert main(["compare", str(a), str(b), "--figure", str(tmp_path / "layers.png")]) == 0
    out = capsys.readouterr().out
    assert "mask overlap in total" in out and "features.0" in out and "IoU (chance)" in out
    drawn = json.loads((tmp_path / "layers.json").read_text())
    assert len(drawn["tickets"]) == 2 and len(drawn["layers"]) == 16
    assert main(["compare", str(a)]) == 2


def test_finder_run_waits_for_the_dense_level_in_the_task_graph(tmp_path):
    spec = parse_experiment('''
name = "t"
models = ["vgg19"]
sources = [{ dataset = "digitsa" }, { dataset = "digitsa", finder = "snip" }]
targets = ["digitsa", "digitsb"]
baselines = ["own"]
[scale]
width = 0.0625
epochs = 2
[pruning]
levels = 2
rate = 0.5
sparsities = [0.5, 0.75]
''')
    graph = expand(spec)
    snip = next(j for j in graph.jobs.values() if isinstance(j, ImpJob) and j.spec.finder == "snip")
    tasks = task_graph(graph, tmp_path)
    assert tasks.needs[f"{snip.id}@0"] == (f"{snip.dense_job}@0",)
    transfers = [j for j in graph.jobs.values() if getattr(j, "depends_on", ("", 0))[0] == snip.id]
    assert sorted(j.spec.level for j in transfers) == [1, 2]  # its level 0 is the IMP run's dense ticket


def test_planned_compute_splits_finding_from_training():
    costs = {c.finder: c for c in finder_costs(expand(load_specs(["subsets/finders"])[0]))}
    assert costs["IMP"].find_epochs == 5 * 25  # levels 0-4 trained to reach level 5
    assert costs["imp, masks from 5 ep"].find_epochs == 1 + 5 * 5
    assert costs["oneshot"].find_epochs == 25 and costs["snip"].find_epochs == 1
    assert costs["snip"].evaluate_epochs == 4 * 25 + 4 * 25  # own levels 1-4 and 4 transfers


def test_a_finders_spec_runs_and_reports_both_figures(tmp_path, capsys):
    spec = tmp_path / "tiny_finders.toml"
    spec.write_text('''
name = "tiny_finders"
models = ["vgg19"]
sources = [{ dataset = "digitsa" }, { dataset = "digitsa", finder = "synflow", rounds = 5 }, { dataset = "digitsa", finder = "random-layerwise" }]
targets = ["digitsa", "digitsb"]
baselines = ["random"]
[scale]
width = 0.0625
epochs = 1
batch_size = 64
lr = 0.05
augment = "none"
[pruning]
levels = 1
rate = 0.75
rewind = "5it"
sparsities = [0.75]
''')
    store, out = tmp_path / "store", tmp_path / "report"
    assert main(["run", str(spec), "--store", str(store)]) == 0
    assert main(["report", str(spec), "--store", str(store), "--out", str(out)]) == 0
    capsys.readouterr()
    figure = json.loads((out / "tiny_finders.json").read_text())
    labels = {s["label"].split(" (n=")[0] for p in figure["panels"] for s in p["series"]}
    assert {"own ticket: digitsa (sgd)", "own ticket: digitsa (sgd, synflow, 5 rounds)",
            "ticket from digitsa (sgd, random-layerwise)", "random ticket"} <= labels
    compute = json.loads((out / "tiny_finders-compute.json").read_text())
    points = [p for panel in compute["panels"] for p in panel["points"]]
    finders = {p["finder"] for p in points}
    assert finders == {"imp", "synflow, 5 rounds", "random-layerwise"}
    assert all(p["find_passes"] > 0 and 0 <= p["mean"] <= 1 for p in points)
    imp = next(p for p in points if p["finder"] == "imp" and p["kind"] == "own")
    synflow = next(p for p in points if p["finder"] == "synflow, 5 rounds" and p["kind"] == "own")
    assert imp["find_passes"] > synflow["find_passes"]  # IMP trains the dense network to find its ticket
    assert (out / "tiny_finders-compute.png").stat().st_size > 0 and (out / "tiny_finders-layers.png").stat().st_size > 0
    report = (out / "report.md").read_text()
    assert "Accuracy and the cost of finding tickets" in report and "Inside the tickets" in report


def test_report_tables_put_finders_and_imp_side_by_side_by_sparsity_not_level():
    from oneticket.experiments import Line
    from oneticket.report.page import panel_tables

    panel = ("vgg19", "cifar10", "sgd")
    imp = Line("e", panel, "own ticket: cifar10 (sgd)", "own", [0, 1, 2], [0.0, 0.5358, 0.7845], [0.6, 0.62, 0.66],
               [0.0] * 3, [1] * 3, source="cifar10 (sgd)", finder="imp")
    snip = Line("e", panel, "own ticket: cifar10 (sgd, snip)", "own", [0, 1], [0.0, 0.8], [0.6, 0.61], [0.0] * 2, [1] * 2,
                source="cifar10 (sgd, snip)", finder="snip")
    _, header, rows = panel_tables([imp, snip])[0]
    assert header[:2] == ["level", "pruned %"]
    assert rows == [["0", "0.00", "60.00", "60.00"], ["1", "53.58", "62.00", "-"], ["2", "78.45", "66.00", "-"],
                    ["1", "80.00", "-", "61.00"]]
