"""Choosing the training device."""

from __future__ import annotations

import torch

from oneticket.errors import UserError

DEVICES = ("auto", "cpu", "cuda")


def resolve_device(name: str) -> torch.device:
    """``auto``: CUDA when available, else CPU. ``cuda`` without a GPU is an error, not a fallback."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise UserError(f"--device {name} asked for, but PyTorch sees no CUDA GPU here; use --device cpu or auto")
        return torch.device(name)
    raise UserError(f"unknown device {name!r}; choose one of: {', '.join(DEVICES)} (or cuda:N)")
