"""The training recipe as hashed settings: learning rate, its scaling rule, warm-up, augmentation.

The rate of every step is checked where it is used (inside the optimizer's step), and the ids of
specs that leave the new settings at their defaults are pinned to the values they had before the
settings existed.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from oneticket.data import DeviceData, load_dataset
from oneticket.data.augment import CropFlip
from oneticket.experiments import expand_all, parse_experiment
from oneticket.experiments.graph import ImpJob, TrainJob
from oneticket.models import create_model
from oneticket.tickets import ImpSpec, TrainSpec
from oneticket.training import LrSchedule, Speed, TrainSettings, scaled_lr, train

from conftest import ROOT


@pytest.fixture(scope="module")
def data() -> DeviceData:
    return DeviceData(load_dataset("digits", train_size=160, subset_seed=0), "cpu", batch_size=32)  # 5 steps an epoch


def rates_used(monkeypatch, optimizer_class: type[torch.optim.Optimizer]) -> list[float]:
    """Record the learning rate of every optimizer step, read inside the step itself."""
    used: list[float] = []
    step = optimizer_class.step

    def recording_step(self, *args, **kwargs):
        used.append(self.param_groups[0]["lr"])
        return step(self, *args, **kwargs)

    monkeypatch.setattr(optimizer_class, "step", recording_step)
    return used


def test_the_rate_of_every_step_with_warmup_and_milestones(data, monkeypatch):
    used = rates_used(monkeypatch, torch.optim.SGD)
    model = create_model("vgg19", 10, width=0.0625, seed=0)
    settings = TrainSettings("sgd", 3, (2,), seed=0, lr=0.04, warmup_steps=4)
    result = train(model, data, settings)
    expected = [0.04 * 1 / 4, 0.04 * 2 / 4, 0.04 * 3 / 4, 0.04, 0.04,  # epoch 1: warm-up over 4 steps
                0.04, 0.04, 0.04, 0.04, 0.04,  # epoch 2
                0.004, 0.004, 0.004, 0.004, 0.004]  # epoch 3: after the milestone
    assert used == pytest.approx(expected, rel=1e-12)
    assert [r.lr for r in result.history] == pytest.approx([0.01, 0.04, 0.004])


def test_adam_takes_the_given_rate_and_keeps_its_other_settings(data, monkeypatch):
    used = rates_used(monkeypatch, torch.optim.Adam)
    model = create_model("vgg19", 10, width=0.0625, seed=0)
    train(model, data, TrainSettings("adam", 1, (), seed=0, lr=2e-3))
    assert used == [2e-3] * 5


def test_without_new_settings_the_rates_are_those_of_torchs_multisteplr():
    """Old runs stay bit-identical: the same floating-point rates, epoch by epoch."""
    model = torch.nn.Linear(2, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, [3, 5], gamma=0.1)
    torchs = []
    for _ in range(7):
        torchs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    ours = LrSchedule(0.1, (3, 5), steps_per_epoch=4)
    assert [ours.at(4 * epoch) for epoch in range(7)] == torchs  # exact, not approximately
    assert [ours.at(4 * epoch + 3) for epoch in range(7)] == torchs


def test_linear_scaling_rule():
    assert scaled_lr(0.1, "linear", 32) == pytest.approx(0.00625)
    assert scaled_lr(0.1, "linear", 512) == 0.1
    assert scaled_lr(3e-4, "none", 32) == 3e-4
    assert ImpSpec(batch_size=128, lr_scaling="linear").base_lr == pytest.approx(0.025)
    assert ImpSpec(optimizer="adam", batch_size=128, lr_scaling="linear").base_lr == pytest.approx(7.5e-5)
    assert ImpSpec(batch_size=128, lr=0.4, lr_scaling="linear").base_lr == pytest.approx(0.1)


def test_warmup_resumes_mid_ramp_identically(data, tmp_path: Path):
    settings = TrainSettings("sgd", 3, (2,), seed=3, lr=0.05, warmup_steps=8)  # the ramp spans epochs 1 and 2
    every = Speed(eval_every=1)
    full_model = create_model("vgg19", 10, width=0.0625, seed=1)
    full = train(full_model, data, settings, speed=every)
    checkpoint = tmp_path / "ckpt.pt"
    train(create_model("vgg19", 10, width=0.0625, seed=1), data,
          TrainSettings("sgd", 1, (2,), seed=3, lr=0.05, warmup_steps=8), checkpoint_path=checkpoint, speed=every)
    resumed_model = create_model("vgg19", 10, width=0.0625, seed=7)
    resumed = train(resumed_model, data, settings, checkpoint_path=checkpoint, speed=every)
    assert [r.train_loss for r in resumed.history] == [r.train_loss for r in full.history]
    assert all(torch.equal(a, b) for a, b in zip(full_model.state_dict().values(), resumed_model.state_dict().values()))


# Ids computed by oneticket before lr, lr_scaling, warmup and augment existed (commit 4811dc3).
PINNED_RUN_IDS = {
    "fd6d6e3f0800e052": {},
    "a417aa8cf1e9a30a": dict(model="resnet50", dataset="cifar100", optimizer="adam", epochs=9, width=0.25, seed=3),
    "58cb3bf1e4bc217c": dict(dataset="digits", width=0.0625, epochs=4, levels=2, batch_size=64, seed=0),
    "da71c61aeea7bbae": dict(dataset="cifar10a", width=0.125, train_size=5000, epochs=12, precision="bf16"),
}
PINNED_JOB_IDS = {
    "4ad63362215f7809": dict(source="0123456789abcdef", level=2, model="vgg19", dataset="cifar100"),
    "06ba76ca7627fc65": dict(source="0123456789abcdef", level=4, model="resnet50", dataset="svhn", optimizer="adam",
                             epochs=9, batch_size=128, train_size=1000, seed=2, mask="random", weights="random"),
}


@pytest.mark.parametrize("run_id", PINNED_RUN_IDS)
def test_old_run_ids_are_unchanged(run_id):
    fields = PINNED_RUN_IDS[run_id]
    assert ImpSpec(**fields).run_id() == run_id
    # Spelling out the defaults, or a rule that changes nothing at batch 512, is the same run.
    same = ImpSpec(**fields, lr_scaling="none", warmup="0it", augment="crop-flip")
    assert same.run_id() == run_id
    if fields.get("batch_size", 512) == 512:
        assert ImpSpec(**fields, lr_scaling="linear").run_id() == run_id


@pytest.mark.parametrize("job_id", PINNED_JOB_IDS)
def test_old_training_ids_are_unchanged(job_id):
    assert TrainSpec(**PINNED_JOB_IDS[job_id]).job_id() == job_id


def test_the_shipped_paper_specs_keep_their_job_ids():
    """The paper presets set none of the new settings: their jobs are the jobs of before."""
    paper = ROOT / "experiments" / "paper"
    graph = expand_all(parse_experiment(p.read_text(), p) for p in sorted(paper.glob("*.toml")))
    assert {"imp-fd6d6e3f0800e052", "imp-3385c79ea8a2ae88", "imp-33ec6c9199d690d6", "train-01ee25f92e0f4cf5"} <= set(graph.jobs)


def test_each_recipe_setting_is_its_own_run():
    base = ImpSpec(dataset="digits", batch_size=32)
    ids = {base.run_id(), base.model_copy(update={"lr": 0.05}).run_id(),
           ImpSpec(dataset="digits", batch_size=32, lr_scaling="linear").run_id(),
           ImpSpec(dataset="digits", batch_size=32, warmup="1ep").run_id(),
           ImpSpec(dataset="digits", batch_size=32, augment="crop").run_id(),
           ImpSpec(dataset="digits", batch_size=32, augment="none").run_id()}
    assert len(ids) == 6
    # The rate is hashed as what it computes: the seed's rate scaled to batch 32 is lr 0.1 * 32 / 512.
    scaled = ImpSpec(dataset="digits", batch_size=32, lr_scaling="linear")
    assert scaled.run_id() == ImpSpec(dataset="digits", batch_size=32, lr=0.1 * 32 / 512).run_id()


def test_experiment_spec_passes_the_recipe_per_optimizer():
    spec = parse_experiment("""
name = "x"
models = ["vgg19"]
sources = [{ dataset = "digitsa", optimizer = "sgd" }, { dataset = "digitsa", optimizer = "adam" }]
targets = ["digitsb"]
train_optimizers = ["sgd", "adam"]
[scale]
batch_size = 32
lr = { sgd = 0.025, adam = 2e-3 }
warmup = "10it"
augment = "none"
""")
    graph = expand_all([spec])
    for job in graph.jobs.values():
        s = job.spec
        assert s.lr == {"sgd": 0.025, "adam": 2e-3}[s.optimizer]
        assert (s.warmup, s.augment) == ("10it", "none")
    assert any(isinstance(j, ImpJob) for j in graph.jobs.values()) and any(isinstance(j, TrainJob) for j in graph.jobs.values())


def test_one_rate_for_two_optimizers_is_refused():
    with pytest.raises(Exception, match="one per optimizer"):
        parse_experiment("""
name = "x"
models = ["vgg19"]
sources = [{ dataset = "digitsa", optimizer = "sgd" }]
targets = ["digitsb"]
train_optimizers = ["sgd", "adam"]
[scale]
lr = 0.05
""")


def test_bad_warmup_and_too_long_warmup_are_one_line_errors(data, capsys):
    from oneticket.cli import main
    from oneticket.errors import UserError

    with pytest.raises(ValueError, match="warm-up '3x' must look like"):
        ImpSpec(warmup="3x")
    with pytest.raises(ValueError, match=r"warm-up 3ep is longer than training \(2 epochs\)"):
        ImpSpec(dataset="digits", epochs=2, warmup="3ep")  # in epochs: seen before any data is read
    with pytest.raises(UserError, match="longer than training"):  # in iterations: once the steps per epoch are known
        ImpSpec(dataset="digits", epochs=2, warmup="1000it").train_settings(0, data.steps_per_epoch)
    assert main(["find", "--dataset", "digits", "--epochs", "2", "--warmup", "3ep"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "warm-up 3ep is longer than training" in err


@pytest.mark.parametrize("policy", ["crop-flip", "crop", "none"])
def test_augmentation_policies(policy):
    draws = CropFlip.draw(500, torch.Generator().manual_seed(0)).only(policy)
    if policy == "crop-flip":
        assert 0 < int(draws.flip.sum()) < 500 and len(set(draws.dy.tolist())) == 9
    elif policy == "crop":
        assert not draws.flip.any() and len(set(draws.dy.tolist())) == 9
        assert torch.equal(draws.dx, CropFlip.draw(500, torch.Generator().manual_seed(0)).dx)  # the same crops
    else:
        assert not draws.flip.any() and set(draws.dy.tolist()) == {4} and set(draws.dx.tolist()) == {4}


def test_no_augmentation_serves_the_images_as_they_are(data):
    images, labels = next(data.train_batches(torch.Generator().manual_seed(0), torch.Generator().manual_seed(0), "none"))
    permutation = torch.randperm(data.train_size, generator=torch.Generator().manual_seed(0))[:32]
    unpadded = data.train_padded[permutation][:, :, 4:-4, 4:-4]
    assert torch.equal(images, data.normalize(unpadded))
    assert torch.equal(labels, data.train_labels[permutation])


def test_an_experiment_whose_warmup_outlasts_training_is_a_one_line_error(tmp_path: Path, capsys):
    from oneticket.cli import main

    spec = tmp_path / "x.toml"
    spec.write_text('name = "x"\nmodels = ["vgg19"]\nsources = [{ dataset = "digitsa" }]\ntargets = ["digitsb"]\n'
                    '[scale]\nepochs = 2\nwarmup = "3ep"\n')
    assert main(["plan", str(spec), "--no-measure", "--store", str(tmp_path / "store")]) == 2
    err = capsys.readouterr().err
    assert err == "error: experiment x: warm-up 3ep is longer than training (2 epochs); choose a shorter warm-up\n"


def test_a_model_entry_adds_to_the_scales_rates_optimizer_by_optimizer():
    spec = parse_experiment("""
name = "x"
models = [{ name = "vgg19", lr = { sgd = 0.02 } }]
sources = [{ dataset = "digitsa", optimizer = "sgd" }, { dataset = "digitsa", optimizer = "adam" }]
targets = ["digitsb"]
train_optimizers = ["sgd", "adam"]
[scale]
lr = { sgd = 0.025, adam = 2e-3 }
""")
    assert {(j.spec.optimizer, j.spec.lr) for j in expand_all([spec]).jobs.values()} == {("sgd", 0.02), ("adam", 2e-3)}
