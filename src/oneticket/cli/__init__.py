"""The ``oneticket`` command line."""

from __future__ import annotations

import logging
import signal
import sys
from typing import Annotated

import typer
from rich.console import Console

from oneticket.cli.options import HelpGroup
from oneticket.errors import UserError
from oneticket.files import storage_fault_message

app = typer.Typer(
    cls=HelpGroup,
    name="oneticket",
    help="Find winning lottery tickets by iterative magnitude pruning with late resetting, transfer them across datasets and optimizers, compare them with random tickets.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
tickets_app = typer.Typer(cls=HelpGroup, rich_markup_mode=None, help="The tickets catalogue: list, inspect, export (Hub-ready folders, compact files), push to and import from the Hugging Face Hub, verify ticket files.", no_args_is_help=True)
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
        return _stopped("interrupted; finished work is saved, rerun the same command to continue")
    except Interrupted as exc:
        return _stopped(str(exc))
    except UserError as exc:
        err_console.print(f"error: {exc}", markup=False, soft_wrap=True)
        return getattr(exc, "exit_code", EXIT_BAD_INPUT)  # a few say the fault is elsewhere (the Hub unreachable: 69)
    except OSError as exc:
        message = storage_fault_message(exc)
        if message is None:
            raise
        err_console.print(f"error: {message}", markup=False, soft_wrap=True)
        return EXIT_SYSTEM
    return result if isinstance(result, int) else 0


EXIT_TERMINATED = 143  # 128 + SIGTERM, as a shell reports a process SIGTERM ended
EXIT_SYSTEM = 74  # EX_IOERR: the machine (disk, permissions), not the command, stopped the work
_SIGNALLED: list[int] = []  # the signal that stopped this run, when one did


def _stopped(message: str) -> int:
    """Ctrl-C or SIGTERM: one line, the matching exit code; checkpoints and results are kept."""
    if _SIGNALLED and _SIGNALLED[-1] == signal.SIGTERM:
        err_console.print(message.replace("interrupted", "terminated (SIGTERM)", 1), markup=False, soft_wrap=True)
        return EXIT_TERMINATED
    err_console.print(message, markup=False, soft_wrap=True)
    return EXIT_INTERRUPTED


def _on_sigterm(signum: int, frame: object) -> None:
    """Stop as Ctrl-C does (the same cleanup and checkpoints), then exit 143."""
    _SIGNALLED.append(signum)
    raise KeyboardInterrupt


def run() -> None:  # console-script entry point
    signal.signal(signal.SIGTERM, _on_sigterm)
    warnings_to_stderr()
    sys.exit(main())


def warnings_to_stderr() -> None:
    """oneticket's warnings (a damaged checkpoint set aside, say) as one 'warning: ...' line each."""
    log = logging.getLogger("oneticket")
    if not log.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("warning: %(message)s"))
        log.addHandler(handler)
        log.propagate = False
