"""Cell registry. Adding a cell means one file here and one line in ``CELLS``."""

from __future__ import annotations

from ..errors import InputError
from .base import INITS, Cell
from .elman import ElmanCell
from .gru import GRUCell
from .lstm import LSTMCell

CELLS: dict[str, type[Cell]] = {"elman": ElmanCell, "lstm": LSTMCell, "gru": GRUCell}


def make(name: str, **options) -> Cell:
    """Build a cell by registry name with its options (g1 for Elman, forget_bias for LSTM, ...)."""
    if name not in CELLS:
        raise InputError(f"cell: unknown cell {name!r}; expected one of {', '.join(CELLS)}")
    return CELLS[name](**options)


__all__ = ["CELLS", "INITS", "Cell", "ElmanCell", "GRUCell", "LSTMCell", "make"]
