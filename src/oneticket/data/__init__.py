"""Datasets: readers for the original files, download, splits, batch augmentation, device batches."""

from oneticket.data.dataset import ImageDataset, load_dataset
from oneticket.data.loader import DeviceData
from oneticket.data.sources import (
    DATA_ENV,
    DatasetInfo,
    data_dir_problem,
    dataset_info,
    dataset_names,
    default_data_dir,
    ensure_dataset,
)

__all__ = [
    "DATA_ENV",
    "DatasetInfo",
    "DeviceData",
    "ImageDataset",
    "dataset_info",
    "dataset_names",
    "data_dir_problem",
    "default_data_dir",
    "ensure_dataset",
    "load_dataset",
]
