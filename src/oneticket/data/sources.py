"""The dataset registry: what each dataset is, where its files live, how to read and fetch them.

Layout under a data directory (the one ``../shared/datasets`` and the official archives use)::

    <dir>/cifar10/cifar-10-batches-py/{data_batch_1..5,test_batch}
    <dir>/cifar100/cifar-100-python/{train,test}
    <dir>/svhn/{train,test}_32x32.mat
    <dir>/fashionmnist/{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz

``digits`` (scikit-learn's bundled 8x8 digits) needs no files. Every dataset ``X`` also has halves
``Xa`` and ``Xb`` (``cifar10a``/``cifar10b`` as in the paper, ``digitsa``/``digitsb`` for the demo): the
two halves of its training set (see :func:`oneticket.data.splits.half_indices`), both tested on the
full test set.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from oneticket.data import readers
from oneticket.data.download import Download, DownloadFailed, fetch, missing_files_error
from oneticket.data.readers import RawSplit
from oneticket.errors import UserError
from oneticket.files import waiting_lock

Reader = Callable[[Path], tuple[RawSplit, RawSplit]]

DATA_ENV = "ONETICKET_DATA"
OFFLINE_ENV = "ONETICKET_OFFLINE"  # set to 1 to never download


def downloads_allowed() -> bool:
    return os.environ.get(OFFLINE_ENV, "").strip().lower() not in ("1", "true", "yes")


@dataclass(frozen=True)
class DatasetInfo:
    """A dataset as the registry knows it. Halves name their ``parent`` and ``half``."""

    name: str
    num_classes: int
    mean: tuple[float, float, float]  # per channel, on the 0..1 scale
    std: tuple[float, float, float]
    description: str
    folder: str = ""  # relative to the data directory
    files: tuple[str, ...] = ()  # expected inside ``folder``
    downloads: tuple[Download, ...] = ()
    reader: Reader | None = None
    parent: str | None = None
    half: str | None = None
    train_count: int = 0  # images in the official training / test files (for cost estimates)
    test_count: int = 0


DATASETS: dict[str, DatasetInfo] = {}


def register_dataset(info: DatasetInfo) -> DatasetInfo:
    DATASETS[info.name] = info
    return info


def dataset_names() -> list[str]:
    return list(DATASETS)


def dataset_info(name: str) -> DatasetInfo:
    try:
        return DATASETS[name]
    except KeyError:
        raise UserError(f"unknown dataset {name!r}; choose one of: {', '.join(DATASETS)}") from None


def default_data_dir() -> Path:
    """``$ONETICKET_DATA`` if set, else ``~/.oneticket/data``."""
    return Path(os.environ.get(DATA_ENV) or Path.home() / ".oneticket" / "data").expanduser()


def data_dir_problem(value: Path) -> str | None:
    """Why ``value`` cannot be a data folder, or None: it must be a folder, or a new one in a folder
    that exists (downloads go there), so a mistyped path never starts a download into it."""
    path = Path(value).expanduser()
    if path.is_dir() or (not path.exists() and path.absolute().parent.is_dir()):
        return None
    what = "is not a folder" if path.exists() else f"does not exist, nor does {path.absolute().parent}"
    return (f"{value} {what}; give the folder that holds cifar10/, cifar100/, svhn/ or fashionmnist/ (or leave the "
            f"data folder out: ${DATA_ENV} or ~/.oneticket/data, where missing files are downloaded)")


def _cifar10_downloads() -> tuple[Download, ...]:
    return (
        Download(
            "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
            "c58f30108f718f92721af3b95e74349a",
            "cifar10/cifar-10-python.tar.gz",
            archive_root="cifar-10-batches-py",
        ),
    )


_FASHION_MD5 = {
    "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
    "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
    "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
}
_FASHION_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
_SVHN_MD5 = {"train_32x32.mat": "e26dedcc434d2e4c54c9b2d4a06d8373", "test_32x32.mat": "eb5a983be6a315427106f1b164d9cef3"}

CIFAR10_MEAN, CIFAR10_STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)

register_dataset(
    DatasetInfo(
        "cifar10", 10, CIFAR10_MEAN, CIFAR10_STD, "CIFAR-10: 50,000 train / 10,000 test, 10 classes",
        folder="cifar10/cifar-10-batches-py",
        files=tuple(f"data_batch_{i}" for i in range(1, 6)) + ("test_batch",),
        downloads=_cifar10_downloads(),
        reader=readers.read_cifar10,
        train_count=50_000,
        test_count=10_000,
    )
)
register_dataset(
    DatasetInfo(
        "cifar100", 100, (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762),
        "CIFAR-100: 50,000 train / 10,000 test, 100 fine classes",
        folder="cifar100/cifar-100-python",
        files=("train", "test"),
        downloads=(
            Download(
                "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
                "eb9058c3a382ffc7106e4002c42a8d85",
                "cifar100/cifar-100-python.tar.gz",
                archive_root="cifar-100-python",
            ),
        ),
        reader=readers.read_cifar100,
        train_count=50_000,
        test_count=10_000,
    )
)
register_dataset(
    DatasetInfo(
        "svhn", 10, (0.4377, 0.4438, 0.4728), (0.1980, 0.2010, 0.1970),
        "SVHN (cropped digits): 73,257 train / 26,032 test, 10 classes",
        folder="svhn",
        files=tuple(_SVHN_MD5),
        downloads=tuple(
            Download(f"http://ufldl.stanford.edu/housenumbers/{f}", md5, f"svhn/{f}") for f, md5 in _SVHN_MD5.items()
        ),
        reader=readers.read_svhn,
        train_count=73_257,
        test_count=26_032,
    )
)
register_dataset(
    DatasetInfo(
        # 28x28 statistics (mean 0.2860, std 0.3530) carried over to the zero-padded 32x32 image.
        "fashionmnist", 10, (0.2190,) * 3, (0.3318,) * 3,
        "Fashion-MNIST: 60,000 train / 10,000 test, 10 classes, padded to 32x32, 3 channels",
        folder="fashionmnist",
        files=tuple(_FASHION_MD5),
        downloads=tuple(Download(_FASHION_URL + f, md5, f"fashionmnist/{f}") for f, md5 in _FASHION_MD5.items()),
        reader=readers.read_fashionmnist,
        train_count=60_000,
        test_count=10_000,
    )
)
register_dataset(
    DatasetInfo(
        # Statistics of the fixed training split (checked by a test).
        "digits", 10, (0.3052,) * 3, (0.3760,) * 3,
        "scikit-learn digits, offline: 1,442 train / 355 test, 10 classes, 8x8 upsampled to 32x32",
        reader=lambda _folder: readers.read_digits(),
        train_count=1_442,
        test_count=355,
    )
)


def register_halves(parent: str) -> None:
    """Register ``<parent>a`` and ``<parent>b``: the two halves of ``parent``'s training set, tested
    on its full test set (CIFAR-10a/b in the paper; every dataset gets them the same way)."""
    info = DATASETS[parent]
    for half in ("a", "b"):
        register_dataset(
            DatasetInfo(
                f"{parent}{half}", info.num_classes, info.mean, info.std,
                f"{info.description.split(':')[0]} half {half}: every other training image of each class "
                f"(in file order), tested on the full test set",
                parent=parent,
                half=half,
                train_count=(info.train_count + (half == "a")) // 2,
                test_count=info.test_count,
            )
        )


for _parent in ("cifar10", "cifar100", "svhn", "fashionmnist", "digits"):
    register_halves(_parent)


def ensure_files(info: DatasetInfo, data_dir: Path, download: bool = True, show_progress: bool = True) -> Path:
    """The dataset's folder under ``data_dir``, downloading missing files when allowed."""
    folder = data_dir / info.folder
    missing = [f for f in info.files if not (folder / f).exists()]
    if not missing:
        return folder
    if not download or not downloads_allowed():
        reason = f"not downloaded: {OFFLINE_ENV} is set" if download else "not downloaded here"
        raise missing_files_error(info.name, folder, missing, reason)
    with waiting_lock(data_dir):  # one process downloads, the others wait for it and find the files
        if [f for f in info.files if not (folder / f).exists()]:
            try:
                fetch(info.downloads, data_dir, show_progress)
            except DownloadFailed as exc:
                raise missing_files_error(info.name, folder, missing, str(exc)) from None
    still = [f for f in info.files if not (folder / f).exists()]
    if still:
        raise missing_files_error(info.name, folder, still, "the download did not provide them")
    return folder


def ensure_dataset(name: str, data_dir: Path | None = None, show_progress: bool = True) -> None:
    """Download the files ``name`` reads (a half: its parent's) if they are missing."""
    info = dataset_info(name)
    base = dataset_info(info.parent or name)
    if base.files:
        ensure_files(base, Path(data_dir).expanduser() if data_dir is not None else default_data_dir(), True, show_progress)


def read_raw(name: str, data_dir: Path, download: bool = True, show_progress: bool = True) -> tuple[RawSplit, RawSplit]:
    """Train and test splits of a base dataset (not a half), read from its original files."""
    info = dataset_info(name)
    assert info.reader is not None, f"{name} is derived from {info.parent}"
    folder = ensure_files(info, data_dir, download, show_progress) if info.files else data_dir
    return info.reader(folder)
