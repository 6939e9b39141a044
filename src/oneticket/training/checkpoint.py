"""Training checkpoints: model, optimizer, schedule, progress and RNG states, written atomically.

Checkpoints are oneticket's own working files (tickets and weights use safetensors); they are read
back with ``torch.load(weights_only=True)``, which refuses arbitrary pickled objects.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from oneticket.files import atomic_path


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
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def load_checkpoint(path: Path) -> Checkpoint:
    payload = torch.load(path, map_location="cpu", weights_only=True)
    return Checkpoint(**payload)

