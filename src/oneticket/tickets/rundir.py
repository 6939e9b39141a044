"""The layout of an IMP run directory and its per-level result records.

::

    <store>/runs/<run id>/
        spec.json                  the run's spec (hashed fields -> run id)
        rewind.safetensors         model state at the rewind point of the dense run
        level_03/
            ticket.safetensors     mask + rewind-point weights + metadata
            trained.safetensors    weights at the end of this level's training
            result.json            written last: its presence means the level is finished
            checkpoint.pt          while the level trains (removed when it finishes)
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from oneticket.errors import UserError
from oneticket.files import read_json, read_record, write_json_atomic
from oneticket.provenance import provenance
from oneticket.sparsity import Mask
from oneticket.tickets.spec import ImpSpec
from oneticket.training import Compute, TrainResult


@dataclass(frozen=True)
class LevelResult:
    level: int
    status: str  # "done" or "diverged"
    fraction_pruned: float
    alive: int
    total: int
    test_accuracy: float | None
    seconds: float
    history: list[dict[str, float]] = field(default_factory=list)
    message: str | None = None
    ticket: str | None = None  # relative to the run directory
    trained: str | None = None
    provenance: dict[str, Any] | None = None  # what computed it (see oneticket.provenance); None in older results
    ticket_sha256: str | None = None  # content digests of this level's ticket and trained weights (None in older results)
    trained_sha256: str | None = None
    derived_from: str | None = None  # chain_link() of the level it was pruned from (None at level 0 and in older results)
    compute: dict[str, Any] | None = None  # what this training cost (oneticket.training.Compute; None in older results)
    find_compute: dict[str, Any] | None = None  # what finding the ticket it trained cost (None in older results)

    @property
    def diverged(self) -> bool:
        return self.status == "diverged"

    @classmethod
    def of_training(cls, level: int, mask: Mask, outcome: TrainResult, seconds: float,
                    device: torch.device | str = "cpu", images: tuple[int, int] | None = None,
                    compute: Compute | None = None) -> LevelResult:
        """The record of one training of ``mask``'s weights (an IMP level or a ticket training) on
        ``device``, with ``images`` = (training, test) images it used (a subset's files and the
        official ones give different counts under the same settings)."""
        made: dict[str, Any] = provenance(device)
        if images is not None:
            made["train_images"], made["test_images"] = images
        return cls(
            level=level,
            status="diverged" if outcome.diverged else "done",
            fraction_pruned=mask.fraction_pruned(),
            alive=mask.alive(),
            total=mask.total(),
            test_accuracy=outcome.test_accuracy,
            seconds=seconds,
            history=[asdict(h) for h in outcome.history],
            message=outcome.diverged,
            provenance=made,
            compute=None if compute is None else compute.as_dict(),
        )


def chain_link(result: LevelResult) -> str | None:
    """What the next level records as ``derived_from``: a digest of this level's ticket and trained weights."""
    if result.ticket_sha256 is None or result.trained_sha256 is None:
        return None
    return hashlib.sha256(f"{result.ticket_sha256}:{result.trained_sha256}".encode()).hexdigest()


def read_result_file(path: Path, remedy: str) -> LevelResult | None:
    """A ``result.json``, or None when there is none yet; a damaged one is a one-line error."""
    if not path.exists():
        return None
    try:
        return LevelResult(**read_json(path))
    except (json.JSONDecodeError, TypeError) as exc:
        raise UserError(f"{path} is unreadable ({exc}); {remedy}") from None


def runs_root(store: Path) -> Path:
    return Path(store).expanduser() / "runs"


def imported_root(store: Path) -> Path:
    """Where ``oneticket tickets import`` keeps tickets, laid out like run directories."""
    return Path(store).expanduser() / "imported"


def find_ticket_file(store: Path, run_id: str, level: int) -> Path | None:
    """The ticket of ``run_id`` at ``level`` in ``store`` (found by a run or imported), if present."""
    for root in (runs_root(store), imported_root(store)):
        path = RunDir(root / run_id).ticket_file(level)
        if path.exists():
            return path
    return None


class RunDir:
    def __init__(self, root: Path):
        self.root = Path(root)

    @classmethod
    def for_spec(cls, store: Path, spec: ImpSpec) -> RunDir:
        return cls(runs_root(store) / spec.run_id())

    @property
    def spec_file(self) -> Path:
        return self.root / "spec.json"

    @property
    def rewind_file(self) -> Path:
        return self.root / "rewind.safetensors"

    def level_dir(self, level: int) -> Path:
        return self.root / f"level_{level:02d}"

    def ticket_file(self, level: int) -> Path:
        return self.level_dir(level) / "ticket.safetensors"

    def trained_file(self, level: int) -> Path:
        return self.level_dir(level) / "trained.safetensors"

    def result_file(self, level: int) -> Path:
        return self.level_dir(level) / "result.json"

    def checkpoint_file(self, level: int) -> Path:
        return self.level_dir(level) / "checkpoint.pt"

    def read_result(self, level: int) -> LevelResult | None:
        return read_result_file(self.result_file(level), f"delete it to recompute level {level}")

    def write_result(self, result: LevelResult) -> None:
        write_json_atomic(self.result_file(result.level), asdict(result))

    def results(self) -> list[LevelResult]:
        """Finished levels, in order, up to the first missing one."""
        found = []
        while (result := self.read_result(len(found))) is not None:
            found.append(result)
        return found

    def finished_results(self, spec: ImpSpec) -> list[LevelResult] | None:
        """Every level's result when this folder holds ``spec``'s run and it is finished (through
        its last level, or stopped at a diverged one); None otherwise. Reads only."""
        if read_record(self.spec_file).get("hashed") != spec.hashed():
            return None
        results = []
        for level in range(spec.levels + 1):
            result = self.read_result(level)
            if result is None:
                return None
            results.append(result)
            if result.diverged:
                break
        return results

    def write_or_check_spec(self, spec: ImpSpec) -> None:
        record: dict[str, Any] = {"run_id": spec.run_id(), "hashed": spec.hashed(), "spec": spec.model_dump()}
        if self.spec_file.exists():
            stored = read_record(self.spec_file) or record  # an empty or damaged spec.json is written again
            if stored.get("hashed") != record["hashed"]:
                raise UserError(f"{self.root} holds a different run than this spec; move it away or use another --store")
        write_json_atomic(self.spec_file, record)
