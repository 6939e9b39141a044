"""ResNet50 (He et al.): bottleneck blocks 3-4-6-3, expansion 4, torchvision's layout (stride on the 3x3)."""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from oneticket.errors import UserError
from oneticket.models.base import Classifier, default_linear_init, init_batchnorm, scaled
from oneticket.models.registry import register_model

Stem = Literal["imagenet", "cifar"]
STEMS = ("imagenet", "cifar")


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, in_channels: int, planes: int, stride: int):
        super().__init__()
        out = planes * self.expansion
        self.conv1 = nn.Conv2d(in_channels, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, out, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out)
        self.relu = nn.ReLU(inplace=True)
        self.downsample: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out:
            self.downsample = nn.Sequential(nn.Conv2d(in_channels, out, 1, stride=stride, bias=False), nn.BatchNorm2d(out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        return self.relu(y + self.downsample(x))


class ResNet(Classifier):
    """Bottleneck ResNet. ``stem="imagenet"``: 7x7 stride-2 conv + 3x3 stride-2 max-pool (the standard
    network); ``stem="cifar"``: 3x3 stride-1 conv, no max-pool.

    Initialization: conv weights Kaiming normal (fan_out, relu), BatchNorm weight 1, bias 0, output
    layer PyTorch's default ``nn.Linear`` rule (as torchvision's ResNet).
    """

    output_name = "fc"

    def __init__(self, blocks: tuple[int, ...], num_classes: int, width: float = 1.0, stem: Stem = "imagenet"):
        super().__init__()
        if stem not in STEMS:
            raise UserError(f"--stem must be one of {', '.join(STEMS)}, got {stem!r}")
        base = scaled(64, width)
        if stem == "imagenet":
            self.stem = nn.Sequential(
                nn.Conv2d(3, base, 7, stride=2, padding=3, bias=False),
                nn.BatchNorm2d(base),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(3, stride=2, padding=1),
            )
        else:
            self.stem = nn.Sequential(nn.Conv2d(3, base, 3, padding=1, bias=False), nn.BatchNorm2d(base), nn.ReLU(inplace=True))
        stages = []
        channels = base
        for index, count in enumerate(blocks):
            planes = scaled(64 * 2**index, width)
            stride = 1 if index == 0 else 2
            stage = []
            for block in range(count):
                stage.append(Bottleneck(channels, planes, stride if block == 0 else 1))
                channels = planes * Bottleneck.expansion
            stages.append(nn.Sequential(*stage))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.pool(x), 1))

    def init_weights(self, generator: torch.Generator) -> None:
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu", generator=generator)
            init_batchnorm(module)
        default_linear_init(self.fc, generator)


@register_model(epochs=90, milestones=(50, 65, 80))
def resnet50(num_classes: int, width: float = 1.0, stem: Stem = "imagenet") -> ResNet:
    """ResNet50 (bottleneck, 3-4-6-3). ``stem``: "imagenet" (standard) or "cifar" (3x3, no max-pool)."""
    return ResNet((3, 4, 6, 3), num_classes, width, stem)
