"""Settings to validated specs, with one-line errors that name the setting as the caller wrote it.

The CLI names a setting by its flag (``--train-size``), the Python API by its keyword
(``train_size``); both build specs through :func:`build_spec`, so they accept and refuse the same
values with the same words.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from oneticket.errors import UserError

SpecT = TypeVar("SpecT", bound=BaseModel)
Naming = Callable[[str], str]


def flag_name(field: str) -> str:
    """``train_size`` -> ``--train-size``."""
    return "--" + field.replace("_", "-")


def keyword_name(field: str) -> str:
    """``train_size`` -> ``train_size``: how the Python API names a setting."""
    return field


def validation_message(exc: ValidationError, naming: Naming = flag_name) -> str:
    """One line naming each bad setting, what is wrong and the value given."""
    parts = []
    for error in exc.errors():
        message = error["msg"].removeprefix("Value error, ").replace("Input should be", "must be")
        if error["loc"]:
            parts.append(f"{naming(str(error['loc'][0]))}: {message} (got {error['input']!r})")
        else:
            parts.append(message)
    return "; ".join(parts)


def build_spec(spec_class: type[SpecT], values: Mapping[str, Any], naming: Naming = flag_name) -> SpecT:
    """Validate ``values`` into ``spec_class`` (keys it has no field for are ignored); a bad value
    becomes a one-line :class:`UserError`."""
    try:
        return spec_class(**{k: v for k, v in values.items() if k in spec_class.model_fields})
    except ValidationError as exc:
        raise UserError(renamed(validation_message(exc, naming), spec_class.model_fields, naming)) from None


def renamed(message: str, fields: Iterable[str], naming: Naming) -> str:
    """A message whose checks name settings by flag (``--rewind``), with each named as ``naming`` does."""
    if naming is flag_name:
        return message
    for field in sorted(fields, key=len, reverse=True):  # --train-size before --train
        message = message.replace(f"{field} ({flag_name(field)})", naming(field))
        message = re.sub(rf"{re.escape(flag_name(field))}(?![\w-])", naming(field), message)
    return message


def check_known(values: Iterable[str], known: Iterable[str], what: str) -> None:
    """Raise a one-line :class:`UserError` for a setting ``what`` does not take (a typo, say)."""
    known = list(known)
    for name in values:
        if name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise UserError(f"{what} takes no setting {name!r}; {hint}its settings: {', '.join(known)}")
