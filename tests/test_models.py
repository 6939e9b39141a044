"""Models: architecture, seeded initialization, the registry, the output layer."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from oneticket.errors import UserError
from oneticket.models import Classifier, create_model, model_entry, output_layer, register_model, replace_output_layer
from oneticket.models.registry import MODELS


def convs(model: nn.Module) -> list[nn.Conv2d]:
    return [m for m in model.modules() if isinstance(m, nn.Conv2d)]


def test_vgg19_layout_and_head():
    model = create_model("vgg19", 10)
    assert [c.out_channels for c in convs(model)] == [64, 64, 128, 128] + [256] * 4 + [512] * 8
    assert all(c.kernel_size == (3, 3) for c in convs(model))
    assert sum(isinstance(m, nn.BatchNorm2d) for m in model.modules()) == 16
    assert sum(isinstance(m, nn.MaxPool2d) for m in model.modules()) == 4
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert len(linears) == 1 and (linears[0].in_features, linears[0].out_features) == (512, 10)
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_vgg19_width_multiplier():
    model = create_model("vgg19", 100, width=0.125)
    assert [c.out_channels for c in convs(model)] == [8, 8, 16, 16] + [32] * 4 + [64] * 8
    assert output_layer(model)[1].in_features == 64
    assert model(torch.randn(3, 3, 32, 32)).shape == (3, 100)


def test_vgg19_initialization():
    model = create_model("vgg19", 10, seed=5)
    conv = convs(model)[10]  # 512 -> 512
    fan_in, fan_out = 512 * 9, 512 * 9
    assert conv.weight.std().item() == pytest.approx(math.sqrt(2 / (fan_in + fan_out)), rel=0.02)
    assert all(float(c.bias.detach().abs().max()) == 0.0 for c in convs(model))
    for bn in (m for m in model.modules() if isinstance(m, nn.BatchNorm2d)):
        assert torch.all(bn.weight == 1) and torch.all(bn.bias == 0)
    head = output_layer(model)[1]
    assert float(head.bias.detach().abs().max()) == 0.0
    assert head.weight.std().item() == pytest.approx(math.sqrt(2 / (512 + 10)), rel=0.15)


def test_resnet50_is_the_standard_network():
    model = create_model("resnet50", 1000)
    assert sum(p.numel() for p in model.parameters()) == 25_557_032  # torchvision's resnet50
    assert len(convs(model)) == 53
    stem = convs(model)[0]
    assert stem.kernel_size == (7, 7) and stem.stride == (2, 2)
    assert any(isinstance(m, nn.MaxPool2d) for m in model.stem)
    conv = model.layer3[1].conv2
    fan_out = conv.out_channels * 9
    assert conv.weight.std().item() == pytest.approx(math.sqrt(2 / fan_out), rel=0.03)  # Kaiming, fan_out
    assert torch.all(model.layer1[0].bn3.weight == 1)


def test_resnet50_cifar_stem_and_width():
    model = create_model("resnet50", 10, width=0.0625, stem="cifar")
    stem = convs(model)[0]
    assert stem.kernel_size == (3, 3) and stem.stride == (1, 1)
    assert not any(isinstance(m, nn.MaxPool2d) for m in model.modules())
    assert output_layer(model)[1].in_features == 4 * 32  # 512 * 1/16 planes * expansion 4... = 128
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_init_is_seeded_and_ignores_the_global_rng():
    torch.manual_seed(1)
    a = create_model("resnet50", 10, width=0.0625, seed=7).state_dict()
    torch.manual_seed(2)
    b = create_model("resnet50", 10, width=0.0625, seed=7).state_dict()
    c = create_model("resnet50", 10, width=0.0625, seed=8).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["layer1.0.conv2.weight"], c["layer1.0.conv2.weight"])
    assert not torch.equal(a["fc.weight"], c["fc.weight"])


def test_a_new_model_is_one_decorated_function():
    class Tiny(Classifier):
        output_name = "head"

        def __init__(self, num_classes: int, width: float):
            super().__init__()
            self.conv = nn.Conv2d(3, max(1, int(4 * width)), 3)
            self.head = nn.Linear(max(1, int(4 * width)), num_classes)

        def forward(self, x):
            return self.head(self.conv(x).mean((2, 3)))

        def init_weights(self, generator):
            nn.init.normal_(self.conv.weight, generator=generator)

    @register_model(epochs=4, milestones=(2,))
    def tiny_test_net(num_classes: int, width: float = 1.0, depth: int = 1) -> Tiny:
        return Tiny(num_classes, width)

    try:
        model = create_model("tiny_test_net", 3, width=2.0, depth=2)
        assert model(torch.randn(1, 3, 8, 8)).shape == (1, 3)
        assert model_entry("tiny_test_net").options == {"depth": 1}
        assert model_entry("tiny_test_net").milestones == (2,)
        with pytest.raises(UserError, match="does not take"):
            create_model("tiny_test_net", 3, colour="red")
    finally:
        MODELS.pop("tiny_test_net")


def test_unknown_model_and_bad_width_are_user_errors():
    with pytest.raises(UserError, match="unknown model 'vgg16'"):
        create_model("vgg16", 10)
    with pytest.raises(UserError, match="width"):
        create_model("vgg19", 10, width=0)


def test_replace_output_layer_changes_only_the_head():
    model = create_model("vgg19", 10, width=0.125, seed=1)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    new = replace_output_layer(model, 100, seed=3)
    name, head = output_layer(model)
    assert head is new and name == "classifier" and head.out_features == 100
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before if not k.startswith("classifier."))
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 100)
    again = create_model("vgg19", 10, width=0.125, seed=1)
    assert torch.equal(replace_output_layer(again, 100, seed=3).weight, head.weight)  # seeded
    assert not torch.equal(replace_output_layer(again, 100, seed=4).weight, head.weight)


def test_resnet_output_layer_is_fc():
    model = create_model("resnet50", 10, width=0.0625)
    name, head = output_layer(model)
    assert name == "fc" and head is model.fc
    replace_output_layer(model, 7, seed=0)
    assert model.fc.out_features == 7 and model(torch.randn(2, 3, 32, 32)).shape == (2, 7)
