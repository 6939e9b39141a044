"""The training loop: masks held at exactly zero, schedules, checkpoints, divergence."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from oneticket.data import DeviceData, load_dataset
from oneticket.models import create_model
from oneticket.sparsity import Mask, magnitude_prune, prunable_weights
from oneticket.training import OPTIMIZERS, Speed, TrainSettings, make_optimizer, scale_milestones, train
from oneticket.training.device import resolve_device
from oneticket.errors import UserError


@pytest.fixture(scope="module")
def data() -> DeviceData:
    return DeviceData(load_dataset("digits", train_size=256, subset_seed=0), "cpu", batch_size=64)


def half_pruned(model) -> Mask:
    weights = {k: v.detach() for k, v in prunable_weights(model).items()}
    return magnitude_prune(weights, Mask.ones(model), 0.5)


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_pruned_weights_are_exactly_zero_after_an_epoch(data, optimizer):
    model = create_model("vgg19", 10, width=0.0625, seed=0)
    mask = half_pruned(model)
    start = {k: v.detach().clone() for k, v in model.named_parameters()}
    train(model, data, TrainSettings(optimizer, 1, (), seed=0), mask)
    params = dict(model.named_parameters())
    for name in mask:
        assert torch.all(params[name][~mask[name]] == 0.0), name
        assert not torch.equal(params[name][mask[name]], start[name][mask[name]])  # survivors trained


def test_without_masking_momentum_and_decay_would_revive_pruned_weights(data):
    """The check above can fail: one plain SGD step moves weights that are zero."""
    model = create_model("vgg19", 10, width=0.0625, seed=0)
    mask = half_pruned(model)
    params = dict(model.named_parameters())
    with torch.no_grad():
        for name in mask:
            params[name].mul_(mask[name])
    optimizer = make_optimizer("sgd", model.parameters())
    images, labels = next(data.train_batches(torch.Generator().manual_seed(0), torch.Generator().manual_seed(0)))
    torch.nn.functional.cross_entropy(model(images), labels).backward()
    optimizer.step()
    name = next(iter(mask))
    assert (params[name][~mask[name]] != 0).any()


def test_hyperparameters_are_the_seeds():
    assert OPTIMIZERS["sgd"] == {"lr": 0.1, "momentum": 0.9, "weight_decay": 1e-4}
    assert OPTIMIZERS["adam"] == {"lr": 3e-4, "betas": (0.9, 0.999), "weight_decay": 1e-4}
    model = create_model("vgg19", 10, width=0.0625)
    assert isinstance(make_optimizer("adam", model.parameters()), torch.optim.Adam)


def test_milestones_scale_with_the_number_of_epochs():
    assert scale_milestones((80, 120), 160, 160) == (80, 120)
    assert scale_milestones((50, 65, 80), 90, 90) == (50, 65, 80)
    assert scale_milestones((80, 120), 160, 15) == (8, 11)
    assert scale_milestones((50, 65, 80), 90, 9) == (5, 7, 8)
    assert scale_milestones((80, 120), 160, 2) == (1,)  # 1 and 1.5 -> 1 and 2; 2 is the end


def test_learning_rate_drops_at_milestones(data):
    model = create_model("vgg19", 10, width=0.0625, seed=0)
    result = train(model, data, TrainSettings("sgd", 4, (2, 3), seed=0), speed=Speed(eval_every=1))
    assert [round(r.lr, 6) for r in result.history] == [0.1, 0.1, 0.01, 0.001]
    assert [r.epoch for r in result.history] == [1, 2, 3, 4]
    assert all(0.0 <= r.test_accuracy <= 1.0 for r in result.history)


def test_checkpoint_resume_equals_uninterrupted(data, tmp_path: Path):
    settings = TrainSettings("sgd", 3, (2,), seed=4)
    full_model = create_model("vgg19", 10, width=0.0625, seed=1)
    mask = half_pruned(full_model)
    every = Speed(eval_every=1)  # the 1-epoch run below evaluates its last epoch; so must the full one
    full = train(full_model, data, settings, mask, speed=every)

    # Train 1 epoch with a checkpoint, then a fresh model resumes from it for the rest.
    checkpoint = tmp_path / "ckpt.pt"
    first = create_model("vgg19", 10, width=0.0625, seed=1)
    train(first, data, TrainSettings("sgd", 1, (2,), seed=4), mask, checkpoint, speed=every)
    resumed_model = create_model("vgg19", 10, width=0.0625, seed=99)  # state comes from the checkpoint
    resumed = train(resumed_model, data, settings, mask, checkpoint, speed=every)
    assert [r.test_accuracy for r in resumed.history] == [r.test_accuracy for r in full.history]
    assert [r.train_loss for r in resumed.history] == [r.train_loss for r in full.history]
    assert all(torch.equal(a, b) for a, b in zip(full_model.state_dict().values(), resumed_model.state_dict().values()))


def test_nan_loss_stops_with_a_message(data):
    model = create_model("vgg19", 10, width=0.0625, seed=0)
    with torch.no_grad():
        model.classifier.weight.fill_(float("nan"))
    result = train(model, data, TrainSettings("sgd", 3, (), seed=0))
    assert result.diverged is not None and "nan" in result.diverged and "epoch 1" in result.diverged
    assert result.test_accuracy is None and result.history == []


def test_cuda_without_gpu_is_a_user_error():
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(UserError, match="no CUDA"):
        resolve_device("cuda")
    assert resolve_device("auto").type == "cpu"
    with pytest.raises(UserError, match="unknown device"):
        resolve_device("tpu")
