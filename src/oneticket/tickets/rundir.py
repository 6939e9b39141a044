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

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from oneticket.errors import UserError
from oneticket.files import read_json, write_json_atomic
from oneticket.tickets.spec import ImpSpec


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

    @property
    def diverged(self) -> bool:
        return self.status == "diverged"


def runs_root(store: Path) -> Path:
    return Path(store).expanduser() / "runs"


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
        path = self.result_file(level)
        if not path.exists():
            return None
        try:
            return LevelResult(**read_json(path))
        except (json.JSONDecodeError, TypeError) as exc:
            raise UserError(f"{path} is unreadable ({exc}); delete it to recompute level {level}") from None

    def write_result(self, result: LevelResult) -> None:
        write_json_atomic(self.result_file(result.level), asdict(result))

    def results(self) -> list[LevelResult]:
        """Finished levels, in order, up to the first missing one."""
        found = []
        while (result := self.read_result(len(found))) is not None:
            found.append(result)
        return found

    def write_or_check_spec(self, spec: ImpSpec) -> None:
        record: dict[str, Any] = {"run_id": spec.run_id(), "hashed": spec.hashed(), "spec": spec.model_dump()}
        if self.spec_file.exists():
            stored = read_json(self.spec_file)
            if stored.get("hashed") != record["hashed"]:
                raise UserError(f"{self.root} holds a different run than this spec; move it away or use another --store")
        write_json_atomic(self.spec_file, record)
