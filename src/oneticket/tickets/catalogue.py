"""The tickets catalogue: every ticket in a store, export to a publishable folder, import, verify.

An exported folder::

    <dir>/<model>-<dataset>-<optimizer>-<run id>-level_07.safetensors   one file per ticket
    <dir>/tickets.json                                                   file -> sha256 + metadata
    <dir>/README.md                                                      the card: what, where from, how to load

Imported tickets go to ``<store>/imported/<run id>/level_NN/ticket.safetensors`` (the layout of a
run directory), where transfers find them by run id and level.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from oneticket.errors import TicketFileError, UserError
from oneticket.files import atomic_path, umask
from oneticket.models import create_model, output_layer
from oneticket.sparsity import prunable_weights
from oneticket.tickets.rundir import RunDir, imported_root, runs_root
from oneticket.tickets.ticket import Ticket, TicketInfo, load_state_into, load_ticket

INDEX_FILE = "tickets.json"
CARD_FILE = "README.md"


@dataclass(frozen=True)
class CatalogueEntry:
    path: Path
    info: TicketInfo
    imported: bool


@dataclass(frozen=True)
class DamagedEntry:
    path: Path
    problem: str  # what loading it said
    imported: bool


def catalogue(store: Path) -> list[CatalogueEntry]:
    """Every readable ticket in ``store`` (found by runs or imported), by run and level."""
    return [e for e in catalogue_all(store) if isinstance(e, CatalogueEntry)]


def catalogue_all(store: Path) -> list[CatalogueEntry | DamagedEntry]:
    """Every ticket file in ``store``: readable ones with their metadata, damaged ones with why."""
    entries: list[CatalogueEntry | DamagedEntry] = []
    for root, imported in ((runs_root(store), False), (imported_root(store), True)):
        for path in sorted(root.glob("*/level_*/ticket.safetensors")):
            try:
                entries.append(CatalogueEntry(path, load_ticket(path).info, imported))
            except TicketFileError as exc:
                entries.append(DamagedEntry(path, str(exc), imported))
    return entries


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def export_name(info: TicketInfo) -> str:
    return f"{info.model}-{info.dataset}-{info.optimizer}-{info.run_id}-level_{info.level:02d}.safetensors"


def _card(entries: list[tuple[str, TicketInfo]]) -> str:
    first = entries[0][1]
    lines = [
        "# Lottery tickets (oneticket)", "",
        f"{len(entries)} winning ticket(s) of {first.describe_model()}, found by iterative magnitude pruning "
        "with late resetting. Each file holds the mask and the rewind-point weights of one pruning level, "
        "as safetensors (no pickle: safe to load from strangers) with the metadata below.", "",
        "| file | model | source dataset | optimizer | level | pruned | test accuracy | rewind |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, info in entries:
        acc = "-" if info.test_accuracy is None else f"{100 * info.test_accuracy:.2f}%"
        lines.append(f"| {name} | {info.describe_model()} | {info.dataset} | {info.optimizer} | {info.level} | "
                     f"{100 * info.fraction_pruned:.2f}% | {acc} | {info.rewind} |")
    lines += [
        "", "## How to load", "",
        "```bash",
        "pip install oneticket            # see its README for the torch build of your machine",
        "oneticket tickets verify FILE    # checksum, metadata, shapes, mask",
        "oneticket tickets import .       # into your store, then:",
        f"oneticket transfer --from {first.run_id} --dataset cifar100 --optimizer sgd",
        "```", "",
        "```python",
        "from oneticket.tickets import load_ticket, load_state_into",
        "from oneticket.models import create_model",
        f"ticket = load_ticket('{entries[0][0]}')",
        "info = ticket.info",
        "model = create_model(info.model, info.num_classes, info.width, **info.model_options)",
        "load_state_into(model, ticket.state)   # rewind-point weights",
        "for name, keep in ticket.mask.items():  # zero the pruned weights",
        "    model.get_parameter(name).data.mul_(keep)",
        "```", "",
        "Metadata of every file (checksums included) is in `tickets.json`.", "",
    ]
    return "\n".join(lines)


def export_tickets(paths: list[Path], out: Path) -> list[Path]:
    """Copy verified tickets into a new folder ``out`` with an index and a card. The folder appears
    complete or not at all."""
    if out.exists() and any(out.iterdir()):
        raise UserError(f"{out} exists and is not empty; choose a new folder to export into")
    entries = [(export_name(load_ticket(p).info), load_ticket(p).info, p) for p in paths]
    if not entries:
        raise UserError("no tickets to export")
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        index = {}
        for name, info, path in entries:
            shutil.copyfile(path, staging / name)
            index[name] = {"sha256": file_sha256(staging / name), "info": asdict(info)}
        (staging / INDEX_FILE).write_text(json.dumps(index, indent=2, sort_keys=True) + "\n")
        (staging / CARD_FILE).write_text(_card([(n, i) for n, i, _ in entries]))
        staging.chmod(0o777 & ~umask())  # mkdtemp makes 0700: a folder to publish gets the user's usual mode
        if out.exists():
            out.rmdir()
        staging.rename(out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return [out / name for name, _, _ in entries]


def import_tickets(source: Path, store: Path) -> list[tuple[Path, bool]]:
    """Verify and copy ticket files (a file, or an exported folder) into ``store``; returns
    (destination, newly copied) for each. A folder's ``tickets.json`` checksums are checked too."""
    source = Path(source).expanduser()
    if source.is_dir():
        files = sorted(source.glob("*.safetensors"))
        index_file = source / INDEX_FILE
        index = json.loads(index_file.read_text()) if index_file.exists() else {}
        for path in files:
            expected = index.get(path.name, {}).get("sha256")
            if expected is not None and expected != file_sha256(path):
                raise TicketFileError(f"{path} does not match the checksum in {index_file}; get a fresh copy")
    elif source.is_file():
        files = [source]
    else:
        raise UserError(f"{source}: no such ticket file or folder")
    if not files:
        raise UserError(f"{source} holds no .safetensors ticket files")
    done = []
    for path in files:
        info = verify_ticket(path).info
        content = load_ticket(path).sha256
        destination = RunDir(imported_root(store) / info.run_id).ticket_file(info.level)
        if destination.exists() and _content(destination) != content:
            # another ticket under the same run id and level (another machine's bits, say): keep both
            destination = RunDir(imported_root(store) / f"{info.run_id}-{content[:8]}").ticket_file(info.level)
        if destination.exists() and _content(destination) == content:
            done.append((destination, False))
            continue
        with atomic_path(destination) as tmp:
            shutil.copyfile(path, tmp)
        done.append((destination, True))
    return done


def _content(path: Path) -> str | None:
    """The tensor digest of a ticket file (None when it cannot be read)."""
    try:
        return load_ticket(path).sha256
    except TicketFileError:
        return None


@dataclass(frozen=True)
class Verified:
    info: TicketInfo
    checks: list[str]


def expected_alive(total: int, rate: float, level: int) -> int:
    """Surviving weights after ``level`` levels of global pruning at ``rate`` (each level removes
    ``round(rate * alive)``, as :func:`oneticket.sparsity.magnitude_prune` does)."""
    alive = total
    for _ in range(level):
        alive -= round(rate * alive)
    return alive


def verify_ticket(path: Path) -> Verified:
    """Check a ticket end to end; raise :class:`TicketFileError` naming the first problem."""
    ticket: Ticket = load_ticket(path)
    checks = ["format, version, the sha256 of every tensor and of the metadata match" if ticket.metadata_checked else
              "format, version and the sha256 of every tensor match (a version-1 file: its metadata has no checksum)"]
    info = ticket.info
    try:
        model = create_model(info.model, info.num_classes, info.width, 0, **info.model_options)
    except UserError as exc:
        raise TicketFileError(f"{path}: its metadata names a model this oneticket cannot build ({exc})") from None
    checks.append(f"model {info.describe_model()} with {info.num_classes} classes builds")
    load_state_into(model, ticket.state, path)
    checks.append(f"rewind-point state fits the model ({len(ticket.state)} tensors)")
    try:
        ticket.mask.check_fits(model)
    except (KeyError, ValueError) as exc:
        raise TicketFileError(f"{path}: its mask does not fit the model ({exc})") from None
    missing = sorted(set(prunable_weights(model, include_output=info.prune_output)) - set(ticket.mask))
    if missing:
        raise TicketFileError(f"{path}: the mask leaves out prunable weights {missing[:3]}")
    head = output_layer(model)[0] + ".weight"
    if (head in ticket.mask) != info.prune_output:
        raise TicketFileError(f"{path}: the output layer is {'' if head in ticket.mask else 'not '}masked, "
                              f"but prune_output is {info.prune_output}")
    checks.append(f"mask covers the {len(ticket.mask)} prunable weights (output layer {'in' if info.prune_output else 'out'})")
    fraction = ticket.mask.fraction_pruned()
    if abs(fraction - info.fraction_pruned) > 1e-9:
        raise TicketFileError(f"{path}: the mask prunes {fraction:.6f}, the metadata says {info.fraction_pruned:.6f}")
    if not info.layerwise:
        expected = expected_alive(ticket.mask.total(), info.rate, info.level)
        if ticket.mask.alive() != expected:
            raise TicketFileError(f"{path}: {ticket.mask.alive()} weights survive; level {info.level} at rate "
                                  f"{info.rate:g} leaves {expected}")
        checks.append(f"{ticket.mask.alive():,} of {ticket.mask.total():,} weights survive, as level {info.level} "
                      f"at rate {info.rate:g} should")
    if not all(torch.isfinite(t).all() for t in ticket.state.values() if t.is_floating_point()):
        raise TicketFileError(f"{path}: the rewind-point state holds NaN or infinite values")
    checks.append("all weights are finite")
    return Verified(info, checks)
