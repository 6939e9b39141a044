"""Ticket files: round trip, metadata, no pickle, damaged/tampered/mismatched files."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest
import torch

from oneticket.errors import TicketFileError
from oneticket.models import create_model
from oneticket.sparsity import Mask, magnitude_prune, prunable_weights
from oneticket.tickets import Ticket, TicketInfo, check_ticket_fits, load_state_into, load_ticket, save_ticket
from oneticket.tickets import ticket as ticket_module


def make_ticket(width: float = 0.0625) -> Ticket:
    model = create_model("vgg19", 10, width=width, seed=3)
    weights = {k: v.detach() for k, v in prunable_weights(model).items()}
    mask = magnitude_prune(weights, Mask.ones(model), 0.36)
    info = TicketInfo(
        model="vgg19", width=width, model_options={}, num_classes=10, dataset="cifar10", optimizer="sgd",
        level=2, rate=0.2, layerwise=False, prune_output=False, fraction_pruned=mask.fraction_pruned(),
        rewind="1ep", test_accuracy=0.91, run_id="abc", seeds={"seed": 0, "init": 5}, train_size=None, epochs=160,
    )
    return Ticket(info, mask, {k: v.detach().clone() for k, v in model.state_dict().items()})


def test_round_trip_keeps_mask_weights_order_and_metadata(tmp_path: Path):
    ticket = make_ticket()
    path = tmp_path / "t.safetensors"
    save_ticket(path, ticket)
    loaded = load_ticket(path)
    assert loaded.info == ticket.info
    assert loaded.mask.equal(ticket.mask) and list(loaded.mask) == list(ticket.mask)  # model layer order
    assert loaded.state.keys() == ticket.state.keys()
    assert all(torch.equal(loaded.state[k], ticket.state[k]) for k in ticket.state)
    assert loaded.state["features.1.num_batches_tracked"].dtype == torch.long
    header_len = int.from_bytes(path.read_bytes()[:8], "little")
    assert path.read_bytes()[8:9] == b"{" and header_len < path.stat().st_size  # safetensors, not a pickle
    assert not list(tmp_path.glob("*.part"))


def test_tampered_file_is_detected(tmp_path: Path):
    path = tmp_path / "t.safetensors"
    save_ticket(path, make_ticket())
    raw = bytearray(path.read_bytes())
    raw[-5] ^= 0x01  # one bit of one weight
    path.write_bytes(bytes(raw))
    with pytest.raises(TicketFileError, match="modified"):
        load_ticket(path)


def test_truncated_file_is_detected(tmp_path: Path):
    path = tmp_path / "t.safetensors"
    save_ticket(path, make_ticket())
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(TicketFileError, match="damaged or truncated"):
        load_ticket(path)


def test_a_pickle_is_never_unpickled(tmp_path: Path):
    marker = tmp_path / "owned"

    class Exploit:
        def __reduce__(self):
            return (Path.touch, (marker,))

    path = tmp_path / "evil.safetensors"
    path.write_bytes(pickle.dumps(Exploit()))
    with pytest.raises(TicketFileError):
        load_ticket(path)
    assert not marker.exists()


def test_other_format_version_is_refused(tmp_path: Path, monkeypatch):
    path = tmp_path / "t.safetensors"
    monkeypatch.setattr(ticket_module, "FORMAT_VERSION", 4)
    save_ticket(path, make_ticket())
    monkeypatch.undo()
    with pytest.raises(TicketFileError, match="format version 4; this oneticket reads versions 1, 2, 3: update oneticket"):
        load_ticket(path)


def _rewrite_metadata(path: Path, edit) -> None:
    """Rewrite a ticket file's metadata (as an editor would), keeping its tensors."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(path), framework="pt") as handle:
        metadata = dict(handle.metadata())
        tensors = {k: handle.get_tensor(k) for k in handle.keys()}
    save_file(tensors, str(path), metadata=edit(metadata))


def test_edited_metadata_is_detected(tmp_path: Path):
    path = tmp_path / "t.safetensors"
    save_ticket(path, make_ticket())
    ticket = load_ticket(path)
    assert ticket.metadata_checked and len(ticket.sha256) == 64

    def better_accuracy(metadata):
        info = json.loads(metadata["info"])
        info["test_accuracy"] = 0.99
        return {**metadata, "info": json.dumps(info, sort_keys=True)}

    _rewrite_metadata(path, better_accuracy)
    with pytest.raises(TicketFileError, match="its metadata was modified after it was written"):
        load_ticket(path)


def test_a_version_1_file_still_loads_marked_as_not_metadata_checked(tmp_path: Path):
    path = tmp_path / "t.safetensors"
    save_ticket(path, make_ticket())
    _rewrite_metadata(path, lambda m: {k: v for k, v in {**m, "version": "1"}.items() if k != "meta_sha256"})
    ticket = load_ticket(path)
    assert not ticket.metadata_checked and ticket.info == make_ticket().info


def test_mismatched_model_or_width_is_a_clear_error(tmp_path: Path):
    path = tmp_path / "t.safetensors"
    save_ticket(path, make_ticket(width=0.0625))
    ticket = load_ticket(path)
    check_ticket_fits(ticket, "vgg19", 0.0625, {}, path)
    with pytest.raises(TicketFileError, match="vgg19 width 0.0625, not for vgg19 width 0.125"):
        check_ticket_fits(ticket, "vgg19", 0.125, {}, path)
    with pytest.raises(TicketFileError, match="not for resnet50"):
        check_ticket_fits(ticket, "resnet50", 0.0625, {"stem": "imagenet"}, path)
    with pytest.raises(TicketFileError, match="does not fit"):
        load_state_into(create_model("vgg19", 10, width=0.125), ticket.state, path)
    model = create_model("vgg19", 10, width=0.0625, seed=99)
    load_state_into(model, ticket.state, path)
    assert torch.equal(model.state_dict()["features.0.weight"], ticket.state["features.0.weight"])
