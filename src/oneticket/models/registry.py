"""The model registry: a new model is one decorated function.

::

    @register_model(epochs=160, milestones=(80, 120))
    def vgg19(num_classes: int, width: float = 1.0) -> Classifier: ...

The decorator records the model's training recipe (the paper's epochs and learning-rate
milestones) and the keyword options the function takes beyond ``num_classes`` and ``width``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from oneticket.errors import UserError
from oneticket.models.base import Classifier

Factory = Callable[..., Classifier]


@dataclass(frozen=True)
class ModelEntry:
    name: str
    factory: Factory
    epochs: int
    milestones: tuple[int, ...]
    options: dict[str, Any]  # option name -> default


MODELS: dict[str, ModelEntry] = {}


def register_model(epochs: int, milestones: tuple[int, ...]) -> Callable[[Factory], Factory]:
    """Register ``fn(num_classes, width=1.0, **options)`` under its own name."""

    def decorate(fn: Factory) -> Factory:
        params = inspect.signature(fn).parameters
        options = {k: p.default for k, p in params.items() if k not in ("num_classes", "width")}
        MODELS[fn.__name__] = ModelEntry(fn.__name__, fn, epochs, tuple(milestones), options)
        return fn

    return decorate


def model_names() -> list[str]:
    return list(MODELS)


def model_entry(name: str) -> ModelEntry:
    try:
        return MODELS[name]
    except KeyError:
        raise UserError(f"unknown model {name!r}; choose one of: {', '.join(MODELS)}") from None


def check_options(name: str, options: dict[str, Any]) -> None:
    """Raise a :class:`UserError` for options that ``name`` does not take."""
    entry = model_entry(name)
    unknown = sorted(set(options) - set(entry.options))
    if unknown:
        takes = ", ".join(entry.options) or "no options"
        raise UserError(f"model {name} does not take {', '.join(unknown)} (it takes {takes})")


def create_model(name: str, num_classes: int, width: float = 1.0, seed: int = 0, **options: Any) -> Classifier:
    """Build model ``name`` and initialize every parameter from ``seed`` (global RNG untouched)."""
    check_options(name, options)
    if width <= 0:
        raise UserError(f"--width must be positive, got {width}")
    model = model_entry(name).factory(num_classes, width, **options)
    model.init_weights(torch.Generator().manual_seed(seed))
    return model


def output_layer(model: nn.Module) -> tuple[str, nn.Linear]:
    """The output (classifier) layer and its module name."""
    if not isinstance(model, Classifier):
        raise TypeError(f"{type(model).__name__} is not a oneticket Classifier")
    return model.output_name, model.get_submodule(model.output_name)


def replace_output_layer(model: nn.Module, num_classes: int, seed: int) -> nn.Linear:
    """Put a freshly initialized output layer with ``num_classes`` outputs in place (seeded)."""
    name, old = output_layer(model)
    new = nn.Linear(old.in_features, num_classes, device=old.weight.device, dtype=old.weight.dtype)
    model.init_output_layer(new, torch.Generator().manual_seed(seed))
    model.set_submodule(name, new)
    return new
