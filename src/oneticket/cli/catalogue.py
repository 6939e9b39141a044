"""``oneticket tickets list | export | push | import | verify`` (``show`` is with ``find``)."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich import box
from rich.table import Table

from oneticket.cli import tickets_app
from oneticket.api import ticket_files
from oneticket.cli.experiments import StoreOption, _store, demo_store
from oneticket.errors import UserError
from oneticket.tickets import TicketInfo, runs_root
from oneticket.tickets.catalogue import (
    CatalogueEntry,
    DamagedEntry,
    catalogue_all,
    export_tickets,
    import_tickets,
    publish,
    verify_ticket,
)

console = Console(highlight=False)


def demo_hint() -> str | None:
    """A line on the demo's tickets (kept in their own store), or None before any demo ran."""
    runs = runs_root(demo_store())
    if not runs.is_dir():
        return None
    count = sum(1 for _ in runs.glob("*/level_*/ticket.safetensors"))  # the files the catalogue reads
    return f"the demo made {count} ticket(s), in its own store: oneticket tickets list --store {shlex.quote(str(demo_store()))}"


def _short_percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _pruned_percent(value: float) -> str:
    """Up to two decimals, as pruning levels have them: ``93.75%``, ``50%``."""
    return f"{100 * value:.2f}".rstrip("0").rstrip(".") + "%"


def _tickets_table(title: str, entries: list[CatalogueEntry]) -> Table:
    table = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    imported = any(e.imported for e in entries)
    for column in ("dataset", "opt", "model", "seed", "level", "pruned", "acc", "run") + (("origin",) if imported else ()):
        table.add_column(column, justify="right" if column in ("seed", "level", "pruned", "acc") else "left",
                         no_wrap=column in ("run", "model", "dataset"))
    for e in entries:
        i = e.info
        short_model = f"{i.model} w{i.width:g}" + "".join(f" {k}={v}" for k, v in i.model_options.items())
        table.add_row(i.dataset, i.optimizer, short_model, str(i.seeds.get("seed", "-")), str(i.level),
                      _pruned_percent(i.fraction_pruned), _short_percent(i.test_accuracy), i.run_id,
                      *(("imported" if e.imported else "found",) if imported else ()))
    return table


def _finder(info: TicketInfo) -> str:
    """``imp``, ``imp 5ep`` (short mask training), ``snip``."""
    epochs = info.finder_settings.get("mask_epochs")
    return f"{info.finder} {epochs}ep" if epochs else info.finder


@tickets_app.command("list")
def list_tickets(
    store: StoreOption = None,
    dataset: Annotated[str | None, typer.Option(metavar="DATASET", help="only tickets found on this dataset", show_default=False)] = None,
    model: Annotated[str | None, typer.Option(metavar="MODEL", help="only tickets of this model", show_default=False)] = None,
) -> None:
    """List the tickets in the store: source dataset, optimizer, model, level, % pruned, accuracy."""
    store_path = _store(store)
    found = catalogue_all(store_path)
    damaged = [e for e in found if isinstance(e, DamagedEntry)]
    entries = [e for e in found if isinstance(e, CatalogueEntry)
               and (dataset is None or e.info.dataset == dataset) and (model is None or e.info.model == model)]
    entries.sort(key=lambda e: (e.info.dataset, e.info.optimizer, e.info.describe_model(), e.info.seeds.get("seed", -1),
                                e.info.run_id, e.info.level))
    groups: dict[str, list[CatalogueEntry]] = {}
    for e in entries:  # one table per finder (IMP first) when several made the store's tickets
        groups.setdefault(_finder(e.info), []).append(e)
    tables = [_tickets_table(f"tickets in {store_path}" + ("" if list(groups) == ["imp"] else f" found by {by}"), group)
              for by, group in sorted(groups.items(), key=lambda item: item[0] != "imp")]
    if entries:
        for table in tables:
            console.print(table)
        console.print(f"files: {store_path}/{{runs,imported}}/<run>/level_NN/ticket.safetensors")
    for entry in damaged:
        console.print(f"damaged: {entry.problem}", style="red", markup=False, soft_wrap=True)
    if any(not e.imported for e in damaged):
        console.print("a damaged ticket of a run is made again by deleting its level folder (and the later ones) "
                      "and rerunning the run's command; 'oneticket tickets verify FILE' says more", soft_wrap=True)
    if any(e.imported for e in damaged):
        console.print("a damaged imported ticket: delete its file and import the ticket again", soft_wrap=True)
    if not entries and not damaged:
        console.print(f"no tickets in {store_path} yet: 'oneticket find' or 'oneticket run' makes them, 'oneticket tickets import' adds some")
    hint = demo_hint() if store is None else None
    if hint:
        console.print(hint, soft_wrap=True, markup=False)


@tickets_app.command("export")
def export(
    out: Annotated[Path, typer.Argument(metavar="DIR", help="new folder to write (must not exist or be empty)", show_default=False)],
    from_: Annotated[list[str], typer.Option("--from", metavar="RUN", help="run directory, run id or ticket file (repeatable)", show_default=False)],
    levels: Annotated[str | None, typer.Option(metavar="LEVELS", help="comma-separated levels (default: all)", show_default=False)] = None,
    compact: Annotated[bool, typer.Option("--compact", help="store only what each ticket holds: a bit-packed mask and the surviving weights (loads to the same masked model; --variant random-mask needs the dense files)")] = False,
    license: Annotated[str, typer.Option(metavar="ID", help="the license the card declares (a Hub license id: mit, apache-2.0, cc-by-4.0, ...)")] = "mit",
    store: StoreOption = None,
) -> None:
    """Write tickets to a folder that is a Hugging Face model repo: the ticket files, tickets.json and a README card with YAML metadata (one test accuracy per level)."""
    from oneticket.cli.experiments import _parse_levels
    from oneticket.tickets import load_ticket

    wanted = _parse_levels(levels)
    paths = [p for source in from_ for p in ticket_files(source, _store(store))]
    if wanted is not None:
        paths = [p for p in paths if load_ticket(p).info.level in wanted]
    if not paths:
        raise UserError(f"no tickets at levels {levels} in {', '.join(from_)}")
    written = export_tickets(paths, out, compact=compact, license=license)
    size = sum(path.stat().st_size for path in written)
    console.print(f"exported {len(written)} ticket(s), {_megabytes(size)}, to {out} (card: {out / 'README.md'})", soft_wrap=True, markup=False)
    console.print(f"publish it: oneticket tickets push {shlex.quote(str(out))} --repo OWNER/NAME", soft_wrap=True, markup=False)


def _megabytes(size: int) -> str:
    return f"{size / 1e6:.2f} MB" if size < 1e9 else f"{size / 1e9:.2f} GB"


@tickets_app.command("push")
def push(
    folder: Annotated[Path, typer.Argument(metavar="DIR", help="a folder written by 'oneticket tickets export'", show_default=False)],
    repo: Annotated[str, typer.Option(metavar="OWNER/NAME", help="the Hugging Face model repo (created when missing)", show_default=False)],
    private: Annotated[bool, typer.Option("--private", help="create the repo private")] = False,
    revision: Annotated[str | None, typer.Option(metavar="BRANCH", help="the branch to commit to (default: main)", show_default=False)] = None,
) -> None:
    """Upload an exported ticket folder to the Hugging Face Hub (needs pip install 'oneticket[hub]' and a login: hf auth login).

    Every ticket is verified first; only the ticket files, tickets.json and README.md are uploaded.
    """
    url, count = publish(folder, repo, private, revision)
    console.print(f"pushed {count} ticket(s) to {url}", soft_wrap=True, markup=False)
    console.print(f"fetch them anywhere: oneticket tickets import hf://{repo}", soft_wrap=True, markup=False)


@tickets_app.command("import")
def import_(
    source: Annotated[str, typer.Argument(metavar="SOURCE", help="a ticket file, an exported folder, a .zip of one, or hf://OWNER/REPO[@REVISION] (needs pip install 'oneticket[hub]')", show_default=False)],
    store: StoreOption = None,
) -> None:
    """Verify tickets and copy them into the store, where 'oneticket transfer --from RUN_ID' finds them."""
    done = import_tickets(source, _store(store))
    for destination, new in done:
        beside = "-" in destination.parent.parent.name  # <run id>-<content>: another ticket had its place
        what = "imported beside a different ticket of the same run and level" if beside and new else \
            "imported" if new else "already there"
        console.print(f"{what}: {destination}", soft_wrap=True, markup=False)


@tickets_app.command("verify")
def verify(path: Annotated[Path, typer.Argument(metavar="FILE", help="a ticket file (.safetensors)", show_default=False)]) -> None:
    """Check a ticket file end to end: checksum, metadata, model, shapes, mask counts, finite weights."""
    result = verify_ticket(path)
    for check in result.checks:
        console.print(f"[green]ok[/] {check}")
    console.print(f"{path}: a valid ticket ({result.info.describe_model()}, {result.info.dataset}, level {result.info.level})")
