"""Hyperparameters as data: CLI options generated from a pydantic spec's fields.

One field gives one flag (``train_size`` -> ``--train-size``), its help text (the field's
description), its default and its choices; the command receives the values as keyword arguments
and builds the validated spec with :func:`build_spec`.

Also how options look in ``--help``: :class:`HelpGroup` gives every command short metavars (``N``,
``DIR``, ``<sgd|adam>``, nothing for a flag) in place of this typer's type names (``<int range>``,
``<path>``, ``<bool>``) and number ranges.
"""

from __future__ import annotations

import inspect
import types
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Union, get_args, get_origin

import typer
from pydantic import BaseModel
from typer.core import TyperArgument, TyperGroup, TyperOption

if TYPE_CHECKING:
    from typer._click import Command, Context  # this typer's own click

from oneticket.data import data_dir_problem
from oneticket.validation import build_spec, flag_name  # noqa: F401  (the CLI's spec builder and flag names)


def existing_folder(value: Path | None) -> Path | None:
    """A ``--data-dir`` is a folder, or a new one in a folder that exists (downloads go there): a
    mistyped path (``../shared/datasets`` from the wrong place) must not start a download into it."""
    problem = None if value is None else data_dir_problem(value)
    if problem is not None:
        raise typer.BadParameter(problem.replace("leave the data folder out", "leave --data-dir out"))
    return value


def choices(values: Iterable[str]) -> str:
    """The metavar of an option that takes one of a fixed set of values: ``<sgd|adam>``."""
    return "<" + "|".join(values) + ">"


TYPE_METAVARS: dict[Any, str] = {int: "N", float: "X", str: "TEXT", Path: "PATH"}
FIELD_METAVARS = {  # spec fields whose type alone says too little
    "model": "MODEL", "dataset": "DATASET", "stem": choices(("imagenet", "cifar")), "width": "FACTOR",
    "rate": "RATE", "rewind": "POINT", "warmup": "LENGTH", "lr": "LR", "seed": "SEED", "finder": "NAME",
}


def _without_none(annotation: Any) -> Any:
    """``int | None`` -> ``int``."""
    if get_origin(annotation) in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        return args[0] if len(args) == 1 else annotation
    return annotation


def field_metavar(name: str, annotation: Any) -> str:
    """What ``--help`` shows for a spec field's option: its choices, nothing for a flag, else a word."""
    base = _without_none(annotation)
    if base is bool:
        return ""
    if name in FIELD_METAVARS:
        return FIELD_METAVARS[name]
    if get_origin(base) is Literal:
        return choices(map(str, get_args(base)))
    return FIELD_METAVARS.get(name) or TYPE_METAVARS.get(base, name.upper())


def _cli_annotation(annotation: Any) -> Any:
    """A list-valued field is one comma-separated flag (``--sparsities 0.5,0.9``), parsed by the spec."""
    return str | None if get_origin(_without_none(annotation)) in (tuple, list) else annotation


def spec_parameters(spec_class: type[BaseModel]) -> list[inspect.Parameter]:
    """One keyword-only parameter (a typer option) per field of ``spec_class``."""
    params = []
    for name, field in spec_class.model_fields.items():
        annotation = _cli_annotation(field.annotation)
        metavar = "X,X,..." if annotation is not field.annotation else field_metavar(name, field.annotation)
        option = typer.Option(field.default, help=field.description, show_default=field.default is not None, metavar=metavar)
        params.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=option, annotation=annotation))
    return params


def with_parameters(fn: Callable[..., Any], params: list[inspect.Parameter]) -> Callable[..., Any]:
    """Give ``fn(**kwargs)`` the signature typer reads its options from."""
    fn.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    fn.__annotations__ = {p.name: p.annotation for p in params}
    return fn


class _Argument(TyperArgument):
    """An argument shown by its metavar alone: ``SPEC...``, not ``{specs}...`` and ``<list[Path]>``."""

    def display_type_rich(self, ctx: Context) -> str | None:
        return None if self.metavar is not None else super().display_type_rich(ctx)

    def get_usage_pieces(self, ctx: Context) -> list[str]:
        if self.metavar is None:
            return super().get_usage_pieces(ctx)
        return [self.metavar if self.required else f"[{self.metavar}]"]


def tidy_params(params: Iterable[Any]) -> None:
    """Short ``--help`` for ``params``: flags show no type, ranges are left to the help text (typer
    still checks them), an argument with a metavar shows only it."""
    for param in params:
        if isinstance(param, TyperOption):
            if param.is_flag and param.metavar is None:
                param.metavar = ""
            param.min = param.max = None  # display only: values are checked against the declared range
        elif type(param) is TyperArgument:
            param.__class__ = _Argument


class HelpGroup(TyperGroup):
    """A command group whose own options and commands get :func:`tidy_params`, ``--help`` included."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        tidy_params(self.params)

    def get_command(self, ctx: Context, cmd_name: str) -> Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            tidy_params([*command.params, command.get_help_option(ctx)])
        return command

    def get_help_option(self, ctx: Context) -> TyperOption | None:
        option = super().get_help_option(ctx)
        tidy_params([option])
        return option
