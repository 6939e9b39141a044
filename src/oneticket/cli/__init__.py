"""The ``oneticket`` command line."""

from __future__ import annotations

import sys

import typer
from rich.console import Console

from oneticket.errors import UserError

app = typer.Typer(
    name="oneticket",
    help="Find winning lottery tickets by iterative magnitude pruning with late resetting, transfer them across datasets and optimizers, compare them with random tickets.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
tickets_app = typer.Typer(help="The tickets catalogue: list, inspect, export, import and verify ticket files.", no_args_is_help=True)
app.add_typer(tickets_app, name="tickets")

err_console = Console(stderr=True, highlight=False)


EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130


class Interrupted(UserError):
    """Ctrl-C: work so far is kept."""

    exit_code = EXIT_INTERRUPTED


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; user mistakes print one line on stderr and give a non-zero exit code."""
    from oneticket.cli import catalogue, commands, experiments  # noqa: F401  (registers the commands)

    try:
        result = app(args=argv, prog_name="oneticket", standalone_mode=False)
    except typer.Exit as exc:
        return exc.exit_code
    except typer.TyperException as exc:  # usage errors: unknown option, bad value type, missing argument
        ctx = getattr(exc, "ctx", None)
        where = f"; see '{ctx.command_path} --help'" if ctx is not None else ""
        message = exc.format_message().replace("Value error, ", "").rstrip(".")
        err_console.print(f"error: {message}{where}", markup=False, soft_wrap=True)
        return getattr(exc, "exit_code", EXIT_BAD_INPUT)
    except (typer.Abort, KeyboardInterrupt):
        err_console.print("interrupted; finished work is saved, rerun the same command to continue", markup=False, soft_wrap=True)
        return EXIT_INTERRUPTED
    except Interrupted as exc:
        err_console.print(str(exc), markup=False, soft_wrap=True)
        return exc.exit_code
    except UserError as exc:
        err_console.print(f"error: {exc}", markup=False, soft_wrap=True)
        return EXIT_BAD_INPUT
    return result if isinstance(result, int) else 0


def run() -> None:  # console-script entry point
    sys.exit(main())
