"""``python -m oneticket``: the same as the ``oneticket`` command."""

from oneticket.cli import run

run()
