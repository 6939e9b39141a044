"""The results index: one SQLite file beside the run directories.

The run and training directories stay the source of truth (each result is a ``result.json``
written atomically); ``<store>/results.sqlite`` indexes them for queries::

    jobs(job_id, kind, spec, directory)             every IMP run and ticket training
    results(job_id, level, status, fraction_pruned, alive, total, test_accuracy, seconds, message, provenance,
            compute, find_compute)
    epochs(job_id, level, epoch, train_loss, test_accuracy, lr, seconds)
    experiment_jobs(experiment, job_id)

Each record is written in one transaction (a level's result together with its epochs), with
upserts, so writing twice is harmless and a crash leaves the previous state. Several processes may
write at once: SQLite's write-ahead log and a generous busy timeout serialize them, and nothing is
lost. :meth:`ResultsIndex.sync` picks up results written outside the executor (``oneticket find``,
other machines) from the directories.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

from oneticket.errors import UserError
from oneticket.files import is_writable, read_json, read_record
from oneticket.tickets import LevelResult, RunDir, runs_root, trainings_root

INDEX_FILE = "results.sqlite"
BUSY_TIMEOUT_S = 120.0

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    job_id TEXT PRIMARY KEY, kind TEXT NOT NULL, spec TEXT NOT NULL, directory TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS results (
    job_id TEXT NOT NULL, level INTEGER NOT NULL, status TEXT NOT NULL, fraction_pruned REAL, alive INTEGER,
    total INTEGER, test_accuracy REAL, seconds REAL, message TEXT, provenance TEXT, compute TEXT, find_compute TEXT,
    PRIMARY KEY (job_id, level)
);
CREATE TABLE IF NOT EXISTS epochs (
    job_id TEXT NOT NULL, level INTEGER NOT NULL, epoch INTEGER NOT NULL, train_loss REAL, test_accuracy REAL,
    lr REAL, seconds REAL, PRIMARY KEY (job_id, level, epoch)
);
CREATE TABLE IF NOT EXISTS experiment_jobs (
    experiment TEXT NOT NULL, job_id TEXT NOT NULL, PRIMARY KEY (experiment, job_id)
);
"""


class ResultsIndex:
    """``<store>/results.sqlite``. A ``reader`` (``results``, ``report``) never creates the store and
    works on one it cannot write: it then reads a copy in memory, brought up to date from the runs."""

    def __init__(self, store: Path, reader: bool = False):
        self.store = Path(store).expanduser()
        self.path = self.store / INDEX_FILE
        self.reader = reader
        self._memory: sqlite3.Connection | None = None

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        if self.reader and not (self.store.is_dir() and is_writable(self.store)):
            with self._in_memory() as conn:
                yield conn
            return
        self.store.mkdir(parents=True, exist_ok=True)
        try:
            with closing(sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S)) as conn:
                _prepare(conn)
                with conn:  # one transaction: committed on success, rolled back on error
                    yield conn
        except sqlite3.DatabaseError as exc:
            if not is_writable(self.store):
                raise UserError(f"{self.store} cannot be written (read-only); 'oneticket results' and 'report --out DIR' "
                                "read it as it is, or copy the store somewhere writable to run more") from None
            raise UserError(f"{self.path}: the results index cannot be used ({exc}); delete it, it is rebuilt from the runs") from None

    @contextmanager
    def _in_memory(self) -> Iterator[sqlite3.Connection]:
        """A copy of the index in memory (what the file holds, read without writing, plus every
        result in the runs); changes stay there."""
        try:
            if self._memory is None:
                memory = sqlite3.connect(":memory:")
                if self.path.is_file():
                    with closing(sqlite3.connect(f"{self.path.as_uri()}?immutable=1", uri=True)) as stored:
                        stored.backup(memory)
                memory.executescript(SCHEMA)
                _add_new_columns(memory)
                with memory:
                    _index_runs(memory, self.store)
                self._memory = memory
            with self._memory:
                yield self._memory
        except sqlite3.DatabaseError as exc:
            raise UserError(f"{self.path}: the results index cannot be read ({exc}); rerun where the store "
                            "can be written and it is rebuilt from the runs") from None

    def record_job(self, job_id: str, kind: str, spec: dict[str, Any], directory: Path) -> None:
        with self._connect() as conn:
            conn.execute("INSERT OR REPLACE INTO jobs VALUES (?, ?, ?, ?)",
                         (job_id, kind, json.dumps(spec, sort_keys=True), str(directory)))

    def record_result(self, job_id: str, result: LevelResult) -> None:
        """A level's result and its per-epoch metrics, in one transaction."""
        with self._connect() as conn:
            _write_result(conn, job_id, result)

    def record_experiment(self, experiment: str, job_ids: Iterable[str]) -> None:
        with self._connect() as conn:
            conn.executemany("INSERT OR IGNORE INTO experiment_jobs VALUES (?, ?)", [(experiment, j) for j in job_ids])

    def results(self, job_ids: Iterable[str] | None = None) -> dict[tuple[str, int], dict[str, Any]]:
        """(job id, level) -> result row."""
        with self._connect() as conn:
            conn.row_factory = sqlite3.Row
            rows = conn.execute("SELECT * FROM results").fetchall()
        wanted = None if job_ids is None else set(job_ids)
        return {(r["job_id"], r["level"]): _with_provenance(dict(r)) for r in rows if wanted is None or r["job_id"] in wanted}

    def epochs(self, job_id: str, level: int) -> list[dict[str, Any]]:
        with self._connect() as conn:
            conn.row_factory = sqlite3.Row
            rows = conn.execute("SELECT * FROM epochs WHERE job_id = ? AND level = ? ORDER BY epoch", (job_id, level))
            return [dict(r) for r in rows]

    def compute(self, job_ids: Iterable[str], borrowed: Iterable[tuple[str, int]] = ()) -> tuple[int, int, float]:
        """(trainings, epochs, seconds) spent on the finished levels and trainings of ``job_ids``,
        leaving out ``borrowed`` (job id, level) results: a finder run's level 0 is the IMP run's."""
        wanted, skip = set(job_ids), set(borrowed)
        with self._connect() as conn:
            results = conn.execute("SELECT job_id, level, seconds FROM results").fetchall()
            epochs = conn.execute("SELECT job_id, level, COUNT(*) FROM epochs GROUP BY job_id, level").fetchall()
        mine = [seconds or 0.0 for job_id, level, seconds in results if job_id in wanted and (job_id, level) not in skip]
        return (len(mine), sum(n for job_id, level, n in epochs if job_id in wanted and (job_id, level) not in skip),
                sum(mine))

    def sync(self) -> int:
        """Index every finished result found in the store's directories; returns how many."""
        with self._connect() as conn:
            return _index_runs(conn, self.store)


def _index_runs(conn: sqlite3.Connection, store: Path) -> int:
    found = list(_results_on_disk(store))
    for job_id, kind, spec, directory, result in found:
        conn.execute("INSERT OR REPLACE INTO jobs VALUES (?, ?, ?, ?)",
                     (job_id, kind, json.dumps(spec, sort_keys=True), str(directory)))
        _write_result(conn, job_id, result)
    return len(found)


def _prepare(conn: sqlite3.Connection) -> None:
    """WAL mode and the schema. Switching to WAL and creating tables take locks SQLite's busy
    timeout does not always wait for (two processes opening a new store at once): retry those."""
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    while True:
        try:
            if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript(SCHEMA)
            _add_new_columns(conn)
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


JSON_COLUMNS = ("provenance", "compute", "find_compute")  # JSON records, read back as dicts ({} when absent)


def _with_provenance(row: dict[str, Any]) -> dict[str, Any]:
    for column in JSON_COLUMNS:
        row[column] = json.loads(row[column]) if row.get(column) else {}
    return row


def _add_new_columns(conn: sqlite3.Connection) -> None:
    """Bring an index written by an older oneticket up to the schema (its rows keep their values)."""
    columns = {row[1] for row in conn.execute("PRAGMA table_info(results)")}
    for column in JSON_COLUMNS:
        if column in columns:
            continue
        try:
            conn.execute(f"ALTER TABLE results ADD COLUMN {column} TEXT")
        except sqlite3.OperationalError as exc:  # another process added it first
            if "duplicate column" not in str(exc):
                raise


def _write_result(conn: sqlite3.Connection, job_id: str, result: LevelResult) -> None:
    records = [json.dumps(value, sort_keys=True) if value is not None else None
               for value in (result.provenance, result.compute, result.find_compute)]
    conn.execute(
        "INSERT OR REPLACE INTO results (job_id, level, status, fraction_pruned, alive, total, test_accuracy, seconds, "
        "message, provenance, compute, find_compute) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (job_id, result.level, result.status, result.fraction_pruned, result.alive, result.total,
         result.test_accuracy, result.seconds, result.message, *records),
    )
    conn.execute("DELETE FROM epochs WHERE job_id = ? AND level = ?", (job_id, result.level))
    conn.executemany(
        "INSERT INTO epochs VALUES (?, ?, ?, ?, ?, ?, ?)",
        [(job_id, result.level, h["epoch"], h["train_loss"], h.get("test_accuracy"), h["lr"], h["seconds"])
         for h in result.history],
    )


def _results_on_disk(store: Path) -> Iterator[tuple[str, str, dict[str, Any], Path, LevelResult]]:
    for spec_file in sorted(runs_root(store).glob("*/spec.json")):
        run = RunDir(spec_file.parent)
        spec = read_record(spec_file).get("spec", {})
        for result in run.results():
            yield f"imp-{run.root.name}", "imp", spec, run.root, result
    for result_file in sorted(trainings_root(store).glob("*/result.json")):
        directory = result_file.parent
        try:
            record = read_json(directory / "spec.json")
            result = LevelResult(**read_json(result_file))
        except (OSError, ValueError, TypeError):
            continue  # a damaged or foreign file: the executor reports it when it gets to that job
        yield f"train-{directory.name}", record.get("kind", "train"), record.get("spec", {}), directory, result
