"""Transfer and random tickets (METHOD.md "Transfer", "Random ticket"), checked on values."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from oneticket.data import DeviceData, load_dataset
from oneticket.models import create_model, output_layer
from oneticket.seeding import derive_seed
from oneticket.sparsity import Mask, magnitude_prune, prunable_weights
from oneticket.tickets import (
    Ticket,
    TicketInfo,
    TrainingDir,
    TrainSpec,
    random_mask,
    ticket_model,
    train_ticket,
    variant,
)

WIDTH = 0.0625


def make_ticket(num_classes: int = 10, level: int = 2, prune_output: bool = False, seed: int = 3) -> Ticket:
    """A ticket as IMP makes one: magnitude-pruned mask (level x 20%) over a seeded model's state."""
    model = create_model("vgg19", num_classes, WIDTH, seed)
    weights = {k: v.detach() for k, v in prunable_weights(model, prune_output).items()}
    mask = Mask.ones(model, prune_output)
    for _ in range(level):
        mask = magnitude_prune(weights, mask, 0.2, layerwise=False)
    info = TicketInfo(model="vgg19", width=WIDTH, model_options={}, num_classes=num_classes, dataset="cifar10",
                      optimizer="sgd", level=level, rate=0.2, layerwise=False, prune_output=prune_output,
                      fraction_pruned=mask.fraction_pruned(), rewind="1ep", test_accuracy=0.5, run_id="0123456789abcdef",
                      seeds={"init": derive_seed(0, "init")})
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    return Ticket(info, mask, state)


def spec_for(dataset: str, kind: str = "transfer", seed: int = 0, **extra) -> TrainSpec:
    mask, weights = variant(kind)
    return TrainSpec(source="0123456789abcdef", level=2, model="vgg19", dataset=dataset, seed=seed, mask=mask,
                     weights=weights, **extra)


def test_transfer_to_more_classes_replaces_only_the_head():
    ticket = make_ticket(num_classes=10)
    model, mask = ticket_model(ticket, spec_for("cifar100"))
    head_name, head = output_layer(model)
    assert head.out_features == 100
    for name, value in model.state_dict().items():
        if name.startswith(head_name + "."):
            continue
        assert torch.equal(value, ticket.state[name]), name  # every other weight and buffer is the ticket's
    assert mask.equal(ticket.mask)  # the mask travels unchanged (not recomputed on the target)
    assert model.eval()(torch.zeros(2, 3, 32, 32)).shape == (2, 100)
    # the new head is seeded: same spec -> same head, another seed -> another head
    again, _ = ticket_model(ticket, spec_for("cifar100"))
    other, _ = ticket_model(ticket, spec_for("cifar100", seed=1))
    assert torch.equal(output_layer(again)[1].weight, head.weight)
    assert not torch.equal(output_layer(other)[1].weight, head.weight)


def test_transfer_with_the_same_class_count_keeps_the_head():
    ticket = make_ticket(num_classes=10)
    model, mask = ticket_model(ticket, spec_for("svhn"))
    head_name, head = output_layer(model)
    assert head.out_features == 10
    for name, value in model.state_dict().items():  # the head included
        assert torch.equal(value, ticket.state[name]), name
    assert torch.equal(head.weight, ticket.state[f"{head_name}.weight"])
    assert mask.equal(ticket.mask)


def test_transfer_to_fewer_classes():
    ticket = make_ticket(num_classes=100)
    model, _ = ticket_model(ticket, spec_for("digits"))
    assert output_layer(model)[1].out_features == 10
    assert model.eval()(torch.zeros(1, 3, 32, 32)).shape == (1, 10)


def test_random_ticket_permutes_globally_and_reinitializes():
    ticket = make_ticket(level=3)
    model, mask = ticket_model(ticket, spec_for("cifar10", "random"))
    assert mask.keys() == ticket.mask.keys()
    assert mask.alive() == ticket.mask.alive() and mask.total() == ticket.mask.total()
    per_layer = [int(mask[k].sum()) for k in mask]
    assert per_layer != [int(ticket.mask[k].sum()) for k in mask]  # global: per-layer counts move
    assert not mask.equal(ticket.mask)
    head_name = output_layer(model)[0] + ".weight"
    assert head_name not in mask  # the output layer is not pruned, so it is never in the permutation
    # fresh initialization: no weight is the ticket's, and the init seed is not the ticket's init seed
    spec = spec_for("cifar10", "random")
    assert spec.seeds()["init"] != ticket.info.seeds["init"]
    for name, value in model.state_dict().items():
        if value.is_floating_point() and name.endswith("weight") and "features" in name and value.dim() > 1:
            assert not torch.equal(value, ticket.state[name]), name
    # seeded: the same spec gives the same mask and weights, another seed another mask
    again, again_mask = ticket_model(ticket, spec)
    assert again_mask.equal(mask)
    assert all(torch.equal(a, b) for a, b in zip(again.state_dict().values(), model.state_dict().values()))
    _, other_mask = ticket_model(ticket, spec_for("cifar10", "random", seed=1))
    assert not other_mask.equal(mask)


def test_random_layerwise_keeps_every_layer_count():
    ticket = make_ticket(level=3)
    _, mask = ticket_model(ticket, spec_for("cifar10", "random-layerwise"))
    assert [int(mask[k].sum()) for k in mask] == [int(ticket.mask[k].sum()) for k in mask]
    assert not mask.equal(ticket.mask)


def test_half_random_variants():
    ticket = make_ticket(level=2)
    model, mask = ticket_model(ticket, spec_for("cifar10", "random-mask"))  # random mask, ticket weights
    assert not mask.equal(ticket.mask) and mask.alive() == ticket.mask.alive()
    assert all(torch.equal(v, ticket.state[k]) for k, v in model.state_dict().items())
    model, mask = ticket_model(ticket, spec_for("cifar10", "random-weights"))  # ticket mask, random weights
    assert mask.equal(ticket.mask)
    assert not torch.equal(model.state_dict()["features.0.weight"], ticket.state["features.0.weight"])


def test_random_mask_keeps_a_pruned_output_layer_to_itself():
    ticket = make_ticket(level=3, prune_output=True)
    head = "classifier.weight"
    assert head in ticket.mask
    shuffled = random_mask(ticket.mask, seed=5, output_name=head)
    assert int(shuffled[head].sum()) == int(ticket.mask[head].sum())
    assert shuffled.alive() == ticket.mask.alive()


def test_trained_ticket_keeps_pruned_weights_at_zero(tmp_path: Path):
    ticket = make_ticket(level=3)
    data = DeviceData(load_dataset("digits", train_size=200, subset_seed=0), "cpu", 64)
    spec = spec_for("digits", epochs=1, batch_size=64, train_size=200)
    directory = TrainingDir(tmp_path / "t")
    result = train_ticket(spec, ticket, directory, data)
    assert result.status == "done" and result.alive == ticket.mask.alive()
    assert result.fraction_pruned == pytest.approx(ticket.info.fraction_pruned)
    assert directory.result_file.exists() and not directory.checkpoint_file.exists()
    assert train_ticket(spec, ticket, directory, data) == result  # finished: read back, not retrained


def test_spec_ids_depend_on_every_field():
    a = spec_for("cifar10")
    assert a.job_id() == spec_for("cifar10").job_id()
    assert len({a.job_id(), spec_for("cifar100").job_id(), spec_for("cifar10", "random").job_id(),
                spec_for("cifar10", seed=1).job_id()}) == 4
