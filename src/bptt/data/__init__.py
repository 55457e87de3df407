"""Data and metrics for bptt: synthetic tasks, character-level text, numeric series (NumPy only).

Tasks share one interface (see :mod:`bptt.data.tasks`): ``batch(rng, B)``, ``heldout(n, seed)``,
``metric(Y, D)``, ``describe()``, plus ``name``, ``loss``, ``n_in``, ``n_out``, ``length`` and ``at``.
Create them with ``get_task(name, **params)``; names in ``TASKS``. Sources are cited in
:mod:`bptt.data.tasks` and ``datasets/README.md``.
"""
from ._common import HELDOUT_TAG, at_steps, bits_per_char, heldout_rng, loss_mask
from .series import BUILTIN_SERIES, SeriesData, SeriesTask, builtin_series
from .tasks import (TASKS, AddingTask, CopyTask, OrderTask, SineTask, Task, at_indices, get_task,
                    task_from_description)
from .text import BUILTIN_TEXT, StreamChunk, TextData, TextTask, builtin_text, write_builtin_text

__all__ = [
    "HELDOUT_TAG", "at_steps", "bits_per_char", "heldout_rng", "loss_mask",
    "BUILTIN_SERIES", "SeriesData", "SeriesTask", "builtin_series",
    "TASKS", "AddingTask", "CopyTask", "OrderTask", "SineTask", "Task", "at_indices", "get_task",
    "task_from_description",
    "BUILTIN_TEXT", "StreamChunk", "TextData", "TextTask", "builtin_text", "write_builtin_text",
]
