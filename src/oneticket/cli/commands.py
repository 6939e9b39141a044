"""``oneticket find`` and ``oneticket tickets show``."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from oneticket import api
from oneticket.cli import Interrupted, app, tickets_app
from oneticket.cli.display import FindDisplay, plain_table, results_table, ticket_tables
from oneticket.errors import UserError
from oneticket.report.inside import LabelledMask, draw_layer_profile, layer_table, overlap_table, pair_overlaps
from oneticket.cli.options import build_spec, existing_folder, spec_parameters, with_parameters
from oneticket.tickets import ImpSpec, Ticket, check_ticket_fits, load_ticket
from oneticket.tickets.spec import FINDERS
from oneticket.training import Speed, resolve_device

EXIT_DIVERGED = 1

console = Console(highlight=False)


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

    Rerunning the same command resumes an interrupted run (finished levels are skipped); asking IMP for more --levels continues the same run (a finder's run is its list of --sparsities).
    """
    spec: ImpSpec = build_spec(ImpSpec, values)
    speed = Speed(channels_last=values["channels_last"], compile=values["compile"], eval_every=values["eval_every"])
    try:
        with FindDisplay(console) as display:
            found = api.find(spec, store=values["store"], data_dir=values["data_dir"], device=resolve_device(values["device"]),
                             threads=values["threads"], speed=speed, on_event=display)
    except KeyboardInterrupt:
        raise Interrupted("interrupted; finished epochs are checkpointed, rerun the same command to continue") from None
    results, run_dir = found.results, found.root
    console.print(results_table(results))
    console.print(f"run folder: {run_dir}", soft_wrap=True, markup=False)  # unwrapped: to copy whole
    if results and results[-1].diverged:
        console.print(f"[red]stopped: level {results[-1].level} diverged; its message is in {run_dir}[/]")
        return EXIT_DIVERGED
    return 0


find.__doc__ = (find.__doc__ or "") + "\n    Finders (--finder; all but imp take --sparsities 0.5,0.9,...):\n\n    \b\n" + "".join(
    f"    {name:17s}{text}\n" for name, text in FINDERS.items())
app.command(no_args_is_help=False)(with_parameters(find, spec_parameters(ImpSpec) + RUN_PARAMETERS))


@app.command()
def compare(
    tickets: list[Path] = typer.Argument(..., metavar="TICKET...", help="two or more ticket files (.safetensors) of one model and width"),
    figure: Path | None = typer.Option(None, metavar="FILE", help="also draw the fraction kept per layer to FILE (.png; .svg and .json beside it)"),
) -> None:
    """Look inside tickets: the fraction each layer keeps, and how much their masks overlap (intersection over union, per layer and in total) against the overlap two random masks with the same per-layer counts would have by chance."""
    if len(tickets) < 2:
        raise UserError("compare needs two or more ticket files")
    loaded = [(path, load_ticket(path)) for path in tickets]
    first = loaded[0][1]
    for path, ticket in loaded[1:]:
        check_ticket_fits(ticket, first.info.model, first.info.width, first.info.model_options, path)
        if list(ticket.mask) != list(first.mask):
            raise UserError(f"{path} masks other weights than {loaded[0][0]} (one prunes the output layer, the other not); compare tickets pruned alike")
    masks = [LabelledMask(ticket_label(path, ticket), ticket.mask) for path, ticket in loaded]
    pairs = pair_overlaps(masks)
    per_layer = pairs if len(pairs) <= 3 else []  # more pairs than fit beside the layers: totals only
    title = "weights kept per layer (%)" + (", and overlap per layer: IoU (chance)" if per_layer else "")
    for caption, (header, rows) in ((title, layer_table(masks, per_layer)), ("mask overlap in total", overlap_table(pairs))):
        console.print(plain_table(caption, header, rows))
    if not per_layer:
        console.print("per-layer overlap: compare two or three tickets at a time")
    if figure is not None:
        paths = draw_layer_profile("fraction of weights kept per layer", masks, figure.with_suffix(""))
        console.print(f"figure: {paths['png']} (and {paths['svg'].name}, the plotted numbers in {paths['json'].name})",
                      soft_wrap=True, markup=False)


def ticket_label(path: Path, ticket: Ticket) -> str:
    """``cifar10 sgd snip L3 s0``: what tells tickets apart in a comparison."""
    info = ticket.info
    return f"{info.dataset} {info.optimizer} {info.finder} L{info.level} s{info.seeds.get('seed', '?')}"


@tickets_app.command("show")
def show(path: Path = typer.Argument(..., metavar="FILE", help="a ticket file (.safetensors)")) -> None:
    """Print a ticket's metadata and its sparsity per layer."""
    ticket = load_ticket(path)
    for table in ticket_tables(ticket, path):
        console.print(table)
