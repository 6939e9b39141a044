"""Crash-safe file writing and run-directory locking.

Every file oneticket writes goes through :func:`atomic_path`: it is written beside its final name,
flushed to disk and renamed into place, so a crash or ``kill -9`` leaves either the old file or the
new one, never half of one.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import functools
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from oneticket.errors import UserError


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path in ``path``'s folder; on success it is fsynced and renamed to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    except OSError as exc:
        _name(exc, path)
        raise
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o666 & ~umask())  # mkstemp makes 0600; a file gets the user's usual mode
        os.replace(tmp, path)
    except OSError as exc:
        _name(exc, path)
        raise
    finally:
        tmp.unlink(missing_ok=True)


STORAGE_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS, errno.EIO}


def _name(exc: OSError, path: Path) -> None:
    """Name the file being written (not its temporary twin, or nothing) in a storage error."""
    if exc.errno in STORAGE_ERRORS:
        exc.filename = str(path)


@functools.cache
def umask() -> int:
    """This process's umask (read without changing it where Linux allows)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    current = os.umask(0o022)
    os.umask(current)
    return current


def write_bytes_atomic(path: Path, data: bytes | memoryview) -> None:
    """Write ``data`` to ``path`` atomically; a failure is an OSError naming ``path`` and, as
    ``exc.needed``, the bytes it needed."""
    try:
        with atomic_path(path) as tmp:
            tmp.write_bytes(data)
    except OSError as exc:
        exc.needed = len(data)  # type: ignore[attr-defined]
        raise


def link_or_copy(source: Path, target: Path) -> None:
    """Make ``target`` hold ``source``'s bytes: a hard link where the filesystem allows one, else an
    atomic copy; either way ``target`` appears whole or not at all."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.link.part")
    try:
        tmp.unlink(missing_ok=True)
        os.link(source, tmp)
        os.replace(tmp, target)
    except OSError:
        tmp.unlink(missing_ok=True)
        write_bytes_atomic(target, Path(source).read_bytes())


def write_json_atomic(path: Path, obj: Any) -> None:
    write_bytes_atomic(path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode())


def read_json(path: Path) -> Any:
    return json.loads(Path(path).read_text())


def read_record(path: Path) -> dict[str, Any]:
    """A JSON record oneticket can write again (a ``spec.json``): ``{}`` when it is missing, empty
    or damaged (a crash of an older version, an editor), so the caller rewrites it."""
    try:
        record = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


class DirectoryBusy(UserError):
    """Another process holds the directory's lock."""


def held_elsewhere(directory: Path) -> bool:
    """Whether another process holds ``directory``'s lock right now (a probe: nothing is kept)."""
    path = Path(directory) / ".lock"
    if not path.exists():
        return False
    with open(path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
    return False


def wait_until_free(directory: Path) -> None:
    """Block until no process holds ``directory``'s lock (returns at once if none does)."""
    path = Path(directory) / ".lock"
    if not path.exists():
        return
    with open(path, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        fcntl.flock(handle, fcntl.LOCK_UN)


class DirectoryLock:
    """An exclusive, process-wide lock on a directory (released automatically if the process dies)."""

    def __init__(self, directory: Path, what: str = "directory"):
        self.path = Path(directory) / ".lock"
        self.what = what
        self._handle: Any = None

    def __enter__(self) -> DirectoryLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            owner = handle.read().strip() or "another process"
            handle.close()
            raise DirectoryBusy(
                f"{self.what} {self.path.parent} is in use by process {owner}; "
                "wait for it to finish or stop it, then rerun"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        self._handle = handle
        remove_stale_parts(self.path.parent)  # the holder owns the folder: a killed writer's leftovers go
        return self

    def __exit__(self, *exc: object) -> None:
        if self._handle is not None:
            fcntl.flock(self._handle, fcntl.LOCK_UN)
            self._handle.close()
            self._handle = None


@contextlib.contextmanager
def waiting_lock(directory: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``directory`` (created if needed), waiting for another holder to
    finish: for work that must happen once however many processes want it (a download). The lock
    is the directory's own (flock on its descriptor): no lock file is left behind."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    fd = os.open(directory, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def remove_stale_parts(directory: Path) -> int:
    """Remove the temporary ``.*.part`` files a killed writer left under ``directory`` (call only
    while holding its lock: no live writer is there); returns how many."""
    stale = list(Path(directory).rglob(".*.part"))
    for path in stale:
        path.unlink(missing_ok=True)
    return len(stale)


def nearest_existing(path: Path) -> Path:
    """``path`` itself if it exists, else its nearest existing ancestor."""
    path = Path(path)
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def is_writable(path: Path) -> bool:
    """Whether ``path`` (or, if it does not exist yet, its nearest existing folder) can be written."""
    folder = nearest_existing(path)
    return folder.is_dir() and os.access(folder, os.W_OK)


@contextlib.contextmanager
def claimed(directory: Path, what: str,
            scaffolding: frozenset[str] = frozenset({".lock", "spec.json"})) -> Iterator[None]:
    """Hold ``directory``'s lock (created if needed) for a block of work. If the block fails while
    a folder this call created holds nothing but ``scaffolding`` (no result, no checkpoint), the
    folder is removed, inside the lock: a failed start leaves no trace."""
    directory = Path(directory)
    fresh = not directory.exists()
    with DirectoryLock(directory, what):
        try:
            yield
        except BaseException:
            if fresh and {p.name for p in directory.iterdir()} <= scaffolding:
                for path in directory.iterdir():
                    path.unlink(missing_ok=True)
                directory.rmdir()
            raise


def storage_fault_message(exc: OSError) -> str | None:
    """One line for an OS error the user can fix (disk full, permissions, a file where a folder
    should be), naming the path; None for others (a bug: let it show)."""
    path = exc.filename or "the store"
    again = "then rerun the same command: finished work is kept"
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        needed = getattr(exc, "needed", None)
        size = f"needs {needed / 2**20:.1f} MiB, " if needed else ""
        return f"no space left to write {path} ({size}{_free_space(path)} free there); free some space, {again}"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return f"permission denied: {path}; choose a folder you can write (--store, --out, --data-dir) or fix its permissions, {again}"
    if exc.errno == errno.EROFS:
        return f"{path} is on a read-only file system; choose a folder you can write (--store, --out), {again}"
    if exc.errno in (errno.ENOTDIR, errno.EEXIST):
        return f"{path}: a file stands where a folder is needed; choose another --store or move the file, {again}"
    if exc.errno in (errno.ENOENT, errno.ENAMETOOLONG, errno.ELOOP):
        return f"{path}: cannot be reached or created; check the path given (--store, --data-dir, --out), {again}"
    return None


def _free_space(path: str) -> str:
    folder = nearest_existing(Path(path))
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return "unknown space"
    return f"{free / 2**20:.1f} MiB"
