"""Readers on tiny files written here and on the real subsets in ../shared/datasets; splits."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import torch

from conftest import random_images, shared_data_or_skip, write_cifar_batch, write_idx, write_tiny_cifar10
from oneticket.data import dataset_info, load_dataset
from oneticket.data.splits import half_indices, stratified_subset
from oneticket.errors import DataNotFoundError, UserError


def test_cifar10_reader_keeps_pixel_layout_and_labels(tmp_path: Path):
    written = write_tiny_cifar10(tmp_path)
    ds = load_dataset("cifar10", tmp_path)
    assert ds.train_images.shape == (30, 3, 32, 32) and ds.train_images.dtype == torch.uint8
    assert ds.test_images.shape == (5, 3, 32, 32)
    # CIFAR rows are 1024 red, 1024 green, 1024 blue values, each row-major 32x32.
    assert torch.equal(ds.train_images, torch.from_numpy(written["images"][:30]))
    row = written["images"][7].reshape(-1)
    assert ds.train_images[7, 1, 2, 5].item() == row[1024 + 2 * 32 + 5]
    assert ds.train_labels.tolist() == written["labels"][:30].tolist()
    assert ds.num_classes == 10


def test_cifar100_reader_uses_fine_labels(tmp_path: Path):
    folder = tmp_path / "cifar100" / "cifar-100-python"
    images = random_images(8, seed=2)
    for name, part in (("train", slice(0, 6)), ("test", slice(6, 8))):
        path = folder / name
        fine = [99 - i for i in range(len(images))][part]
        batch = {b"data": images[part].reshape(-1, 3072), b"fine_labels": fine, b"coarse_labels": [0] * len(fine)}
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(pickle.dumps(batch, protocol=2))
    ds = load_dataset("cifar100", tmp_path)
    assert ds.train_labels.tolist() == [99, 98, 97, 96, 95, 94]
    assert ds.test_labels.tolist() == [93, 92]
    assert torch.equal(ds.test_images, torch.from_numpy(images[6:]))
    assert ds.num_classes == 100


def test_svhn_reader_transposes_and_maps_label_10_to_0(tmp_path: Path):
    folder = tmp_path / "svhn"
    folder.mkdir()
    rng = np.random.default_rng(3)
    for name, n in (("train", 5), ("test", 3)):
        x = rng.integers(0, 256, size=(32, 32, 3, n), dtype=np.uint8)
        y = np.array([[10], [1], [2], [10], [9]][:n], dtype=np.uint8)
        scipy.io.savemat(folder / f"{name}_32x32.mat", {"X": x, "y": y})
        if name == "train":
            train_x = x
    ds = load_dataset("svhn", tmp_path)
    assert ds.train_labels.tolist() == [0, 1, 2, 0, 9]
    assert ds.test_labels.tolist() == [0, 1, 2]
    assert ds.train_images.shape == (5, 3, 32, 32)
    # X[h, w, c, n] -> image n, channel c, row h, column w
    assert ds.train_images[4, 2, 7, 30].item() == train_x[7, 30, 2, 4]


def test_fashionmnist_reader_pads_to_32_and_repeats_channels(tmp_path: Path):
    folder = tmp_path / "fashionmnist"
    rng = np.random.default_rng(4)
    raw = {}
    for prefix, n in (("train", 4), ("t10k", 2)):
        raw[prefix] = rng.integers(1, 256, size=(n, 28, 28), dtype=np.uint8)
        write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", raw[prefix], 2051)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", np.arange(n) % 10, 2049)
    ds = load_dataset("fashionmnist", tmp_path)
    images = ds.train_images
    assert images.shape == (4, 3, 32, 32)
    assert torch.equal(images[:, 0], images[:, 1]) and torch.equal(images[:, 0], images[:, 2])
    assert torch.equal(images[:, 0, 2:30, 2:30], torch.from_numpy(raw["train"]))
    border = images[:, :, :2].sum() + images[:, :, 30:].sum() + images[:, :, :, :2].sum() + images[:, :, :, 30:].sum()
    assert border.item() == 0
    assert ds.test_labels.tolist() == [0, 1]


def test_fashionmnist_bad_magic_is_a_clear_error(tmp_path: Path):
    folder = tmp_path / "fashionmnist"
    for prefix in ("train", "t10k"):
        write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", np.zeros((2, 28, 28)), 2049)  # wrong magic
        write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", np.zeros(2), 2049)
    with pytest.raises(UserError, match="magic"):
        load_dataset("fashionmnist", tmp_path)


def test_digits_is_offline_fixed_split_upsampled_and_normalized_as_registered():
    ds = load_dataset("digits")
    assert ds.train_images.shape == (1442, 3, 32, 32) and ds.test_images.shape == (355, 3, 32, 32)
    assert ds.train_images.dtype == torch.uint8 and int(ds.train_images.max()) == 255
    img = ds.train_images[0, 0]
    assert torch.equal(img, img[::4, ::4].repeat_interleave(4, 0).repeat_interleave(4, 1))  # 4x4 blocks
    counts = torch.bincount(ds.test_labels, minlength=10)
    assert counts.min() >= 34 and counts.max() <= 37  # every 5th image of each class
    x = ds.train_images.float() / 255
    assert x.mean().item() == pytest.approx(ds.mean[0], abs=1e-3)
    assert x.std().item() == pytest.approx(ds.std[0], abs=1e-3)
    assert torch.equal(load_dataset("digits").train_images, ds.train_images)


def test_cifar_reader_refuses_pickled_code(tmp_path: Path):
    folder = tmp_path / "cifar10" / "cifar-10-batches-py"
    write_tiny_cifar10(tmp_path)
    marker = tmp_path / "owned"

    class Exploit:
        def __reduce__(self):
            return (Path.touch, (marker,))

    (folder / "data_batch_3").write_bytes(pickle.dumps({b"data": Exploit(), b"labels": []}, protocol=2))
    with pytest.raises(UserError, match="data_batch_3"):
        load_dataset("cifar10", tmp_path)
    assert not marker.exists()


def test_missing_files_offline_name_the_expected_files_and_folder(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("ONETICKET_OFFLINE", "1")
    with pytest.raises(DataNotFoundError) as info:
        load_dataset("svhn", tmp_path)
    message = str(info.value)
    assert "train_32x32.mat" in message and str(tmp_path / "svhn") in message and "--data-dir" in message
    assert "\n" not in message


def test_unknown_dataset_lists_choices():
    with pytest.raises(UserError, match="choose one of: cifar10"):
        dataset_info("imagenet")


# --- the real subsets in ../shared/datasets -------------------------------------------------


def test_real_cifar10_subset():
    data_dir = shared_data_or_skip("cifar10", "cifar-10-batches-py")
    ds = load_dataset("cifar10", data_dir)
    assert ds.train_images.shape == (5438, 3, 32, 32) and ds.test_images.shape == (1017, 3, 32, 32)
    assert set(ds.train_labels.tolist()) == set(range(10))
    mean = (ds.train_images.float() / 255).mean((0, 2, 3))
    assert torch.allclose(mean, torch.tensor(ds.mean), atol=0.02)  # real images, CIFAR-10 statistics


def test_real_cifar100_subset():
    data_dir = shared_data_or_skip("cifar100", "cifar-100-python")
    ds = load_dataset("cifar100", data_dir)
    assert ds.train_images.shape == (1117, 3, 32, 32) and ds.test_images.shape == (916, 3, 32, 32)
    assert 0 <= int(ds.train_labels.min()) and int(ds.train_labels.max()) <= 99


def test_real_fashionmnist_subset():
    data_dir = shared_data_or_skip("fashionmnist")
    ds = load_dataset("fashionmnist", data_dir)
    assert ds.train_images.shape == (3000, 3, 32, 32) and ds.test_images.shape == (615, 3, 32, 32)
    assert int(ds.train_images[:, :, :2].max()) == 0  # zero padding
    mean = (ds.train_images.float() / 255).mean().item()
    assert mean == pytest.approx(ds.mean[0], abs=0.01)


# --- splits ---------------------------------------------------------------------------------


def test_halves_are_disjoint_stratified_and_cover_everything():
    labels = np.repeat(np.arange(10), 5000)
    np.random.default_rng(0).shuffle(labels)  # like CIFAR-10: 5,000 per class, shuffled
    a, b = half_indices(labels, "a"), half_indices(labels, "b")
    assert len(a) == len(b) == 25000
    assert len(np.intersect1d(a, b)) == 0 and len(np.union1d(a, b)) == 50000
    assert np.bincount(labels[a]).tolist() == [2500] * 10 == np.bincount(labels[b]).tolist()


def test_cifar10_halves_pinned_on_the_real_files():
    data_dir = shared_data_or_skip("cifar10", "cifar-10-batches-py")
    full = load_dataset("cifar10", data_dir)
    a, b = load_dataset("cifar10a", data_dir), load_dataset("cifar10b", data_dir)
    labels = full.train_labels.numpy()
    ia, ib = half_indices(labels, "a"), half_indices(labels, "b")
    # Pinned: the split is a fixed rule (alternate images of each class in file order).
    assert ia[:8].tolist() == [0, 1, 3, 4, 6, 7, 8, 9]
    assert ib[:8].tolist() == [2, 5, 10, 11, 13, 15, 17, 19]
    assert torch.equal(a.train_images, full.train_images[torch.from_numpy(ia)])
    assert torch.equal(b.train_images, full.train_images[torch.from_numpy(ib)])
    assert len(a.train_labels) + len(b.train_labels) == len(labels)
    counts_a = np.bincount(a.train_labels.numpy(), minlength=10)
    counts_b = np.bincount(b.train_labels.numpy(), minlength=10)
    assert np.abs(counts_a - counts_b).max() <= 1
    assert torch.equal(a.test_images, full.test_images)  # both tested on the CIFAR-10 test set


def test_stratified_subset_is_exact_stratified_and_seeded():
    labels = np.repeat(np.arange(10), [500, 400, 600, 500, 500, 500, 500, 500, 500, 500])
    first = stratified_subset(labels, 1000, seed=3)
    assert len(first) == 1000 and len(np.unique(first)) == 1000
    counts = np.bincount(labels[first], minlength=10)
    assert counts[1] == 80 and counts[2] == 120 and counts[0] == 100
    assert np.array_equal(first, stratified_subset(labels, 1000, seed=3))
    assert not np.array_equal(first, stratified_subset(labels, 1000, seed=4))
    with pytest.raises(UserError, match="--train-size"):
        stratified_subset(labels, 6000, seed=0)


def test_train_size_subset_through_load_dataset():
    ds = load_dataset("digits", train_size=200, subset_seed=1)
    assert len(ds.train_labels) == 200
    assert torch.bincount(ds.train_labels, minlength=10).min() >= 19
    assert len(ds.test_labels) == 355  # the test set is never subset
