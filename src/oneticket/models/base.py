"""What every oneticket model is: a classifier that knows its output layer and how to initialize."""

from __future__ import annotations

import abc
import math
from typing import ClassVar

import torch
from torch import nn


class Classifier(nn.Module, abc.ABC):
    """An image classifier with a single named ``nn.Linear`` output layer.

    Subclasses set ``output_name`` and implement :meth:`init_weights`; the output-layer rule
    (:meth:`init_output_layer`) is PyTorch's default ``nn.Linear`` rule unless overridden.
    """

    output_name: ClassVar[str] = "classifier"

    @abc.abstractmethod
    def init_weights(self, generator: torch.Generator) -> None:
        """Initialize every parameter and buffer, drawing only from ``generator``."""

    def init_output_layer(self, layer: nn.Linear, generator: torch.Generator) -> None:
        default_linear_init(layer, generator)


def default_linear_init(layer: nn.Linear, generator: torch.Generator) -> None:
    """PyTorch's default ``nn.Linear`` initialization, drawn from ``generator``."""
    nn.init.kaiming_uniform_(layer.weight, a=math.sqrt(5), generator=generator)
    if layer.bias is not None:
        bound = 1 / math.sqrt(layer.in_features)
        nn.init.uniform_(layer.bias, -bound, bound, generator=generator)


def init_batchnorm(module: nn.Module) -> None:
    """BatchNorm weight 1, bias 0 (and fresh running statistics)."""
    if isinstance(module, nn.modules.batchnorm._BatchNorm):
        module.reset_parameters()


def scaled(channels: int, width: float) -> int:
    """``channels * width``, rounded, at least 1."""
    return max(1, int(round(channels * width)))
