"""Fetching the official dataset files: streamed download, md5 check, atomic placement.

A download is written to a hidden ``.part`` file beside its destination and renamed into place
only after its md5 matches, and archives are unpacked in a hidden folder and moved into place
file by file; an interrupted or failed fetch leaves nothing that looks like data.
"""

from __future__ import annotations

import hashlib
import tarfile
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn

from oneticket.errors import DataNotFoundError
from oneticket.files import atomic_path

TIMEOUT_S = 30
CHUNK = 1 << 20


@dataclass(frozen=True)
class Download:
    """One official file: where it comes from, its md5, and where it goes under the data directory."""

    url: str
    md5: str
    dest: str  # path relative to the data directory
    archive_root: str | None = None  # for a .tar.gz: the folder it unpacks to, placed beside ``dest``


class DownloadFailed(Exception):
    """A single download did not complete; the caller turns it into a user-facing message."""


def _progress(show: bool) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        transient=True,
        disable=not show,
    )


def download_file(url: str, dest: Path, md5: str, show_progress: bool = True) -> None:
    """Stream ``url`` to ``dest``; the file appears only if complete and its md5 is ``md5``."""
    digest = hashlib.md5()
    try:
        with atomic_path(dest) as tmp, urllib.request.urlopen(url, timeout=TIMEOUT_S) as response:
            total = getattr(response, "length", None) or int(response.headers.get("Content-Length") or 0) or None
            with open(tmp, "wb") as out, _progress(show_progress) as bar:
                task = bar.add_task(f"downloading {dest.name}", total=total)
                while chunk := response.read(CHUNK):
                    out.write(chunk)
                    digest.update(chunk)
                    bar.advance(task, len(chunk))
            if digest.hexdigest() != md5:
                raise DownloadFailed(f"md5 of {url} is {digest.hexdigest()}, expected {md5} (corrupt or changed file)")
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DownloadFailed(f"download of {url} failed ({reason})") from None


def unpack_archive(archive: Path, root_name: str, into: Path) -> None:
    """Unpack ``archive`` (which holds folder ``root_name``) so ``into/root_name`` gains its files.

    Unpacks into a hidden temporary folder first; files already in place are kept.
    """
    into.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".unpack-", dir=into) as tmp:
        try:
            with tarfile.open(archive, "r:gz") as tar:
                tar.extractall(tmp, filter="data")
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise DownloadFailed(f"could not unpack {archive.name} ({exc})") from None
        unpacked = Path(tmp) / root_name
        if not unpacked.is_dir():
            raise DownloadFailed(f"{archive.name} does not contain the folder {root_name}/")
        target = into / root_name
        if not target.exists():
            unpacked.rename(target)
            return
        for item in unpacked.iterdir():
            if not (target / item.name).exists():
                item.rename(target / item.name)


def fetch(downloads: tuple[Download, ...], data_dir: Path, show_progress: bool = True) -> None:
    """Download (and unpack) every file in ``downloads`` into ``data_dir``."""
    for item in downloads:
        dest = data_dir / item.dest
        if item.archive_root is None:
            if not dest.exists():
                download_file(item.url, dest, item.md5, show_progress)
            continue
        download_file(item.url, dest, item.md5, show_progress)
        try:
            unpack_archive(dest, item.archive_root, dest.parent)
        finally:
            dest.unlink(missing_ok=True)


def missing_files_error(name: str, folder: Path, missing: list[str], reason: str) -> DataNotFoundError:
    shown = ", ".join(missing[:4]) + (f" and {len(missing) - 4} more" if len(missing) > 4 else "")
    return DataNotFoundError(
        f"{name}: expected {shown} in {folder} ({reason}); put the files there, or point "
        "--data-dir or ONETICKET_DATA at a folder that has them"
    )
