"""The tickets catalogue: every ticket in a store, export to a publishable folder, import, verify.

An exported folder (a valid Hugging Face model repo)::

    <dir>/<model>-<dataset>-<optimizer>-<run id>-level_07.safetensors   one file per ticket (dense or compact)
    <dir>/tickets.json                                                   file -> sha256, layout + metadata
    <dir>/README.md                                                      the card: YAML metadata, what, how to load

Imported tickets go to ``<store>/imported/<run id>/level_NN/ticket.safetensors`` (the layout of a
run directory), where transfers find them by run id and level.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import tempfile
import zipfile
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path, PurePosixPath

import torch

from oneticket.errors import TicketFileError, UserError
from oneticket.files import atomic_path, link_or_copy, umask
from oneticket.models import create_model, output_layer
from oneticket.sparsity import prunable_weights
from oneticket.tickets.rundir import RunDir, imported_root, runs_root
from oneticket.tickets.card import card_text, name_repo
from oneticket.tickets.hub import check_repo_id, fetch_folder, hub_hint, is_hub_uri, push_folder
from oneticket.tickets.ticket import Ticket, TicketInfo, load_state_into, load_ticket, save_ticket

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


LICENSE_PATTERN = re.compile(r"[a-z0-9][a-z0-9.+-]*")  # Hub license ids: mit, apache-2.0, cc-by-4.0, other, ...


def export_tickets(paths: list[Path], out: Path, compact: bool = False, license: str = "mit") -> list[Path]:
    """Write verified tickets into a new folder ``out`` that is a Hugging Face model repo: the ticket
    files (``compact``: bit-packed masks and surviving weights only), ``tickets.json`` and a card
    (``README.md``, YAML front matter). The folder appears complete or not at all."""
    if not isinstance(license, str) or not LICENSE_PATTERN.fullmatch(license):
        lower = f" (ids are lower case: {license.lower()})" if isinstance(license, str) and LICENSE_PATTERN.fullmatch(license.lower()) else ""
        raise UserError(f"license {license!r} is not a license id{lower}; give a Hub license id such as mit, apache-2.0 or cc-by-4.0")
    if out.exists() and any(out.iterdir()):
        raise UserError(f"{out} exists and is not empty; choose a new folder to export into")
    tickets = [(p, load_ticket(p)) for p in paths]
    if not tickets:
        raise UserError("no tickets to export")
    entries = [(export_name(t.info), t, p) for p, t in tickets]
    names = [name for name, _, _ in entries]
    if len(set(names)) != len(names):
        twice = sorted({n for n in names if names.count(n) > 1})[0]
        raise UserError(f"two of the tickets would both be written as {twice} (the same run and level from two "
                        "stores?); export them into separate folders")
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        index = {}
        for name, ticket, path in entries:
            if compact:
                save_ticket(staging / name, ticket, compact=True)
            else:
                shutil.copyfile(path, staging / name)
            layout = "compact" if compact or ticket.compact else "dense"
            index[name] = {"sha256": file_sha256(staging / name), "layout": layout, "info": asdict(ticket.info)}
        (staging / INDEX_FILE).write_text(json.dumps(index, indent=2, sort_keys=True) + "\n")
        (staging / CARD_FILE).write_text(card_text([(n, t.info, compact or t.compact) for n, t, _ in entries], license))
        staging.chmod(0o777 & ~umask())  # mkdtemp makes 0700: a folder to publish gets the user's usual mode
        if out.exists():
            out.rmdir()
        staging.rename(out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return [out / name for name, _, _ in entries]


def checked_folder(folder: Path) -> list[Path]:
    """The ticket files of an exported folder, each checked against ``tickets.json`` (when there is
    one: a listed file must be present and match its checksum)."""
    files = sorted(folder.glob("*.safetensors"))
    index_file = folder / INDEX_FILE
    try:
        index = json.loads(index_file.read_text()) if index_file.exists() else {}
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise TicketFileError(f"{index_file} is damaged ({exc}); get a fresh copy of the folder") from None
    absent = sorted(set(index) - {path.name for path in files})
    if absent:
        raise TicketFileError(f"{folder} lacks {absent[0]}, which {index_file.name} lists; get a complete copy of the folder")
    unlisted = sorted({path.name for path in files} - set(index)) if index else []
    if unlisted:
        raise TicketFileError(f"{folder / unlisted[0]} is not listed in {index_file.name}; take it out of the folder, or "
                              "export the tickets again")
    for path in files:
        expected = index.get(path.name, {}).get("sha256")
        if expected is not None and expected != file_sha256(path):
            raise TicketFileError(f"{path} does not match the checksum in {index_file}; get a fresh copy")
    return files


def publish(folder: Path, repo_id: str, private: bool = False, revision: str | None = None) -> tuple[str, int]:
    """Push an exported folder to the Hub model repo ``repo_id`` after checking every ticket in it:
    exactly its checked ticket files, ``tickets.json`` and its card, the card naming the repo (the
    folder itself is left as it is). Returns (commit URL, tickets pushed)."""
    check_repo_id(repo_id)
    files = checked_folder(folder) if folder.is_dir() else []
    if not files or not (folder / CARD_FILE).is_file():
        raise UserError(f"{folder} is not an exported ticket folder (ticket files and {CARD_FILE}); write one with "
                        "'oneticket tickets export DIR --from RUN'")
    for path in files:
        verify_ticket(path)
    with tempfile.TemporaryDirectory(prefix="oneticket-push-") as staging:  # the folder itself is left untouched
        staged = Path(staging)
        for path in [*files, *([folder / INDEX_FILE] if (folder / INDEX_FILE).is_file() else [])]:
            link_or_copy(path, staged / path.name)
        (staged / CARD_FILE).write_text(name_repo((folder / CARD_FILE).read_text(), repo_id, revision))
        return push_folder(staged, repo_id, private, revision), len(files)


MAX_ZIP_BYTES = 16 << 30  # what a zip of tickets may unpack to
ZIP_ERRORS = (zlib.error, EOFError, RuntimeError, NotImplementedError)  # damaged, encrypted, an unknown method


def _zip_members(archive: zipfile.ZipFile, path: Path) -> list[tuple[zipfile.ZipInfo, PurePosixPath]]:
    """The ticket files and ``tickets.json`` of a zip, checked: inside one folder, each name once."""
    wanted = []
    for member in archive.infolist():
        name = PurePosixPath(member.filename)
        if name.is_absolute() or ".." in name.parts:
            raise TicketFileError(f"{path} holds a file outside its folder ({member.filename}); refusing to unpack it")
        if member.is_dir() or "__MACOSX" in name.parts or name.name.startswith("._"):
            continue  # folders, and the resource forks macOS adds to zips
        if name.suffix == ".safetensors" or name.name == INDEX_FILE:
            wanted.append((member, name))
    if len({name.parent for _, name in wanted}) > 1:
        raise TicketFileError(f"{path} holds ticket files in several folders; zip one exported folder")
    names = [name.name for _, name in wanted]
    if len(set(names)) != len(names):
        raise TicketFileError(f"{path} holds {max(names, key=names.count)} twice; get a fresh copy")
    if sum(member.file_size for member, _ in wanted) > MAX_ZIP_BYTES:
        raise TicketFileError(f"{path} would unpack to more than {MAX_ZIP_BYTES >> 30} GiB; refusing to unpack it")
    return wanted


def unpack_zip(path: Path, into: Path) -> Path:
    """The ticket files and ``tickets.json`` of a zip (at its top or in one folder) unpacked into ``into``."""
    try:
        with zipfile.ZipFile(path) as archive:
            for member, name in _zip_members(archive, path):
                with archive.open(member) as source, open(into / name.name, "wb") as target:
                    shutil.copyfileobj(source, target)
    except zipfile.BadZipFile as exc:
        raise TicketFileError(f"{path} is not a readable zip file ({exc}); get a fresh copy") from None
    except ZIP_ERRORS as exc:
        raise TicketFileError(f"{path} cannot be unpacked ({exc}: damaged, encrypted or compressed in a way "
                              "Python's zipfile does not read); zip the exported folder again") from None
    return into


def import_tickets(source: Path | str, store: Path) -> list[tuple[Path, bool]]:
    """Verify and copy tickets into ``store``: a ticket file, an exported folder, a ``.zip`` of one,
    or ``hf://OWNER/REPO[@REV]`` (the Hugging Face Hub); returns (destination, newly copied) per
    ticket. A folder's ``tickets.json`` checksums are checked too. Every ticket is checked before
    any is copied."""
    if is_hub_uri(str(source)):
        return _import_files(checked_folder(fetch_folder(str(source))), source, store)
    hint = hub_hint(str(source))
    if hint is not None:
        raise UserError(f"{source} is a web address; {hint}")
    source = Path(source).expanduser().absolute()
    if source.is_file() and source.suffix == ".zip":
        with tempfile.TemporaryDirectory(prefix=".oneticket-zip-") as folder:
            try:
                return _import_files(checked_folder(unpack_zip(source, Path(folder))), source, store)
            except TicketFileError as exc:  # name the file inside the zip, not the unpacked copy
                raise TicketFileError(str(exc).replace(f"{folder}/", f"{source}:")) from None
    if source.is_dir():
        return _import_files(checked_folder(source), source, store)
    if source.is_file():
        return _import_files([source], source, store)
    raise UserError(f"{source}: no such ticket file, folder or .zip (or write hf://OWNER/REPO for the Hub)")


def _import_files(files: list[Path], source: Path | str, store: Path) -> list[tuple[Path, bool]]:
    if not files:
        raise UserError(f"{source} holds no .safetensors ticket files")
    checked = [(path, verify_ticket(path).info, load_ticket(path)) for path in files]  # all, before copying any
    done = []
    for path, info, ticket in checked:
        found = _read_or_none(RunDir(runs_root(store) / info.run_id).ticket_file(info.level))
        if found is not None and found.sha256 == ticket.sha256:
            done.append((found.path, False))  # found by a run of this store: the same ticket
            continue
        destination = RunDir(imported_root(store) / info.run_id).ticket_file(info.level)
        there = _read_or_none(destination)
        if there is not None and there.sha256 != ticket.sha256:
            # another ticket under the same run id and level (another machine's bits, say): keep both
            destination = RunDir(imported_root(store) / f"{info.run_id}-{ticket.sha256[:8]}").ticket_file(info.level)
            there = _read_or_none(destination)
        if there is not None and not (there.compact and not ticket.compact):
            done.append((destination, False))  # the same ticket is there (a dense file replaces a compact one)
            continue
        with atomic_path(destination) as tmp:
            shutil.copyfile(path, tmp)
        done.append((destination, True))
    return done


def _read_or_none(path: Path) -> Ticket | None:
    """The ticket at ``path``; None when there is none or it cannot be read."""
    if not path.exists():
        return None
    try:
        return load_ticket(path)
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
