"""oneticket: find, transfer and compare lottery tickets."""

__version__ = "0.1.0"
