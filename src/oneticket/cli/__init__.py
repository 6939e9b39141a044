"""The ``oneticket`` command line."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.console import Console

from oneticket.cli.options import HelpGroup
from oneticket.errors import UserError

app = typer.Typer(
    cls=HelpGroup,
    name="oneticket",
    help="Find winning lottery tickets by iterative magnitude pruning with late resetting, transfer them across datasets and optimizers, compare them with random tickets.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
tickets_app = typer.Typer(cls=HelpGroup, rich_markup_mode=None, help="The tickets catalogue: list, inspect, export, import and verify ticket files.", no_args_is_help=True)
app.add_typer(tickets_app, name="tickets")

err_console = Console(stderr=True, highlight=False)


def version_line() -> str:
    """``oneticket 0.1.0 (torch 2.13.0+cpu, git 1a2b3c4d5e6f)``; no git part outside a checkout."""
    import torch

    from oneticket import __version__, provenance

    commit = provenance.git_commit()
    parts = [f"torch {torch.__version__}"] + ([f"git {commit}"] if commit else [])
    return f"oneticket {__version__} ({', '.join(parts)})"


def _print_version(value: bool) -> None:
    if value:
        typer.echo(version_line())
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[bool, typer.Option("--version", is_eager=True, callback=_print_version,
                                          help="print the versions of oneticket and torch and the git commit, and exit")] = False,
) -> None:
    """Options of ``oneticket`` itself (the app's help text stays the one given to typer.Typer)."""


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
        if type(exc).__name__ == "NoArgsIsHelpError":  # a group called with no command (typer vendors click: match by name, as typer does)
            sys.stdout.write(exc.format_message() + "\n")
            return getattr(exc, "exit_code", EXIT_BAD_INPUT)
        ctx = getattr(exc, "ctx", None)
        where = f"; see '{ctx.command_path} --help'" if ctx is not None else ""
        message = exc.format_message().replace("Value error, ", "").rstrip(".")
        if message.strip():
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
