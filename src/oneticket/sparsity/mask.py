"""Masks: one boolean tensor per prunable weight, and which weights are prunable.

Prunable weights are the ``weight`` of every ``Conv2d`` and ``Linear`` module, found by module type
(never by parameter name, so BatchNorm weights are never included), minus the output layer unless
``include_output`` is set. Biases are never prunable.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import torch
from torch import nn

from oneticket.models import output_layer


def prunable_weights(model: nn.Module, include_output: bool = False) -> dict[str, nn.Parameter]:
    """``{"<module>.weight": parameter}`` for every prunable weight of ``model``, in module order
    (with ``include_output``, any model with Conv2d and Linear layers, not only oneticket's)."""
    head = None if include_output else output_layer(model)[1]
    return {
        f"{name}.weight": module.weight
        for name, module in model.named_modules()
        if isinstance(module, (nn.Conv2d, nn.Linear)) and (include_output or module is not head)
    }


@dataclass(frozen=True)
class LayerSparsity:
    name: str
    shape: tuple[int, ...]
    total: int
    alive: int

    @property
    def fraction_pruned(self) -> float:
        return 1.0 - self.alive / self.total if self.total else 0.0


class Mask(Mapping[str, torch.Tensor]):
    """An immutable mapping from weight name to a boolean tensor (True = kept)."""

    def __init__(self, tensors: Mapping[str, torch.Tensor]):
        for name, tensor in tensors.items():
            if tensor.dtype != torch.bool:
                raise TypeError(f"mask for {name} must be bool, got {tensor.dtype}")
        self._tensors = dict(tensors)

    @classmethod
    def ones(cls, model: nn.Module, include_output: bool = False) -> Mask:
        """Nothing pruned: a True tensor for every prunable weight of ``model``."""
        return cls({k: torch.ones_like(w, dtype=torch.bool) for k, w in prunable_weights(model, include_output).items()})

    def __getitem__(self, name: str) -> torch.Tensor:
        return self._tensors[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._tensors)

    def __len__(self) -> int:
        return len(self._tensors)

    def __repr__(self) -> str:
        return f"Mask({len(self)} tensors, {self.alive()}/{self.total()} kept)"

    def total(self) -> int:
        return sum(t.numel() for t in self._tensors.values())

    def alive(self) -> int:
        return int(sum(int(t.sum()) for t in self._tensors.values()))

    def fraction_pruned(self) -> float:
        total = self.total()
        return 1.0 - self.alive() / total if total else 0.0

    def layers(self) -> list[LayerSparsity]:
        """Per-layer counts (the sparsity report)."""
        return [LayerSparsity(k, tuple(t.shape), t.numel(), int(t.sum())) for k, t in self._tensors.items()]

    def to(self, device: torch.device | str) -> Mask:
        return Mask({k: t.to(device) for k, t in self._tensors.items()})

    def equal(self, other: Mask) -> bool:
        return self.keys() == other.keys() and all(torch.equal(self[k].cpu(), other[k].cpu()) for k in self)

    def check_fits(self, model: nn.Module) -> None:
        """Raise ``ValueError`` unless every mask tensor names a Conv/Linear weight of the same shape."""
        weights = prunable_weights(model, include_output=True)
        for name, tensor in self._tensors.items():
            if name not in weights:
                raise ValueError(f"mask entry {name} is not a prunable weight of {type(model).__name__}")
            if tuple(weights[name].shape) != tuple(tensor.shape):
                raise ValueError(f"mask entry {name} has shape {tuple(tensor.shape)}, the model's weight {tuple(weights[name].shape)}")


class MaskedWeights:
    """Keeps the pruned weights of a model at exactly 0.0, with one fused in-place multiply."""

    def __init__(self, model: nn.Module, mask: Mask):
        mask.check_fits(model)
        params = dict(model.named_parameters())
        self.params = [params[name] for name in mask]
        self.factors = [mask[name].to(device=params[name].device, dtype=params[name].dtype) for name in mask]

    @torch.no_grad()
    def apply(self) -> None:
        """Zero every pruned weight in place (call after each optimizer step)."""
        if self.params:
            torch._foreach_mul_(self.params, self.factors)
