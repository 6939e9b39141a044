"""Hyperparameters as data: CLI options generated from a pydantic spec's fields.

One field gives one flag (``train_size`` -> ``--train-size``), its help text (the field's
description), its default and its choices; the command receives the values as keyword arguments
and builds the validated spec with :func:`build_spec`.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import typer
from pydantic import BaseModel, ValidationError

from oneticket.errors import UserError


def spec_parameters(spec_class: type[BaseModel]) -> list[inspect.Parameter]:
    """One keyword-only parameter (a typer option) per field of ``spec_class``."""
    params = []
    for name, field in spec_class.model_fields.items():
        option = typer.Option(field.default, help=field.description, show_default=field.default is not None)
        params.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=option, annotation=field.annotation))
    return params


def with_parameters(fn: Callable[..., Any], params: list[inspect.Parameter]) -> Callable[..., Any]:
    """Give ``fn(**kwargs)`` the signature typer reads its options from."""
    fn.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    fn.__annotations__ = {p.name: p.annotation for p in params}
    return fn


def flag_name(field: str) -> str:
    return "--" + field.replace("_", "-")


def validation_message(exc: ValidationError) -> str:
    """One line naming each bad flag, what is wrong and the value given."""
    parts = []
    for error in exc.errors():
        message = error["msg"].removeprefix("Value error, ")
        if error["loc"]:
            parts.append(f"{flag_name(str(error['loc'][0]))}: {message} (got {error['input']!r})")
        else:
            parts.append(message)
    return "; ".join(parts)


def build_spec(spec_class: type[BaseModel], values: dict[str, Any]) -> Any:
    """Validate ``values`` into ``spec_class``; a bad value becomes a one-line :class:`UserError`."""
    try:
        return spec_class(**{k: v for k, v in values.items() if k in spec_class.model_fields})
    except ValidationError as exc:
        raise UserError(validation_message(exc)) from None
