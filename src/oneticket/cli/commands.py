"""``oneticket find`` and ``oneticket tickets show``."""

from __future__ import annotations

import inspect
import os
from pathlib import Path
from typing import Any

import torch
import typer
from rich.console import Console

from oneticket.cli import Interrupted, app, tickets_app
from oneticket.cli.display import FindDisplay, results_table, ticket_tables
from oneticket.cli.options import build_spec, existing_folder, spec_parameters, with_parameters
from oneticket.tickets import ImpSpec, RunDir, find_tickets, load_ticket
from oneticket.training import Speed, resolve_device

STORE_ENV = "ONETICKET_STORE"
EXIT_DIVERGED = 1

console = Console(highlight=False)


def default_store() -> Path:
    return Path(os.environ.get(STORE_ENV) or Path.home() / ".oneticket").expanduser()


RUN_PARAMETERS = [
    inspect.Parameter(
        "data_dir", inspect.Parameter.KEYWORD_ONLY, annotation=Path | None,
        default=typer.Option(None, metavar="DIR", callback=existing_folder, help="folder with the datasets (default: $ONETICKET_DATA or ~/.oneticket/data); missing files are downloaded"),
    ),
    inspect.Parameter(
        "store", inspect.Parameter.KEYWORD_ONLY, annotation=Path | None,
        default=typer.Option(None, metavar="DIR", help="where runs are kept (default: $ONETICKET_STORE or ~/.oneticket)", show_default=False),
    ),
    inspect.Parameter(
        "device", inspect.Parameter.KEYWORD_ONLY, annotation=str,
        default=typer.Option("auto", metavar="DEVICE", help="auto (CUDA if available), cpu, cuda or cuda:N"),
    ),
    inspect.Parameter(
        "channels_last", inspect.Parameter.KEYWORD_ONLY, annotation=bool,
        default=typer.Option(True, help="channels-last (NHWC) memory format: faster convolutions; not part of the run id"),
    ),
    inspect.Parameter(
        "compile", inspect.Parameter.KEYWORD_ONLY, annotation=bool,
        default=typer.Option(False, help="torch.compile the training step (no gain measured so far; on CPU needs a C++ compiler); not part of the run id"),
    ),
    inspect.Parameter(
        "threads", inspect.Parameter.KEYWORD_ONLY, annotation=int | None,
        default=typer.Option(None, min=1, metavar="N", show_default=False,
                             help="PyTorch CPU threads (default: all cores); CPU results are bit-identical for the same count; not part of the run id"),
    ),
    inspect.Parameter(
        "eval_every", inspect.Parameter.KEYWORD_ONLY, annotation=int | None,
        default=typer.Option(None, min=1, metavar="N", show_default=False,
                             help="evaluate the test set every N epochs and after the last (default: the least N with N x training images >= 10 x test images); not part of the run id"),
    ),
]


def find(**values: Any) -> int:
    """Find winning tickets: train, prune, rewind, repeat; one ticket file per level.

    Rerunning the same command resumes an interrupted run (finished levels are skipped); asking for more --levels continues the same run.
    """
    spec: ImpSpec = build_spec(ImpSpec, values)
    device = resolve_device(values["device"])
    speed = Speed(channels_last=values["channels_last"], compile=values["compile"], eval_every=values["eval_every"])
    store = values["store"] or default_store()
    if values["threads"] is not None:
        torch.set_num_threads(values["threads"])
    try:
        with FindDisplay(console) as display:
            results = find_tickets(spec, store, values["data_dir"], device, display, speed=speed)
    except KeyboardInterrupt:
        raise Interrupted("interrupted; finished epochs are checkpointed, rerun the same command to continue") from None
    run_dir = RunDir.for_spec(store, spec).root
    console.print(results_table(results))
    console.print(f"run folder: {run_dir}", soft_wrap=True, markup=False)  # unwrapped: to copy whole
    if results and results[-1].diverged:
        console.print(f"[red]stopped: level {results[-1].level} diverged; its message is in {run_dir}[/]")
        return EXIT_DIVERGED
    return 0


app.command(no_args_is_help=False)(with_parameters(find, spec_parameters(ImpSpec) + RUN_PARAMETERS))


@tickets_app.command("show")
def show(path: Path = typer.Argument(..., metavar="FILE", help="a ticket file (.safetensors)")) -> None:
    """Print a ticket's metadata and its sparsity per layer."""
    ticket = load_ticket(path)
    for table in ticket_tables(ticket, path):
        console.print(table)
