"""Download on first use: md5 check, atomic placement, nothing half-written on failure."""

from __future__ import annotations

import hashlib
import io
import tarfile
import urllib.request
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from conftest import write_tiny_cifar10
from oneticket.data import load_dataset
from oneticket.data.download import Download
from oneticket.data.sources import DATASETS
from oneticket.errors import DataNotFoundError


def make_cifar10_archive(tmp_path: Path) -> tuple[Path, str]:
    source = tmp_path / "source"
    write_tiny_cifar10(source)
    archive = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(source / "cifar10" / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    return archive, hashlib.md5(archive.read_bytes()).hexdigest()


def use_download(monkeypatch, url: str, md5: str) -> None:
    monkeypatch.setenv("ONETICKET_OFFLINE", "0")
    info = DATASETS["cifar10"]
    item = replace(info.downloads[0], url=url, md5=md5)
    monkeypatch.setitem(DATASETS, "cifar10", replace(info, downloads=(item,)))


def all_files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) if folder.exists() else []


def test_download_checks_md5_unpacks_and_cleans_up(tmp_path: Path, monkeypatch):
    archive, md5 = make_cifar10_archive(tmp_path)
    use_download(monkeypatch, archive.as_uri(), md5)
    data_dir = tmp_path / "data"
    ds = load_dataset("cifar10", data_dir, show_progress=False)
    assert ds.train_images.shape == (30, 3, 32, 32)
    files = all_files(data_dir / "cifar10")
    assert "cifar-10-batches-py/test_batch" in files
    assert not any(f.endswith((".tar.gz", ".part")) or "unpack" in f for f in files)
    # Present files: the second load does not download (the URL is gone now).
    use_download(monkeypatch, (tmp_path / "gone.tar.gz").as_uri(), md5)
    assert torch.equal(load_dataset("cifar10", data_dir).train_images, ds.train_images)


def test_md5_mismatch_leaves_nothing(tmp_path: Path, monkeypatch):
    archive, _ = make_cifar10_archive(tmp_path)
    use_download(monkeypatch, archive.as_uri(), "0" * 32)
    data_dir = tmp_path / "data"
    with pytest.raises(DataNotFoundError, match="md5"):
        load_dataset("cifar10", data_dir, show_progress=False)
    assert all_files(data_dir) in ([], ["cifar10"])


def test_interrupted_download_leaves_nothing(tmp_path: Path, monkeypatch):
    archive, md5 = make_cifar10_archive(tmp_path)
    payload = archive.read_bytes()

    class Dropping(io.BytesIO):
        length = len(payload)

        def read(self, size: int = -1) -> bytes:
            if self.tell() > len(payload) // 2:
                raise ConnectionResetError("connection reset by peer")
            return super().read(min(size, 1024))

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout: Dropping(payload))
    use_download(monkeypatch, "https://example.invalid/cifar-10-python.tar.gz", md5)
    data_dir = tmp_path / "data"
    with pytest.raises(DataNotFoundError, match="connection reset"):
        load_dataset("cifar10", data_dir, show_progress=False)
    assert all_files(data_dir) in ([], ["cifar10"])


def test_no_network_says_which_files_are_expected_where(tmp_path: Path, monkeypatch):
    use_download(monkeypatch, "http://127.0.0.1:9/cifar-10-python.tar.gz", "0" * 32)  # nothing listens on port 9
    with pytest.raises(DataNotFoundError) as info:
        load_dataset("cifar10", tmp_path, show_progress=False)
    message = str(info.value)
    assert "data_batch_1" in message and str(tmp_path / "cifar10" / "cifar-10-batches-py") in message
    assert "ONETICKET_DATA" in message and "\n" not in message


def test_plain_file_downloads_are_renamed_into_place(tmp_path: Path, monkeypatch):
    src = tmp_path / "blob.mat"
    src.write_bytes(b"not really a mat file")
    md5 = hashlib.md5(src.read_bytes()).hexdigest()
    from oneticket.data.download import fetch

    fetch((Download(src.as_uri(), md5, "svhn/train_32x32.mat"),), tmp_path / "data", show_progress=False)
    assert (tmp_path / "data" / "svhn" / "train_32x32.mat").read_bytes() == src.read_bytes()
    assert all_files(tmp_path / "data" / "svhn") == ["train_32x32.mat"]


def test_processes_that_need_the_same_missing_dataset_download_it_once(tmp_path: Path, monkeypatch):
    """Two workers of a pool starting on CIFAR-10a and CIFAR-10b: one downloads, the other waits
    and finds the files (the lock is the data folder's own: no lock file stays behind)."""
    import threading
    import time

    import oneticket.data.sources as sources

    archive, md5 = make_cifar10_archive(tmp_path)
    use_download(monkeypatch, archive.as_uri(), md5)
    fetches = []
    real_fetch = sources.fetch

    def slow_fetch(*args, **kwargs):
        fetches.append(threading.get_ident())
        time.sleep(0.3)  # long enough for the other thread to find the files missing too
        return real_fetch(*args, **kwargs)

    monkeypatch.setattr(sources, "fetch", slow_fetch)
    data_dir = tmp_path / "data"
    results = []
    threads = [threading.Thread(target=lambda name=name: results.append(load_dataset(name, data_dir, show_progress=False)))
               for name in ("cifar10a", "cifar10b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(fetches) == 1 and len(results) == 2
    assert sorted(r.train_size for r in results) == [10, 20]  # 3 images per class: 2 in half a, 1 in half b
    assert all_files(data_dir) == ["cifar10"] + [f"cifar10/{f}" for f in all_files(data_dir / "cifar10")]
