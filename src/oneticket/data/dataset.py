"""Datasets as uint8 tensors in memory, ready to be moved to the training device."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from oneticket.data.sources import dataset_info, default_data_dir, read_raw
from oneticket.data.splits import half_indices, stratified_subset


@dataclass(frozen=True)
class ImageDataset:
    """Images uint8 (N, 3, 32, 32), labels int64 (N,), plus what is needed to normalize them."""

    name: str
    num_classes: int
    train_images: torch.Tensor
    train_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    @property
    def train_size(self) -> int:
        return len(self.train_labels)

    def with_train_indices(self, indices: np.ndarray) -> ImageDataset:
        index = torch.as_tensor(indices, dtype=torch.long)
        return replace(self, train_images=self.train_images[index], train_labels=self.train_labels[index])


def load_dataset(
    name: str,
    data_dir: Path | None = None,
    train_size: int | None = None,
    subset_seed: int = 0,
    download: bool = True,
    show_progress: bool = True,
) -> ImageDataset:
    """Load ``name`` from ``data_dir`` (default: ``$ONETICKET_DATA`` or ``~/.oneticket/data``).

    ``train_size`` keeps a stratified subset of the training set chosen with ``subset_seed``.
    """
    info = dataset_info(name)
    data_dir = Path(data_dir).expanduser() if data_dir is not None else default_data_dir()
    train, test = read_raw(info.parent or name, data_dir, download, show_progress)
    dataset = ImageDataset(
        name=name,
        num_classes=info.num_classes,
        train_images=torch.from_numpy(train.images),
        train_labels=torch.from_numpy(train.labels),
        test_images=torch.from_numpy(test.images),
        test_labels=torch.from_numpy(test.labels),
        mean=info.mean,
        std=info.std,
    )
    if info.half is not None:
        dataset = dataset.with_train_indices(half_indices(train.labels, info.half))
    if train_size is not None:
        dataset = dataset.with_train_indices(stratified_subset(dataset.train_labels.numpy(), train_size, subset_seed))
    return dataset
