"""oneticket: find, transfer and compare lottery tickets.

The Python API (:mod:`oneticket.api`) is importable from here: ``import oneticket as ot``, then
``ot.find``, ``ot.transfer``, ``ot.run_experiment``, ``ot.results``, ``ot.load_ticket``,
``ot.load_model``, ``ot.apply_mask``, ``ot.remove_mask``, ``ot.save_ticket``, ``ot.import_tickets``,
``ot.export_tickets``, ``ot.push_tickets``. It is imported on first use, so ``import oneticket``
stays light.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_API = {
    "find", "transfer", "run_experiment", "results", "load_ticket", "load_model", "apply_mask", "remove_mask",
    "save_ticket", "import_tickets", "export_tickets", "push_tickets", "default_store", "Run", "Trained",
}
_ERRORS = {"UserError", "TicketFileError"}
__all__ = sorted(_API | _ERRORS | {"__version__"})


def __getattr__(name: str) -> Any:
    if name in _API:
        from oneticket import api

        return getattr(api, name)
    if name in _ERRORS:
        from oneticket import errors

        return getattr(errors, name)
    raise AttributeError(f"module 'oneticket' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
