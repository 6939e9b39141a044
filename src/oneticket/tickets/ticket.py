"""Ticket files: a mask and the rewind-point weights in one safetensors file, plus metadata.

Layout: tensors ``mask.<weight name>`` (bool) and ``state.<name>`` (every parameter and buffer of
the rewind-point model); safetensors metadata ``format``, ``version``, ``info`` (JSON, see
:class:`TicketInfo`), ``order`` (the tensors in model order), ``sha256`` (a digest of all tensors:
the content's identity) and, from version 2, ``meta_sha256`` (a digest of the tensor digest and
every other metadata field), so an edited tensor or an edited accuracy, dataset or rewind point is
detected. Version-1 files still load, marked as not metadata-checked.

Version 3 adds the compact layout (metadata ``layout = "compact"``, see
:mod:`oneticket.tickets.compact`): a bit-packed mask and the surviving weights only, checksummed
the same way, with ``ticket_sha256``: the digest of the dense form it was made from, so a ticket
has one identity (:attr:`Ticket.sha256`) in either layout. Dense files are still written as
version 2, so older oneticket versions read them. Loading never unpickles anything.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import torch
from safetensors import safe_open
from safetensors.torch import save as serialize

from oneticket.errors import TicketFileError
from oneticket.files import write_bytes_atomic
from oneticket.sparsity import Mask
from oneticket.tickets.compact import STATE_PREFIX, compact_tensors, expand_tensors

TICKET_FORMAT = "oneticket.ticket"
WEIGHTS_FORMAT = "oneticket.weights"
FORMAT_VERSION = 2  # dense files
COMPACT_VERSION = 3  # the first version with the compact layout
READABLE_VERSIONS = ("1", "2", "3")  # version 1: no metadata checksum
MASK_PREFIX = "mask."
COMPACT = "compact"


@dataclass(frozen=True)
class TicketInfo:
    """Where a ticket came from and how it did."""

    model: str
    width: float
    model_options: dict[str, Any]
    num_classes: int
    dataset: str
    optimizer: str
    level: int
    rate: float
    layerwise: bool
    prune_output: bool
    fraction_pruned: float
    rewind: str
    test_accuracy: float | None
    run_id: str
    seeds: dict[str, int] = field(default_factory=dict)
    train_size: int | None = None
    epochs: int | None = None
    batch_size: int | None = None  # the recipe it was found with (absent from files written before it was recorded)
    lr: float | None = None
    warmup: str | None = None
    augment: str | None = None
    finder: str = "imp"  # how the mask was found, and that finder's settings (absent before finders: imp)
    finder_settings: dict[str, Any] = field(default_factory=dict)
    find_compute: dict[str, Any] | None = None  # what finding it cost (oneticket.training.Compute); None before it was recorded

    def describe_model(self) -> str:
        return describe_model(self.model, self.width, self.model_options)


def describe_model(model: str, width: float, model_options: dict[str, Any]) -> str:
    """``"vgg19 width 0.125"``, with any model options appended."""
    return f"{model} width {width:g}" + "".join(f" {k}={v}" for k, v in model_options.items())


@dataclass(frozen=True)
class Ticket:
    """A mask and the rewind-point state. ``sha256`` and ``path`` are set by :func:`load_ticket`
    only, so a ticket changed with ``dataclasses.replace`` has neither (it is another ticket)."""

    info: TicketInfo
    mask: Mask
    state: dict[str, torch.Tensor]  # rewind-point parameters and buffers
    metadata_checked: bool = True  # False for a version-1 file: its metadata has no checksum
    compact: bool = False  # weights at pruned positions are absent (0.0 here), as in a compact file
    sha256: str = field(default="", init=False)  # what the ticket is: the digest of its dense tensors (mask + every weight)
    path: Path | None = field(default=None, init=False, compare=False)  # the file it was read from (absolute)

    def identity(self) -> str:
        """``sha256`` when read from a file, else the digest of the dense form of these tensors."""
        return self.sha256 or _digest(dense_tensors(self))


def dense_tensors(ticket: Ticket) -> dict[str, torch.Tensor]:
    """The tensors of the dense layout: ``mask.<name>`` and ``state.<name>``."""
    tensors = {MASK_PREFIX + k: v for k, v in ticket.mask.items()}
    tensors.update({STATE_PREFIX + k: v for k, v in ticket.state.items()})
    return tensors


def _digest(tensors: dict[str, torch.Tensor]) -> str:
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def _meta_digest(metadata: dict[str, str]) -> str:
    """A digest of every metadata field but itself (the tensor digest included)."""
    fields = {k: v for k, v in metadata.items() if k != "meta_sha256"}
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()


def _write(path: Path, tensors: dict[str, torch.Tensor], kind: str, info: dict[str, Any],
           version: int | None = None, extra: dict[str, str] | None = None) -> None:
    tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    metadata = {
        "format": kind,
        "version": str(version or FORMAT_VERSION),
        "info": json.dumps(info, sort_keys=True),
        "order": json.dumps(list(tensors)),  # safetensors sorts names; keep the model's layer order
        "sha256": _digest(tensors),
        **(extra or {}),
    }
    metadata["meta_sha256"] = _meta_digest(metadata)
    write_bytes_atomic(path, serialize(tensors, metadata=metadata))  # a failed write is an OSError naming its cause


class _Contents(NamedTuple):
    tensors: dict[str, torch.Tensor]  # in model order
    info: dict[str, Any]
    version: str
    sha256: str  # of the tensors
    metadata: dict[str, str]


def _read(path: Path, kind: str) -> _Contents:
    path = Path(path)
    if path.is_dir():
        raise TicketFileError(f"{path} is a folder, not a ticket file; give one of its .safetensors files (a folder of "
                              "tickets goes to 'oneticket tickets import')")
    if not path.is_file():
        raise TicketFileError(f"{path}: no such file")
    if path.suffix != ".safetensors":
        raise TicketFileError(f"{path} is not a ticket or weights file (those are .safetensors files)")
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
            tensors = {k: handle.get_tensor(k) for k in handle.keys()}
    except Exception as exc:  # safetensors raises its own error types for damaged headers and data
        raise TicketFileError(f"{path} is damaged or truncated, not a readable safetensors file ({exc})") from None
    if metadata.get("format") != kind:
        raise TicketFileError(f"{path} is not a {kind} file (format {metadata.get('format')!r})")
    if metadata.get("version") not in READABLE_VERSIONS:
        raise TicketFileError(f"{path} has format version {metadata.get('version')}; this oneticket reads versions "
                              f"{', '.join(READABLE_VERSIONS)}: update oneticket")
    if metadata.get("sha256") != _digest(tensors):
        raise TicketFileError(f"{path} was modified after it was written (its checksum does not match); get a fresh copy")
    if metadata["version"] != "1" and metadata.get("meta_sha256") != _meta_digest(metadata):
        raise TicketFileError(f"{path}: its metadata was modified after it was written (its checksum does not "
                              "match); get a fresh copy")
    try:
        info = json.loads(metadata["info"])
        order = json.loads(metadata["order"])
    except (KeyError, json.JSONDecodeError) as exc:
        raise TicketFileError(f"{path} has unreadable metadata ({exc})") from None
    if sorted(order) != sorted(tensors):
        raise TicketFileError(f"{path}: its tensor list does not match its metadata")
    return _Contents({name: tensors[name] for name in order}, info, metadata["version"], metadata["sha256"], metadata)


def save_ticket(path: Path, ticket: Ticket, compact: bool = False) -> None:
    """Write ``ticket`` to ``path``: dense (every weight, as IMP keeps them) or ``compact`` (a
    bit-packed mask and the surviving weights; loads to the same masked model). A compact ticket
    is written compact only (its weights at pruned positions are unknown), and the unchecked
    metadata of a version-1 file is never signed as checked."""
    where = ticket.path or "this ticket"
    if not ticket.metadata_checked:
        raise TicketFileError(f"{where} is a version-1 file: its metadata has no checksum, and oneticket does not "
                              "sign unchecked metadata; share the file as it is")
    if ticket.compact and not compact:
        raise TicketFileError(f"{where} is compact: it holds no weights at pruned positions, so it can only be "
                              "written compact")
    if compact:
        tensors, shapes = compact_tensors(dict(ticket.mask), ticket.state)
        _write(path, tensors, TICKET_FORMAT, asdict(ticket.info), COMPACT_VERSION,
               {"layout": COMPACT, "shapes": json.dumps(shapes), "ticket_sha256": ticket.identity()})
        return
    _write(path, dense_tensors(ticket), TICKET_FORMAT, asdict(ticket.info))


def load_ticket(path: Path) -> Ticket:
    """Read and verify a ticket file of either layout (format, version, checksum, mask over existing weights)."""
    path = Path(path).expanduser().absolute()
    tensors, raw_info, version, digest, metadata = _read(path, TICKET_FORMAT)
    try:
        info = TicketInfo(**raw_info)
    except TypeError as exc:
        raise TicketFileError(f"{path} has unexpected metadata ({exc})") from None
    layout = metadata.get("layout", "dense")
    if layout not in ("dense", COMPACT) or (layout == COMPACT and version == "1"):
        raise TicketFileError(f"{path} has the ticket layout {layout!r} (format version {version}), which this oneticket "
                              "does not read: update oneticket")
    if layout == COMPACT:
        try:
            mask, state = expand_tensors(tensors, json.loads(metadata.get("shapes", "{}")))
        except (ValueError, TypeError, json.JSONDecodeError) as exc:
            raise TicketFileError(f"{path}: its compact tensors are inconsistent ({exc})") from None
        digest = metadata.get("ticket_sha256", "")
        if not re.fullmatch(r"[0-9a-f]{64}", digest):
            raise TicketFileError(f"{path}: a compact ticket without the digest of its dense form; get a fresh copy")
    else:
        mask = {k[len(MASK_PREFIX):]: v for k, v in tensors.items() if k.startswith(MASK_PREFIX)}
        state = {k[len(STATE_PREFIX):]: v for k, v in tensors.items() if k.startswith(STATE_PREFIX)}
    for name, tensor in mask.items():
        if tensor.dtype != torch.bool or name not in state or state[name].shape != tensor.shape:
            raise TicketFileError(f"{path}: mask entry {name} does not match a weight of the same shape")
    ticket = Ticket(info, Mask(mask), state, metadata_checked=version != "1", compact=layout == COMPACT)
    object.__setattr__(ticket, "sha256", digest)  # set here only: see Ticket
    object.__setattr__(ticket, "path", path)
    return ticket


def save_weights(path: Path, state: dict[str, torch.Tensor], info: dict[str, Any]) -> None:
    """A model state (e.g. a level's trained weights) with a little metadata."""
    _write(path, state, WEIGHTS_FORMAT, info)


def load_weights(path: Path) -> dict[str, torch.Tensor]:
    return _read(path, WEIGHTS_FORMAT).tensors


def load_weights_with_info(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """A weights file's tensors and the metadata it was saved with."""
    contents = _read(path, WEIGHTS_FORMAT)
    return contents.tensors, contents.info


def weights_sha256(path: Path) -> str:
    """The digest of a weights file's tensors (verified as it is read)."""
    return _read(path, WEIGHTS_FORMAT).sha256


def check_ticket_fits(ticket: Ticket, model: str, width: float, model_options: dict[str, Any], path: Path | str = "ticket") -> None:
    """Raise a readable error when a ticket was made for another architecture or width."""
    info = ticket.info
    if info.model != model or info.width != width or info.model_options != model_options:
        raise TicketFileError(
            f"{path} is a ticket for {info.describe_model()}, not for {describe_model(model, width, model_options)}; "
            "use a ticket made for this model and width"
        )


def load_state_into(model: torch.nn.Module, state: dict[str, torch.Tensor], path: Path | str = "ticket") -> None:
    """Copy ``state`` into ``model``, with a readable error when shapes or names differ."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    extra = sorted(set(state) - set(own))
    wrong = [k for k in own if k in state and own[k].shape != state[k].shape]
    if missing or extra or wrong:
        detail = (
            f"missing {missing[:3]}" if missing else f"unexpected {extra[:3]}" if extra
            else f"{wrong[0]} is {tuple(state[wrong[0]].shape)} in the file, {tuple(own[wrong[0]].shape)} in the model"
        )
        raise TicketFileError(f"{path} does not fit this model: {detail}")
    model.load_state_dict(state)
