"""Execution options and precision: what they may change, and what they must not."""

from __future__ import annotations

import ctypes
from pathlib import Path

import pytest
import torch

from oneticket.cli import main
from oneticket.data import DeviceData, load_dataset
from oneticket.errors import UserError
from oneticket.models import create_model
from oneticket.sparsity import Mask, magnitude_prune, prunable_weights
from oneticket.tickets import ImpSpec
from oneticket.training import Speed, TrainHooks, TrainSettings, evaluate, train
from oneticket.training.checkpoint import load_checkpoint
from oneticket.training.reference_speeds import REFERENCE_EPOCH_SECONDS, reference_epoch_seconds
from oneticket.training.speed import (
    GPU_CHECKPOINT_SECONDS,
    checkpoint_seconds,
    eval_interval,
    evaluated_epochs,
    retain_freed_memory,
)

TINY_WIDTH = 0.0625


@pytest.fixture(scope="module")
def data() -> DeviceData:
    return DeviceData(load_dataset("digits", train_size=256, subset_seed=0), "cpu", batch_size=64)


def pruned(model: torch.nn.Module) -> Mask:
    weights = {k: v.detach() for k, v in prunable_weights(model).items()}
    return magnitude_prune(weights, Mask.ones(model), 0.5)


def run(data: DeviceData, epochs: int = 2, precision: str = "fp32", speed: Speed | None = None, **kwargs):
    model = create_model("vgg19", 10, TINY_WIDTH, seed=0)
    mask = pruned(model)
    result = train(model, data, TrainSettings("sgd", epochs, (), 0, precision), mask, speed=speed, **kwargs)
    return model, mask, result


def test_evaluation_interval_keeps_test_images_under_a_tenth_of_trained_images():
    assert eval_interval(Speed(), 50_000, 10_000) == 2  # the paper's CIFAR-10
    assert eval_interval(Speed(), 25_000, 10_000) == 4  # CIFAR-10a
    assert eval_interval(Speed(), 5_000, 10_000) == 20  # CPU scale on the full test set
    assert eval_interval(Speed(), 100_000, 1_000) == 1
    assert eval_interval(Speed(eval_every=3), 5_000, 10_000) == 3
    assert evaluated_epochs(7, 3) == {3, 6, 7}
    assert evaluated_epochs(6, 3) == {3, 6}
    assert evaluated_epochs(2, 20) == {2}  # the last epoch always
    with pytest.raises(UserError, match="eval-every"):
        Speed(eval_every=0)


def test_unevaluated_epochs_record_none_and_the_last_is_always_evaluated(data):
    _, _, auto = run(data, epochs=3)  # 355 test images on 256 trained: only the last epoch
    assert [r.test_accuracy is None for r in auto.history] == [True, True, False]
    assert auto.test_accuracy == auto.history[-1].test_accuracy
    _, _, every = run(data, epochs=3, speed=Speed(eval_every=1))
    assert all(r.test_accuracy is not None for r in every.history)
    # Evaluating changes nothing that is trained.
    assert [r.train_loss for r in every.history] == [r.train_loss for r in auto.history]
    assert every.test_accuracy == auto.test_accuracy


def test_channels_last_keeps_masks_and_returns_the_model_in_the_default_format(data):
    snapshots = []
    hooks = TrainHooks(snapshot_step=2, on_snapshot=lambda m: snapshots.append(all(t.is_contiguous() for t in m.state_dict().values())))
    model, mask, result = run(data, speed=Speed(channels_last=True), hooks=hooks)
    assert snapshots == [True]  # the hook sees plain tensors (safetensors needs them)
    assert all(t.is_contiguous() for t in model.state_dict().values())
    params = dict(model.named_parameters())
    for name in mask:
        assert torch.all(params[name][~mask[name]] == 0.0), name
    assert result.test_accuracy is not None and 0.0 <= result.test_accuracy <= 1.0
    # The same command twice: the same bits.
    again, _, second = run(data, speed=Speed(channels_last=True))
    assert [r.train_loss for r in second.history] == [r.train_loss for r in result.history]
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), again.state_dict().values()))


def first_layer_gradient(images, labels, fmt: torch.memory_format, precision: str = "fp32") -> torch.Tensor:
    model = create_model("vgg19", 10, TINY_WIDTH, seed=0).to(memory_format=fmt)
    with torch.autocast("cpu", torch.bfloat16, enabled=precision == "bf16"):
        loss = torch.nn.functional.cross_entropy(model(images.contiguous(memory_format=fmt)), labels)
    loss.backward()
    return model.features[0].weight.grad


def test_channels_last_changes_gradients_far_less_than_bf16(data):
    """Channels-last is not bit-identical to NCHW (CPU BatchNorm sums in another order), but its
    difference is a small fraction of what bf16, whose accuracy is checked separately, changes."""
    images, labels = next(data.train_batches(torch.Generator().manual_seed(0), torch.Generator().manual_seed(1)))
    nchw = first_layer_gradient(images, labels, torch.contiguous_format)
    nhwc = first_layer_gradient(images, labels, torch.channels_last)
    bf16 = first_layer_gradient(images, labels, torch.contiguous_format, "bf16")
    assert (nhwc - nchw).abs().max() < 0.2 * (bf16 - nchw).abs().max()
    assert (nhwc - nchw).abs().max() < 0.05 * nchw.abs().max()


def test_bf16_trains_with_masks_differs_from_fp32_and_is_deterministic(data):
    fp32, _, full = run(data, epochs=1)
    model, mask, half = run(data, epochs=1, precision="bf16")
    again, _, half_again = run(data, epochs=1, precision="bf16")
    params = dict(model.named_parameters())
    assert all(torch.all(params[name][~mask[name]] == 0.0) for name in mask)
    assert params["features.0.weight"].dtype == torch.float32  # autocast: fp32 master weights
    assert half.history[0].train_loss != full.history[0].train_loss
    assert half.history[0].train_loss == pytest.approx(full.history[0].train_loss, rel=0.05)
    assert [(r.train_loss, r.test_accuracy) for r in half_again.history] == [(r.train_loss, r.test_accuracy) for r in half.history]
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), again.state_dict().values()))
    assert evaluate(model, data, "bf16") == pytest.approx(evaluate(model, data), abs=0.05)


def test_checkpoints_every_epoch_on_cpu_and_at_most_every_interval_when_asked(data, tmp_path: Path):
    assert checkpoint_seconds(Speed(), torch.device("cpu")) == 0.0  # resume tests rely on this
    assert checkpoint_seconds(Speed(), torch.device("cuda")) == GPU_CHECKPOINT_SECONDS
    for speed, written in ((Speed(), [1, 2]), (Speed(checkpoint_seconds=3600), [])):
        path = tmp_path / f"{speed.checkpoint_seconds}.pt"
        seen = []
        hooks = TrainHooks(on_epoch=lambda r: seen.append(load_checkpoint(path).epoch) if path.exists() else None)
        run(data, epochs=2, speed=speed, checkpoint_path=path, hooks=hooks)
        assert seen == written


def test_unknown_precision_is_a_user_error(data):
    with pytest.raises(UserError, match="unknown precision 'fp16'"):
        run(data, epochs=1, precision="fp16")


def test_precision_is_hashed_only_when_not_fp32():
    fp32 = ImpSpec(dataset="digits")
    assert "precision" not in fp32.hashed()
    assert fp32.run_id() == ImpSpec(dataset="digits", precision="fp32").run_id()
    bf16 = ImpSpec(dataset="digits", precision="bf16")
    assert bf16.hashed()["precision"] == "bf16" and bf16.run_id() != fp32.run_id()


def test_cli_takes_precision_and_speed_flags(tmp_path: Path, capsys):
    args = ["find", "--model", "vgg19", "--width", str(TINY_WIDTH), "--dataset", "digits", "--train-size", "128",
            "--epochs", "1", "--levels", "0", "--batch-size", "64", "--rewind", "1it", "--device", "cpu", "--store", str(tmp_path)]
    assert main(args + ["--precision", "bf16", "--no-channels-last", "--eval-every", "1"]) == 0
    run_dirs = list((tmp_path / "runs").iterdir())
    assert len(run_dirs) == 1 and run_dirs[0].name == ImpSpec(
        model="vgg19", width=TINY_WIDTH, dataset="digits", train_size=128, epochs=1, levels=0, batch_size=64,
        rewind="1it", precision="bf16").run_id()
    capsys.readouterr()
    assert main(args + ["--precision", "fp16"]) != 0
    err = capsys.readouterr().err
    assert "--precision" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_freed_memory_is_retained_where_glibc_is():
    try:
        ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        pytest.skip("no glibc here")
    assert retain_freed_memory() is True


def test_reference_epoch_seconds_are_positive_and_looked_up_by_name():
    assert REFERENCE_EPOCH_SECONDS
    for device, table in REFERENCE_EPOCH_SECONDS.items():
        for (model, width, batch, precision), seconds in table.items():
            assert seconds > 0
            assert reference_epoch_seconds(device, model, width, batch, precision) == seconds
            assert reference_epoch_seconds(device.lower(), model, width, batch, precision) == seconds
    assert reference_epoch_seconds("H100", "vgg19", 1.0, 512, "fp32") is not None
    assert reference_epoch_seconds("NVIDIA H100 80GB HBM3", "vgg19", 1.0, 512, "bf16") is not None
    assert reference_epoch_seconds("H100", "vgg19", 0.5, 512, "fp32") is None
    assert reference_epoch_seconds("TPU", "vgg19", 1.0, 512, "fp32") is None


cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@cuda
@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_cuda_training_keeps_masks_and_evaluates(precision):
    data = DeviceData(load_dataset("digits", train_size=256, subset_seed=0), "cuda", batch_size=64)
    model = create_model("vgg19", 10, TINY_WIDTH, seed=0).cuda()
    mask = pruned(model).to("cuda")
    result = train(model, data, TrainSettings("sgd", 2, (), 0, precision), mask, speed=Speed(eval_every=1))
    params = dict(model.named_parameters())
    assert all(torch.all(params[name][~mask[name]] == 0.0) for name in mask)
    assert all(r.test_accuracy is not None and 0.0 <= r.test_accuracy <= 1.0 for r in result.history)
    assert result.diverged is None and torch.backends.cudnn.benchmark


@cuda
def test_cuda_run_resumes_from_its_checkpoint(tmp_path: Path):
    data = DeviceData(load_dataset("digits", train_size=256, subset_seed=0), "cuda", batch_size=64)
    model = create_model("vgg19", 10, TINY_WIDTH, seed=0).cuda()
    mask = pruned(model).to("cuda")
    every_epoch = Speed(checkpoint_seconds=0)
    train(model, data, TrainSettings("sgd", 2, (), 0, "bf16"), mask, tmp_path / "ckpt.pt", speed=every_epoch)
    assert load_checkpoint(tmp_path / "ckpt.pt").epoch == 2
    resumed = train(create_model("vgg19", 10, TINY_WIDTH, seed=5).cuda(), data, TrainSettings("sgd", 3, (), 0, "bf16"),
                    mask, tmp_path / "ckpt.pt", speed=every_epoch)
    assert [r.epoch for r in resumed.history] == [1, 2, 3] and resumed.test_accuracy is not None


@cuda
def test_cuda_compiled_training_matches_eager_closely():
    data = DeviceData(load_dataset("digits", train_size=256, subset_seed=0), "cuda", batch_size=64)
    losses = []
    for compiled in (False, True):
        model = create_model("vgg19", 10, TINY_WIDTH, seed=0).cuda()
        result = train(model, data, TrainSettings("sgd", 1, (), 0), pruned(model).to("cuda"), speed=Speed(compile=compiled))
        losses.append(result.history[0].train_loss)
    assert losses[1] == pytest.approx(losses[0], rel=1e-2)
