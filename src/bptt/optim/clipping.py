"""Gradient clipping (Pascanu, Mikolov & Bengio 2013, "On the difficulty of training RNNs").

``grads`` is a dict ``name -> floating ndarray``; the functions return new arrays. ``net.gradients(...)``'s output
may be given as it is: its ``s0`` entry (the initial state's gradient, not a parameter) is left out, for every cell.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping

import numpy as np

from bptt.errors import InputError
from bptt.optim import _checks


def global_norm(grads: Mapping[str, np.ndarray]) -> float:
    """The 2-norm of all gradients flattened and concatenated: sqrt of the sum of each array's dot
    product with itself (one BLAS dot per array, in the arrays' dtype; the sum in Python floats)."""
    grads = _checks.array_dict("grads", _checks.parameter_grads(grads))
    total = 0.0
    for g in grads.values():
        flat = g.ravel()
        total += float(np.dot(flat, flat))
    return math.sqrt(total)


def clip_by_global_norm(grads: Mapping[str, np.ndarray], max_norm: float,
                        norm: float | None = None) -> tuple[dict[str, np.ndarray], float]:
    """Scale all gradients by ``max_norm / (norm + 1e-6)`` when that is < 1.

    The formula of ``torch.nn.utils.clip_grad_norm_``. Returns ``(clipped, norm)`` with ``norm``
    the global norm before clipping. If ``norm`` is inf or nan the gradients come back unchanged
    (copied) and the caller should test ``math.isfinite(norm)`` (a diverged step). ``norm``: the
    caller's ``global_norm(grads)`` when it has it already (computed here otherwise).
    """
    max_norm = _checks.positive("max_norm", max_norm)
    grads = _checks.array_dict("grads", _checks.parameter_grads(grads))
    if norm is None:
        norm = global_norm(grads)
    elif isinstance(norm, bool) or not isinstance(norm, numbers.Real) or norm < 0:
        raise InputError(f"norm must be the gradients' global norm (a float >= 0, inf or nan), got {norm!r}; "
                         "pass global_norm(grads) or leave it out")
    else:
        norm = float(norm)
    coef = max_norm / (norm + 1e-6)
    if not math.isfinite(norm) or coef >= 1.0:
        return {k: g.copy() for k, g in grads.items()}, norm
    return {k: g * coef for k, g in grads.items()}, norm


def clip_by_value(grads: Mapping[str, np.ndarray], limit: float) -> dict[str, np.ndarray]:
    """Clip every gradient entry to ``[-limit, limit]`` (``torch.nn.utils.clip_grad_value_``)."""
    limit = _checks.positive("limit", limit)
    grads = _checks.array_dict("grads", _checks.parameter_grads(grads))
    return {k: np.clip(g, -limit, limit) for k, g in grads.items()}
