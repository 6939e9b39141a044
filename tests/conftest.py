"""Shared helpers: tiny dataset files written by the tests, the real subsets in ../shared."""

from __future__ import annotations

import gzip
import os
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

os.environ.setdefault("ONETICKET_OFFLINE", "1")  # tests never touch the network
torch.set_num_threads(min(2, torch.get_num_threads()))

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "datasets"


def shared_data_or_skip(*parts: str) -> Path:
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real dataset subset not present at {path}")
    return SHARED_DATA


def random_images(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, 3, 32, 32), dtype=np.uint8)


def write_cifar_batch(path: Path, images: np.ndarray, labels: list[int], label_key: bytes = b"labels") -> None:
    """A CIFAR batch as the official files are: a protocol-2 pickle of a dict with bytes keys."""
    path.parent.mkdir(parents=True, exist_ok=True)
    batch = {b"data": images.reshape(len(images), -1), label_key: labels, b"batch_label": b"test"}
    with open(path, "wb") as handle:
        pickle.dump(batch, handle, protocol=2)


def write_tiny_cifar10(data_dir: Path, per_batch: int = 6, test: int = 5) -> dict[str, np.ndarray]:
    folder = data_dir / "cifar10" / "cifar-10-batches-py"
    images = random_images(5 * per_batch + test, seed=1)
    labels = [i % 10 for i in range(len(images))]
    for b in range(5):
        part = slice(b * per_batch, (b + 1) * per_batch)
        write_cifar_batch(folder / f"data_batch_{b + 1}", images[part], labels[part])
    write_cifar_batch(folder / "test_batch", images[5 * per_batch :], labels[5 * per_batch :])
    return {"images": images, "labels": np.array(labels)}


def write_idx(path: Path, array: np.ndarray, magic: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    header = struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in array.shape)
    with gzip.open(path, "wb") as handle:
        handle.write(header + array.astype(np.uint8).tobytes())


@pytest.fixture
def store(tmp_path: Path) -> Path:
    return tmp_path / "store"
