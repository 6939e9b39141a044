"""Readers for the datasets' original on-disk formats.

Every reader returns :class:`RawSplit` pairs: images as uint8 arrays of shape (N, 3, 32, 32) and
labels as int64 arrays of shape (N,). Readers touch only the files they are given; finding or
downloading them is the job of :mod:`oneticket.data.sources`.
"""

from __future__ import annotations

import gzip
import pickle
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from oneticket.errors import UserError


@dataclass(frozen=True)
class RawSplit:
    images: np.ndarray  # uint8 (N, 3, 32, 32)
    labels: np.ndarray  # int64 (N,)


class _ArrayOnlyUnpickler(pickle.Unpickler):
    """Unpickles CIFAR's dicts of numpy arrays and refuses every other global (no code execution)."""

    _ALLOWED = {
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("_codecs", "encode"),  # bytes as Python 3 writes them at pickle protocol 2
    }

    def find_class(self, module: str, name: str):  # type: ignore[override]
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"unexpected object {module}.{name}")


def _load_cifar_pickle(path: Path) -> dict:
    try:
        with open(path, "rb") as handle:
            return _ArrayOnlyUnpickler(handle, encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError) as exc:
        raise UserError(f"{path} is not a readable CIFAR batch file ({exc}); delete it so it is fetched again") from None


def _cifar_arrays(batch: dict, label_key: bytes, path: Path) -> RawSplit:
    if b"data" not in batch or label_key not in batch:
        raise UserError(f"{path} lacks the keys b'data' and {label_key!r}; it is not a CIFAR batch file")
    data = np.asarray(batch[b"data"], dtype=np.uint8)
    labels = np.asarray(batch[label_key], dtype=np.int64)
    if data.ndim != 2 or data.shape[1] != 3072 or len(data) != len(labels):
        raise UserError(f"{path}: expected data of shape (N, 3072) with N labels, got {data.shape} and {labels.shape}")
    return RawSplit(data.reshape(-1, 3, 32, 32), labels)


def _concat(splits: list[RawSplit]) -> RawSplit:
    return RawSplit(np.concatenate([s.images for s in splits]), np.concatenate([s.labels for s in splits]))


def read_cifar10(folder: Path) -> tuple[RawSplit, RawSplit]:
    """``folder`` is ``cifar-10-batches-py`` (``data_batch_1..5``, ``test_batch``)."""
    train = [_cifar_arrays(_load_cifar_pickle(folder / f"data_batch_{i}"), b"labels", folder) for i in range(1, 6)]
    test = _cifar_arrays(_load_cifar_pickle(folder / "test_batch"), b"labels", folder)
    return _concat(train), test


def read_cifar100(folder: Path) -> tuple[RawSplit, RawSplit]:
    """``folder`` is ``cifar-100-python`` (``train``, ``test``); labels are the 100 fine classes."""
    train = _cifar_arrays(_load_cifar_pickle(folder / "train"), b"fine_labels", folder / "train")
    test = _cifar_arrays(_load_cifar_pickle(folder / "test"), b"fine_labels", folder / "test")
    return train, test


def _read_svhn_mat(path: Path) -> RawSplit:
    from scipy.io import loadmat

    try:
        mat = loadmat(path, variable_names=["X", "y"])
    except (ValueError, OSError, TypeError) as exc:
        raise UserError(f"{path} is not a readable SVHN .mat file ({exc}); delete it so it is fetched again") from None
    images, labels = mat.get("X"), mat.get("y")
    if images is None or labels is None or images.shape[:3] != (32, 32, 3):
        raise UserError(f"{path}: expected X of shape (32, 32, 3, N) and y of shape (N, 1)")
    labels = labels.reshape(-1).astype(np.int64)
    labels[labels == 10] = 0  # SVHN stores the digit 0 as label 10
    return RawSplit(np.ascontiguousarray(images.transpose(3, 2, 0, 1), dtype=np.uint8), labels)


def read_svhn(folder: Path) -> tuple[RawSplit, RawSplit]:
    """``folder`` holds ``train_32x32.mat`` and ``test_32x32.mat`` (format 2)."""
    return _read_svhn_mat(folder / "train_32x32.mat"), _read_svhn_mat(folder / "test_32x32.mat")


def _read_idx(path: Path, magic: int) -> np.ndarray:
    try:
        with gzip.open(path, "rb") as handle:
            raw = handle.read()
    except (OSError, EOFError) as exc:
        raise UserError(f"{path} is not a readable gzip file ({exc}); delete it so it is fetched again") from None
    found, count = struct.unpack(">II", raw[:8])
    if found != magic:
        raise UserError(f"{path}: IDX magic number {found}, expected {magic}")
    ndim = magic & 0xFF
    dims = struct.unpack(f">{ndim}I", raw[4 : 4 + 4 * ndim])
    body = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(dims)):
        raise UserError(f"{path}: truncated IDX file ({body.size} bytes for shape {dims})")
    return body.reshape(dims)


def gray28_to_rgb32(images: np.ndarray) -> np.ndarray:
    """(N, 28, 28) grayscale -> (N, 3, 32, 32): zero-pad 2 pixels per side, repeat to 3 channels."""
    padded = np.pad(images, ((0, 0), (2, 2), (2, 2)))
    return np.ascontiguousarray(np.repeat(padded[:, None], 3, axis=1))


def _read_fashion_split(folder: Path, prefix: str) -> RawSplit:
    images = _read_idx(folder / f"{prefix}-images-idx3-ubyte.gz", 2051)
    labels = _read_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", 2049)
    if images.shape[1:] != (28, 28) or len(images) != len(labels):
        raise UserError(f"{folder}: {prefix} images {images.shape} do not match labels {labels.shape}")
    return RawSplit(gray28_to_rgb32(images), labels.astype(np.int64))


def read_fashionmnist(folder: Path) -> tuple[RawSplit, RawSplit]:
    """``folder`` holds ``{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz``."""
    return _read_fashion_split(folder, "train"), _read_fashion_split(folder, "t10k")


DIGITS_TEST_EVERY = 5


def read_digits() -> tuple[RawSplit, RawSplit]:
    """scikit-learn's bundled 8x8 digits (1,797 images), made 3x32x32 uint8.

    Pixels 0..16 are scaled to 0..255 (``round(v * 255 / 16)``), each pixel is repeated 4x4
    (nearest-neighbour upsampling) and the gray image is repeated to 3 channels. Fixed split, no
    randomness: within each class, in the bundled order, every 5th image (positions 4, 9, 14, ...)
    is a test image; the rest train (1,442 train, 355 test).
    """
    from sklearn.datasets import load_digits

    bunch = load_digits()
    gray = np.rint(bunch.images * (255.0 / 16.0)).astype(np.uint8)
    big = gray.repeat(4, axis=1).repeat(4, axis=2)
    images = np.ascontiguousarray(np.repeat(big[:, None], 3, axis=1))
    labels = bunch.target.astype(np.int64)
    is_test = np.zeros(len(labels), dtype=bool)
    for c in np.unique(labels):
        positions = np.flatnonzero(labels == c)
        is_test[positions[DIGITS_TEST_EVERY - 1 :: DIGITS_TEST_EVERY]] = True
    return RawSplit(images[~is_test], labels[~is_test]), RawSplit(images[is_test], labels[is_test])
