"""VGG19 as modified by Morcos et al.: no hidden fully connected layers, global average pooling."""

from __future__ import annotations

import torch
from torch import nn

from oneticket.models.base import Classifier, init_batchnorm, scaled
from oneticket.models.registry import register_model

VGG19_LAYOUT = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512)


class VGG(Classifier):
    """Conv3x3 -> BatchNorm -> ReLU blocks, 2x2 max-pool at each ``"M"``, global average pool, Linear.

    Initialization: conv and output weights Xavier normal, all biases 0, BatchNorm weight 1, bias 0.
    """

    output_name = "classifier"

    def __init__(self, layout: tuple, num_classes: int, width: float = 1.0):
        super().__init__()
        layers: list[nn.Module] = []
        channels = 3
        for item in layout:
            if item == "M":
                layers.append(nn.MaxPool2d(2))
                continue
            out = scaled(item, width)
            layers += [nn.Conv2d(channels, out, 3, padding=1), nn.BatchNorm2d(out), nn.ReLU(inplace=True)]
            channels = out
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.pool(self.features(x)), 1))

    def init_weights(self, generator: torch.Generator) -> None:
        for module in self.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                self._xavier(module, generator)
            init_batchnorm(module)

    def init_output_layer(self, layer: nn.Linear, generator: torch.Generator) -> None:
        self._xavier(layer, generator)

    @staticmethod
    def _xavier(module: nn.Conv2d | nn.Linear, generator: torch.Generator) -> None:
        nn.init.xavier_normal_(module.weight, generator=generator)
        if module.bias is not None:
            nn.init.zeros_(module.bias)


@register_model(epochs=160, milestones=(80, 120))
def vgg19(num_classes: int, width: float = 1.0) -> VGG:
    """VGG19 (16 conv layers, BatchNorm, global average pooling, one linear layer)."""
    return VGG(VGG19_LAYOUT, num_classes, width)
