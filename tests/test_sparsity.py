"""Prunable weights, magnitude pruning, random permutations, masked weights."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from oneticket.models import create_model
from oneticket.sparsity import Mask, MaskedWeights, magnitude_prune, permute_mask, prunable_weights


def random_weights(shapes: dict[str, tuple[int, ...]], seed: int) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return {k: torch.randn(shape, generator=gen) for k, shape in shapes.items()}


def ones(weights: dict[str, torch.Tensor]) -> Mask:
    return Mask({k: torch.ones_like(v, dtype=torch.bool) for k, v in weights.items()})


def test_vgg_prunable_weights_are_conv_weights_only():
    model = create_model("vgg19", 10, width=0.125)
    names = list(prunable_weights(model))
    assert len(names) == 16 and all(n.startswith("features.") and n.endswith(".weight") for n in names)
    modules = dict(model.named_modules())
    assert all(isinstance(modules[n.removesuffix(".weight")], nn.Conv2d) for n in names)
    # BatchNorm weights are called "weight" too; they are never prunable.
    bn_weights = [f"{k}.weight" for k, m in modules.items() if isinstance(m, nn.BatchNorm2d)]
    assert len(bn_weights) == 16 and not set(bn_weights) & set(names)
    assert "classifier.weight" not in names and not any("bias" in n for n in names)


def test_output_layer_is_prunable_only_when_asked():
    model = create_model("resnet50", 10, width=0.0625)
    default, with_head = prunable_weights(model), prunable_weights(model, include_output=True)
    assert len(default) == 53 and "fc.weight" not in default
    assert set(with_head) - set(default) == {"fc.weight"}
    assert "fc.weight" in Mask.ones(model, include_output=True) and "fc.weight" not in Mask.ones(model)


def test_global_pruning_removes_the_smallest_magnitudes_of_the_survivors():
    weights = random_weights({"a": (40, 10), "b": (300,), "c": (8, 4, 3, 3)}, seed=0)
    mask = ones(weights)
    first = magnitude_prune(weights, mask, 0.2)
    total = mask.total()
    assert first.alive() == total - round(0.2 * total)
    kept = torch.cat([weights[k][first[k]].abs() for k in weights])
    cut = torch.cat([weights[k][~first[k]].abs() for k in weights])
    assert kept.min() >= cut.max()
    # Large negative weights survive: pruning is by magnitude, not by value.
    assert any(bool((weights[k][first[k]] < -1.0).any()) for k in weights)
    # Next level: only survivors count, and pruned weights stay pruned even if large now.
    weights2 = {k: v.clone() for k, v in weights.items()}
    weights2["b"][~first["b"]] = 100.0
    second = magnitude_prune(weights2, first, 0.2)
    assert second.alive() == first.alive() - round(0.2 * first.alive())
    assert not any(bool((second[k] & ~first[k]).any()) for k in weights)


def test_layerwise_pruning_removes_the_rate_in_every_layer():
    weights = random_weights({"a": (40, 10), "b": (300,), "c": (8, 4, 3, 3)}, seed=1)
    mask = magnitude_prune(weights, ones(weights), 0.2, layerwise=True)
    for k, w in weights.items():
        assert int(mask[k].sum()) == w.numel() - round(0.2 * w.numel())
        assert w[mask[k]].abs().min() >= w[~mask[k]].abs().max()


def test_one_shot_pruning_at_a_large_rate():
    weights = random_weights({"a": (1000,)}, seed=2)
    mask = magnitude_prune(weights, ones(weights), 0.9)
    assert mask.alive() == 100 and mask.fraction_pruned() == pytest.approx(0.9)


@settings(max_examples=40, deadline=None)
@given(
    shapes=st.lists(st.integers(1, 60), min_size=1, max_size=5),
    levels=st.integers(1, 12),
    layerwise=st.booleans(),
    seed=st.integers(0, 1000),
)
def test_fraction_pruned_after_l_levels_is_one_minus_0_8_to_the_l(shapes, levels, layerwise, seed):
    weights = random_weights({f"w{i}": (n, 3) for i, n in enumerate(shapes)}, seed)
    mask = ones(weights)
    total = mask.total()
    for _ in range(levels):
        mask = magnitude_prune(weights, mask, 0.2, layerwise=layerwise)
    slack = levels * (len(shapes) if layerwise else 1)  # rounding: at most half a weight per cut
    assert abs((total - mask.alive()) - total * (1 - 0.8**levels)) <= slack


def test_global_permutation_keeps_total_and_touches_only_masked_weights():
    model = create_model("vgg19", 10, width=0.125)
    weights = {k: v.detach() for k, v in prunable_weights(model).items()}
    ticket = magnitude_prune(weights, Mask.ones(model), 0.6)
    shuffled = permute_mask(ticket, seed=11)
    assert list(shuffled) == list(ticket) and "classifier.weight" not in shuffled
    assert shuffled.alive() == ticket.alive()
    per_layer = [int(shuffled[k].sum()) for k in ticket], [int(ticket[k].sum()) for k in ticket]
    assert per_layer[0] != per_layer[1]  # a global shuffle moves survivors between layers
    assert permute_mask(ticket, seed=11).equal(shuffled) and not permute_mask(ticket, seed=12).equal(shuffled)


def test_layerwise_permutation_keeps_every_layer_count():
    weights = random_weights({"a": (50, 4), "b": (30,), "c": (6, 6)}, seed=3)
    ticket = magnitude_prune(weights, ones(weights), 0.5)
    shuffled = permute_mask(ticket, seed=0, layerwise=True)
    assert all(int(shuffled[k].sum()) == int(ticket[k].sum()) for k in ticket)
    assert not shuffled.equal(ticket)


def test_masked_weights_zero_exactly_the_pruned_entries():
    model = create_model("vgg19", 10, width=0.125, seed=0)
    weights = {k: v.detach() for k, v in prunable_weights(model).items()}
    mask = magnitude_prune(weights, Mask.ones(model), 0.5)
    before = {k: v.detach().clone() for k, v in model.state_dict().items()}
    MaskedWeights(model, mask).apply()
    after = model.state_dict()
    for name in mask:
        assert torch.all(after[name][~mask[name]] == 0.0)
        assert torch.equal(after[name][mask[name]], before[name][mask[name]])
    untouched = [k for k in before if k not in mask]
    assert all(torch.equal(before[k], after[k]) for k in untouched)  # BN, biases, classifier


def test_sparsity_report_counts():
    weights = random_weights({"a": (10, 10), "b": (50,)}, seed=4)
    mask = magnitude_prune(weights, ones(weights), 0.5, layerwise=True)
    layers = mask.layers()
    assert [(l.name, l.total, l.alive) for l in layers] == [("a", 100, 50), ("b", 50, 25)]
    assert layers[0].fraction_pruned == 0.5 and mask.fraction_pruned() == 0.5


def test_mask_that_does_not_fit_is_refused():
    model = create_model("vgg19", 10, width=0.125)
    other = Mask.ones(create_model("vgg19", 10, width=0.25))
    with pytest.raises(ValueError, match="shape"):
        other.check_fits(model)
