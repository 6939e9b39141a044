"""Training checkpoints: model, optimizer, schedule, progress and RNG states, written atomically.

Checkpoints are oneticket's own working files (tickets and weights use safetensors); they are read
back with ``torch.load(weights_only=True)``, which refuses arbitrary pickled objects.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from oneticket.files import write_bytes_atomic


@dataclass
class Checkpoint:
    epoch: int  # epochs completed
    model: dict[str, torch.Tensor]
    optimizer: dict[str, Any]
    scheduler: dict[str, Any]
    history: list[dict[str, float]] = field(default_factory=list)
    rng: dict[str, Any] = field(default_factory=dict)


def rng_states() -> dict[str, Any]:
    """The global torch RNG states (CPU and every CUDA device)."""
    states: dict[str, Any] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def restore_rng_states(states: dict[str, Any]) -> None:
    if "torch" in states:
        torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def save_checkpoint(path: Path, checkpoint: Checkpoint) -> None:
    payload = {
        "epoch": checkpoint.epoch,
        "model": checkpoint.model,
        "optimizer": checkpoint.optimizer,
        "scheduler": checkpoint.scheduler,
        "history": checkpoint.history,
        "rng": checkpoint.rng,
    }
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    write_bytes_atomic(path, buffer.getbuffer())  # a failed write (disk full) is an OSError, not a C++ stream error


class DamagedCheckpoint(Exception):
    """A checkpoint that cannot be resumed from: empty, truncated, garbage or of another model."""


FIELDS = {"epoch", "model", "optimizer", "scheduler", "history", "rng"}


def load_checkpoint(path: Path) -> Checkpoint:
    """Read a checkpoint back (never unpickling arbitrary objects); :class:`DamagedCheckpoint` if it
    cannot be: the message says why, without PyTorch's advice to load it unsafely."""
    path = Path(path)
    if path.stat().st_size == 0:
        raise DamagedCheckpoint(f"checkpoint {path} is empty")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # truncated, garbage, or objects weights_only refuses: all mean "cannot resume"
        raise DamagedCheckpoint(f"checkpoint {path} cannot be read (truncated, or not written by oneticket)") from None
    if not isinstance(payload, dict) or set(payload) != FIELDS or not isinstance(payload["epoch"], int):
        raise DamagedCheckpoint(f"checkpoint {path} does not hold a oneticket checkpoint")
    return Checkpoint(**payload)


def check_fits(checkpoint: Checkpoint, model: torch.nn.Module, optimizer: torch.optim.Optimizer, epochs: int,
               path: Path) -> None:
    """:class:`DamagedCheckpoint` unless ``checkpoint`` can be loaded into ``model`` and ``optimizer``
    as they are (checked before anything is loaded, so a refused checkpoint changes nothing)."""
    expected = {name: tuple(t.shape) for name, t in model.state_dict().items()}
    found = {name: tuple(t.shape) for name, t in checkpoint.model.items() if isinstance(t, torch.Tensor)}
    groups = checkpoint.optimizer.get("param_groups") if isinstance(checkpoint.optimizer, dict) else None
    mine = optimizer.state_dict()["param_groups"]
    fits = (found == expected and isinstance(groups, list) and len(groups) == len(mine)
            and all(len(g.get("params", ())) == len(m["params"]) for g, m in zip(groups, mine))
            and 0 <= checkpoint.epoch <= epochs)
    if not fits:
        raise DamagedCheckpoint(f"checkpoint {path} does not match this training (another model or settings)")


def set_aside(path: Path) -> Path:
    """Rename a damaged checkpoint beside itself (``checkpoint.pt.damaged``, ``...damaged-2``, ...),
    never deleting it; return its new path."""
    path = Path(path)
    aside, n = path.with_name(path.name + ".damaged"), 1
    while aside.exists():
        n += 1
        aside = path.with_name(f"{path.name}.damaged-{n}")
    os.replace(path, aside)
    return aside

