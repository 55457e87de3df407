"""Data shipped with bptt, by short name: ``--data airline`` (series) and ``--data docs`` (text).

A ``--data`` value that names an existing file is that file (a folder of that name is not); otherwise a shipped
name selects the shipped data of the task's kind. Anything else is left as it is (the loader then says that the
file is missing).
"""

from __future__ import annotations

import os

from .series import BUILTIN_SERIES, builtin_series
from .text import BUILTIN_TEXT

#: short name -> what it is, by task
SERIES = {"airline": "monthly international airline passengers 1949-1960, 144 values (Box & Jenkins)"}
TEXT = {"docs": "the docstrings of a fixed list of Python standard-library modules (built from this Python; "
                "the default)"}


def resolve(task: str, data: str | None) -> str | None:
    """The path (or built-in source name) that ``data`` stands for, for the ``task`` ("text" or "series")."""
    if data is None or os.path.isfile(data):
        return data
    if task == "series" and data in BUILTIN_SERIES:
        return str(builtin_series(data))
    if task == "text" and data in TEXT:
        return BUILTIN_TEXT
    return data


def listing() -> str:
    """One line for help texts: the shipped names and what they are."""
    return "; ".join([f"--data {k} (series): {v}" for k, v in SERIES.items()]
                     + [f"--data {k} (text): {v}" for k, v in TEXT.items()])


def cli_message(msg: str) -> str:
    """A data-module message in the command line's words (the option, not the function argument)."""
    return msg.replace("pass column= (a name or 0-based index)", "choose one with --column (a name or 0-based index)")
