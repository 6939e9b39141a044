"""The Python API: the documented example, load_model, apply_mask, compact files, errors."""

from __future__ import annotations

import contextlib
import hashlib
import io
import re
from pathlib import Path

import pytest
import torch

import oneticket as ot
from oneticket.cli import main
from oneticket.models import create_model, output_layer
from oneticket.sparsity import Mask, magnitude_prune, prunable_weights
from oneticket.tickets import Ticket, TicketInfo, TrainSpec, load_ticket, save_ticket, ticket_model

DOCS = Path(__file__).resolve().parents[1] / "docs" / "python.md"
DATA = Path(__file__).resolve().parent / "data"
TINY = dict(model="vgg19", width=0.0625, dataset="digits", train_size=256, epochs=2, batch_size=64, levels=2, rate=0.5,
            device="cpu", progress=False)


def make_ticket(width: float = 0.0625, fraction: float = 0.8, seed: int = 3) -> Ticket:
    model = create_model("vgg19", 10, width=width, seed=seed)
    mask = magnitude_prune({k: v.detach() for k, v in prunable_weights(model).items()}, Mask.ones(model), fraction)
    info = TicketInfo(model="vgg19", width=width, model_options={}, num_classes=10, dataset="digits", optimizer="sgd",
                      level=1, rate=fraction, layerwise=False, prune_output=False, fraction_pruned=mask.fraction_pruned(),
                      rewind="1ep", test_accuracy=0.9, run_id="0123456789abcdef", seeds={"seed": 0})
    return Ticket(info, mask, {k: v.detach().clone() for k, v in model.state_dict().items()})


def plain_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The model's tensors under their usual names (masks baked in)."""
    return ot.remove_mask(model).state_dict()


def bitwise_equal(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Equal to the bit (0.0 and -0.0 differ)."""
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    if a.is_floating_point():
        return torch.equal(a.view(torch.int32), b.view(torch.int32))
    return torch.equal(a, b)


# ---- the documented example -------------------------------------------------------------------------

@pytest.mark.slow
def test_the_python_docs_run_end_to_end(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ONETICKET_STORE", str(tmp_path / "default-store"))
    blocks = re.findall(r"```python\n(.*?)```", DOCS.read_text(), re.S)
    assert len(blocks) >= 5
    namespace: dict = {}
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        for block in blocks:
            exec(compile(block, str(DOCS), "exec"), namespace)
    printed = out.getvalue()
    levels = re.findall(r"level (\d): ([\d.]+)% pruned, test accuracy ([\d.]+)%", printed)
    assert [(int(level), float(pruned)) for level, pruned, _ in levels] == [(0, 0.0), (1, 75.0), (2, 93.75), (3, 98.44)]
    assert all(float(accuracy) > 80 for _, _, accuracy in levels)  # chance is 10%
    assert float(re.search(r"on digits b with Adam: ([\d.]+)%", printed).group(1)) > 80
    assert "93.75% pruned, state_dict keys as before: True" in printed
    ticket = namespace["ticket"]
    assert f"{ticket.mask.alive()} weights left of {ticket.mask.total()}" in printed
    assert re.search(r"^True$", printed, re.M)  # the compact file loads to the same model, bit for bit
    assert "['README.md', 'tickets.json'] 4 tickets" in printed and "4 tickets imported and verified" in printed
    assert re.search(r"7 jobs run, 1 read back; 9 results: \['own', 'random', 'transfer'\]", printed)
    assert "train_size: must be greater than or equal to 1 (got 0)" in printed
    assert namespace["run"].root.is_relative_to(tmp_path / "runs")


# ---- find and transfer ------------------------------------------------------------------------------

def test_find_from_python_is_the_run_the_cli_finds(tmp_path: Path, capsys):
    run = ot.find(store=tmp_path, **TINY)
    assert [r.level for r in run.results] == [0, 1, 2] and run.levels == [0, 1, 2] and not run.diverged
    assert run.ticket(level=2).mask.fraction_pruned() == pytest.approx(0.75, abs=1e-3)
    assert run.ticket().info.level == 2 and run.ticket_file(1) == run.root / "level_01" / "ticket.safetensors"
    flags = ["--model", "vgg19", "--width", "0.0625", "--dataset", "digits", "--train-size", "256", "--epochs", "2",
             "--batch-size", "64", "--levels", "2", "--rate", "0.5", "--device", "cpu", "--store", str(tmp_path)]
    assert main(["find", *flags]) == 0
    assert f"run folder: {run.root}" in capsys.readouterr().out  # the same run, read back
    with pytest.raises(ot.UserError, match=r"no ticket at level 7; its levels: 0, 1, 2"):
        run.ticket(level=7)
    with pytest.raises(ot.UserError, match=r"level must be a whole number, got '1'"):
        run.ticket(level="1")
    assert repr(run).startswith(f"Run({run.id}, vgg19 on digits/sgd, levels 0-2, last 75.0% pruned")


def test_settings_are_validated_as_the_cli_does_naming_keywords(tmp_path: Path):
    with pytest.raises(ot.UserError, match=r"^find takes no setting 'epoch'; did you mean 'epochs'\?"):
        ot.find(model="vgg19", dataset="digits", epoch=3, store=tmp_path)
    with pytest.raises(ot.UserError, match=r"^rate: must be less than 1 \(got 1.5\)$"):
        ot.find(model="vgg19", dataset="digits", rate=1.5, store=tmp_path)
    with pytest.raises(ot.UserError, match=r"^mask_epochs is a setting of the imp finder, not of snip$"):
        ot.find(model="vgg19", dataset="digits", finder="snip", mask_epochs=2, store=tmp_path)
    with pytest.raises(ot.UserError, match=r"^find takes its settings as keywords"):
        ot.find("vgg19", store=tmp_path)
    with pytest.raises(ot.UserError, match=r"unknown dataset 'cifar11'"):
        ot.find(model="vgg19", dataset="cifar11", store=tmp_path)
    with pytest.raises(ot.UserError, match=r"^transfer takes no setting 'optimiser'"):
        ot.transfer(DATA / "ticket_v2_8b4d4f4.safetensors", dataset="digits", optimiser="adam", store=tmp_path)
    with pytest.raises(ot.UserError, match=r"^epochs: must be greater than or equal to 1 \(got 0\)$"):
        ot.transfer(DATA / "ticket_v2_8b4d4f4.safetensors", dataset="digits", epochs=0, store=tmp_path)
    with pytest.raises(ot.TicketFileError, match="no such file"):
        ot.load_model(tmp_path / "missing.safetensors")
    assert not (tmp_path / "runs").exists() and not (tmp_path / "trainings").exists()


def test_transfer_of_a_compact_ticket_trains_exactly_as_the_dense_one(tmp_path: Path):
    recipe = dict(width=0.0625, epochs=4, batch_size=32, augment="none", device="cpu", progress=False)  # the demo's, learnable
    run = ot.find(model="vgg19", dataset="digitsa", lr=0.025, levels=2, rate=0.5, store=tmp_path / "store", **recipe)
    dense = run.ticket(level=2)
    compact_file = ot.save_ticket(dense, tmp_path / "compact.safetensors", compact=True)
    recipe.pop("width")
    settings = dict(dataset="digitsb", optimizer="adam", lr=4e-3, **recipe)
    from_dense = ot.transfer(dense, store=tmp_path / "a", **settings)
    from_compact = ot.transfer(compact_file, store=tmp_path / "b", **settings)
    def curve(trained):
        return [(e["train_loss"], e["test_accuracy"]) for e in trained.result.history]

    assert curve(from_dense) == curve(from_compact)  # every epoch's loss and accuracy, bit for bit
    assert from_dense.spec.job_id() == from_compact.spec.job_id()  # one ticket, one training id in either layout
    again = ot.transfer(compact_file, store=tmp_path / "a", **settings)  # the dense file's store: read back
    assert again.directory == from_dense.directory and again.result == from_dense.result
    assert from_dense.test_accuracy == from_compact.test_accuracy > 0.5  # chance is 10%
    assert from_dense.fraction_pruned == from_compact.fraction_pruned == pytest.approx(0.75, abs=1e-3)
    with pytest.raises(ot.UserError, match="compact ticket file: it holds no weights at pruned positions"):
        ot.transfer(compact_file, variant="random-mask", store=tmp_path / "b", **settings)
    random = ot.transfer(compact_file, variant="random", store=tmp_path / "b", **settings)  # fresh weights: fine
    assert random.spec.kind == "random" and random.test_accuracy is not None


# ---- load_model and apply_mask ----------------------------------------------------------------------

def test_load_model_has_the_tickets_tensors_and_zeros_where_pruned(tmp_path: Path):
    ticket = make_ticket()
    path = tmp_path / "t.safetensors"
    save_ticket(path, ticket)
    model = ot.load_model(path)
    for name, keep in ticket.mask.items():
        weight = model.get_submodule(name.removesuffix(".weight")).weight
        assert (weight[~keep] == 0).all() and torch.equal(weight[keep], ticket.state[name][keep])
    state = plain_state(model)
    assert state.keys() == ticket.state.keys()
    for name, tensor in ticket.state.items():
        expected = tensor.masked_fill(~ticket.mask[name], 0.0) if name in ticket.mask else tensor
        assert bitwise_equal(state[name], expected), name


def test_load_model_with_new_classes_seeds_the_head_as_transfer_does():
    ticket = make_ticket()
    model = ot.load_model(ticket, num_classes=100, seed=4)
    spec = TrainSpec(source="0123456789abcdef", level=1, model="vgg19", dataset="cifar100", seed=4)
    reference, mask = ticket_model(ticket, spec)
    head = output_layer(reference)[0]
    ours = plain_state(model)
    assert ours[f"{head}.weight"].shape == (100, reference.get_submodule(head).in_features)
    assert torch.equal(ours[f"{head}.weight"], reference.state_dict()[f"{head}.weight"])
    assert not torch.equal(plain_state(ot.load_model(ticket, num_classes=100, seed=5))[f"{head}.weight"], ours[f"{head}.weight"])
    for name in ticket.mask:  # the rest is the ticket's
        assert torch.equal(ours[name], ticket.state[name].masked_fill(~mask[name], 0.0))
    with pytest.raises(ot.UserError, match="num_classes must be a whole number of at least 1"):
        ot.load_model(ticket, num_classes=0)


@pytest.mark.parametrize("optimizer", ["adam", "adamw", "sgd"])
def test_apply_mask_holds_through_20_steps_of_user_code(optimizer: str):
    ticket = make_ticket()
    model = create_model("vgg19", 10, width=0.0625, seed=11)
    ot.apply_mask(model, ticket.mask)
    make = {"adam": lambda p: torch.optim.Adam(p, lr=1e-2, weight_decay=1e-3),
            "adamw": lambda p: torch.optim.AdamW(p, lr=1e-2, weight_decay=0.1),
            "sgd": lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, weight_decay=5e-4)}[optimizer]
    opt = make(model.parameters())
    generator = torch.Generator().manual_seed(0)
    images, labels = torch.randn(16, 3, 32, 32, generator=generator), torch.randint(0, 10, (16,), generator=generator)
    before = {k: v.clone() for k, v in plain_state(create_model("vgg19", 10, width=0.0625, seed=11)).items()}
    for _ in range(20):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(images), labels).backward()
        opt.step()
        for name, keep in ticket.mask.items():
            weight = model.get_submodule(name.removesuffix(".weight")).weight
            assert bitwise_equal(weight[~keep], torch.zeros(int((~keep).sum())))  # 0.0, not -0.0
    ot.remove_mask(model)
    state = model.state_dict()
    assert state.keys() == before.keys()  # plain names again
    for name, keep in ticket.mask.items():
        assert (state[name][~keep] == 0).all() and not torch.equal(state[name][keep], before[name][keep])  # it trained


def test_apply_mask_takes_any_module_with_the_masks_names_and_a_ticket_or_its_file(tmp_path: Path):
    ticket = make_ticket()

    class Mine(torch.nn.Module):  # not a oneticket model: its own class, the same layer names
        def __init__(self) -> None:
            super().__init__()
            reference = create_model("vgg19", 10, width=0.0625)
            self.features, self.classifier = reference.features, reference.classifier

    mine = ot.apply_mask(Mine(), ticket)
    for name, keep in ticket.mask.items():
        assert (mine.get_submodule(name.removesuffix(".weight")).weight[~keep] == 0).all()
    save_ticket(tmp_path / "t.safetensors", ticket)
    ot.apply_mask(create_model("vgg19", 10, width=0.0625), tmp_path / "t.safetensors")
    for call, message in ((lambda: ot.apply_mask("model", ticket.mask), "takes a torch.nn.Module first, got str"),
                          (lambda: ot.apply_mask(Mine(), 3), "needs a mask \\(ticket.mask\\), a Ticket or a ticket file"),
                          (lambda: ot.remove_mask("model"), "takes a torch.nn.Module, got str")):
        with pytest.raises(ot.UserError, match=message):
            call()


def test_api_mistakes_are_one_line_user_errors(tmp_path: Path):
    ticket = make_ticket()
    save_ticket(tmp_path / "t.safetensors", ticket)
    cases = [
        (lambda: ot.save_ticket(tmp_path / "t.safetensors", tmp_path / "u.safetensors"), "takes a Ticket first"),
        (lambda: ot.save_ticket(ticket, tmp_path / "missing" / "u.safetensors"), "missing does not exist; make the folder"),
        (lambda: ot.save_ticket(ticket, tmp_path / "u.safetensors", compact="no"), "compact must be True or False"),
        (lambda: ot.find(model="vgg19", dataset="digits", store=123), "store must be a path .* got int 123"),
        (lambda: ot.load_ticket(5), "the ticket must be a path"),
        (lambda: ot.load_model("hf://someone/tickets"), "is on the Hugging Face Hub; import its tickets first"),
        (lambda: ot.load_ticket("https://huggingface.co/someone/tickets/tree/dev"), "write the Hub repo as hf://someone/tickets@dev"),
        (lambda: ot.save_ticket(ticket, tmp_path), "is a folder; give the ticket file's name"),
        (lambda: ot.export_tickets(tmp_path / "t.safetensors", tmp_path / "e", compact="no"), "compact must be True or False"),
        (lambda: ot.export_tickets(tmp_path / "t.safetensors", tmp_path / "e", license="MIT"), r"ids are lower case: mit"),
        (lambda: ot.push_tickets(tmp_path, 5), "repo and revision are strings"),
        (lambda: ot.results(5), "give experiment specs as a file, a built-in name"),
        (lambda: ot.load_ticket(tmp_path), "is a folder, not a ticket file"),
        (lambda: ot.run_experiment("demo", workers=0, store=tmp_path), "workers must be a whole number of at least 1, got 0"),
        (lambda: ot.run_experiment("demo", workers="2", store=tmp_path), "workers must be a whole number of at least 1, got '2'"),
        (lambda: ot.load_model(ticket, device="cuda:7") if not torch.cuda.is_available() else ot.load_model(ticket, device="tpu"),
         r"^(device cuda:7 asked for, but PyTorch sees no CUDA GPU here; use device cpu or auto|unknown device 'tpu'.*)$"),
    ]
    for call, message in cases:
        with pytest.raises(ot.UserError, match=message) as caught:
            call()
        assert "\n" not in str(caught.value)
    assert not (tmp_path / "u.safetensors").exists() and not (tmp_path / "runs").exists()


def test_apply_mask_refuses_a_mask_that_does_not_fit_or_a_second_mask():
    ticket = make_ticket()
    with pytest.raises(ot.UserError, match="the mask does not fit this model: mask entry features.0.weight has shape"):
        ot.apply_mask(create_model("vgg19", 10, width=0.125), ticket.mask)
    model = ot.apply_mask(create_model("vgg19", 10, width=0.0625), ticket.mask)
    with pytest.raises(ot.UserError, match="masked already; call remove_mask"):
        ot.apply_mask(model, ticket.mask)
    with pytest.raises(ot.UserError, match="not a mask: mask for features.0.weight must be bool"):
        ot.apply_mask(create_model("vgg19", 10, width=0.0625), {"features.0.weight": torch.ones(3)})


# ---- compact files ----------------------------------------------------------------------------------

@pytest.mark.parametrize("fraction", [0.0, 0.5, 0.98, 0.999])
def test_compact_and_dense_files_load_to_identical_tensors(tmp_path: Path, fraction: float):
    ticket = make_ticket(fraction=fraction)
    save_ticket(tmp_path / "dense.safetensors", ticket)
    save_ticket(tmp_path / "compact.safetensors", ticket, compact=True)
    dense, compact = load_ticket(tmp_path / "dense.safetensors"), load_ticket(tmp_path / "compact.safetensors")
    assert compact.compact and not dense.compact and compact.info == dense.info
    assert compact.mask.equal(dense.mask) and list(compact.mask) == list(dense.mask)
    assert list(compact.state) == list(dense.state)  # model order
    for name, tensor in dense.state.items():
        expected = tensor.masked_fill(~dense.mask[name], 0.0) if name in dense.mask else tensor
        assert bitwise_equal(compact.state[name], expected), name
    a, b = plain_state(ot.load_model(dense)), plain_state(ot.load_model(compact))
    assert all(bitwise_equal(a[k], b[k]) for k in a)  # the same model, bit for bit
    if fraction >= 0.5:
        assert (tmp_path / "compact.safetensors").stat().st_size < 0.6 * (tmp_path / "dense.safetensors").stat().st_size


def test_a_tampered_compact_file_is_refused(tmp_path: Path):
    path = tmp_path / "c.safetensors"
    save_ticket(path, make_ticket(), compact=True)
    data = bytearray(path.read_bytes())
    data[-5] ^= 0x01  # one bit of the last tensor's data
    path.write_bytes(bytes(data))
    with pytest.raises(ot.TicketFileError, match="modified after it was written"):
        load_ticket(path)


def test_compact_metadata_edits_are_refused(tmp_path: Path):
    from safetensors import safe_open
    from safetensors.torch import save_file

    path = tmp_path / "c.safetensors"
    save_ticket(path, make_ticket(), compact=True)
    with safe_open(str(path), framework="pt") as handle:
        metadata, tensors = dict(handle.metadata()), {k: handle.get_tensor(k) for k in handle.keys()}
    save_file(tensors, str(path), metadata={**metadata, "shapes": metadata["shapes"].replace("[4, 3, 3, 3]", "[3, 4, 3, 3]")})
    with pytest.raises(ot.TicketFileError, match="metadata was modified"):
        load_ticket(path)


def test_files_of_every_earlier_format_version_still_load():
    """Ticket files kept as bytes: level 1 of one tiny IMP run (VGG19 width 1/32 on digits, 90%
    pruned) written by the code of commit 50354e1 (format version 1: no metadata checksum, no
    finder fields) and of 8b4d4f4 (version 2, before finders); the version-3 compact file made
    from the latter when the compact layout was introduced."""
    expected = {
        "ticket_v1_50354e1.safetensors": "89eb64ad4e17695a905c800ec3fa6bd5652e1b2303dd63cb49950ab9bc91e6d5",
        "ticket_v2_8b4d4f4.safetensors": "b6a29ff214a133681a87051e6398faa34c64ec2eb1dcb83a150e1af8cc3a297b",
        "ticket_v3_compact.safetensors": "b49cfc050e098d5cde2d2c3b7989dc9b4b47f55754ec1cebad4928c1184d8b79",
    }
    loaded = {}
    for name, digest in expected.items():
        assert hashlib.sha256((DATA / name).read_bytes()).hexdigest() == digest  # the bytes as written then
        loaded[name] = load_ticket(DATA / name)
    v1, v2, v3 = loaded.values()
    assert not v1.metadata_checked and v2.metadata_checked and v3.metadata_checked and v3.compact
    for ticket in loaded.values():
        assert ticket.info.run_id == "b025b98b391c1e21" and ticket.info.width == 0.03125 and ticket.info.finder == "imp"
        assert ticket.info.find_compute is None  # not recorded then
        assert (ticket.mask.alive(), ticket.mask.total()) == (1960, 19602)
    assert v1.sha256 == v2.sha256 == v3.sha256  # one ticket, one identity in every version and layout
    assert all(torch.equal(v1.state[k], v2.state[k]) for k in v2.state)
    a, b = plain_state(ot.load_model(v2)), plain_state(ot.load_model(v3))
    assert all(bitwise_equal(a[k], b[k]) for k in a)
    with pytest.raises(ot.TicketFileError, match="version-1 file: its metadata has no checksum"):
        ot.save_ticket(v1, "unused.safetensors", compact=True)


def test_a_compact_ticket_is_never_written_dense_nor_read_with_an_unknown_layout(tmp_path: Path):
    compact = load_ticket(DATA / "ticket_v3_compact.safetensors")
    with pytest.raises(ot.TicketFileError, match="is compact: it holds no weights at pruned positions"):
        ot.save_ticket(compact, tmp_path / "dense.safetensors")
    assert not (tmp_path / "dense.safetensors").exists()
    again = load_ticket(ot.save_ticket(compact, tmp_path / "again.safetensors", compact=True))
    assert again.compact and again.sha256 == compact.sha256 and again.info == compact.info
    assert all(bitwise_equal(again.state[k], compact.state[k]) for k in compact.state) and again.mask.equal(compact.mask)
    from oneticket.tickets import ticket as ticket_module

    def sign(metadata: dict) -> dict:
        return {**metadata, "meta_sha256": ticket_module._meta_digest(metadata)}

    for edit, message in ((lambda m: {**m, "layout": "sparse-coo"}, "layout 'sparse-coo'"),
                          (lambda m: {k: v for k, v in m.items() if k != "ticket_sha256"}, "without the digest of its dense form")):
        path = tmp_path / "edited.safetensors"
        _resign(DATA / "ticket_v3_compact.safetensors", path, lambda m: sign(edit(m)))
        with pytest.raises(ot.TicketFileError, match=message):
            load_ticket(path)


def _resign(source: Path, target: Path, edit) -> None:
    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(source), framework="pt") as handle:
        metadata, tensors = dict(handle.metadata()), {k: handle.get_tensor(k) for k in handle.keys()}
    save_file(tensors, str(target), metadata=edit(metadata))


def test_unpacking_checks_sizes_and_padding():
    from oneticket.tickets.compact import pack_bits, unpack_bits

    mask = torch.tensor([True, False, False, True, True, False, True, False, False, True, True])
    packed = pack_bits(mask)
    assert packed.tolist() == [0b01011001, 0b00000110]  # bit i of byte j is element 8j + i
    assert torch.equal(unpack_bits(packed, (11,)), mask)
    with pytest.raises(ValueError, match="padding bits are set"):
        unpack_bits(torch.tensor([0b01011001, 0b10000110], dtype=torch.uint8), (11,))
    with pytest.raises(ValueError, match="do not hold a mask of shape"):
        unpack_bits(packed, (17,))
