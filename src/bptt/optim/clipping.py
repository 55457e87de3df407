"""Gradient clipping (Pascanu, Mikolov & Bengio 2013, "On the difficulty of training RNNs").

``grads`` is a dict ``name -> floating ndarray``; the functions return new arrays. ``net.gradients(...)``'s output
may be given as it is: its ``s0`` entry (the initial state's gradient, not a parameter) is left out, for every cell.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from bptt.optim import _checks


def global_norm(grads: Mapping[str, np.ndarray]) -> float:
    """The 2-norm of all gradients flattened and concatenated (norm of the per-array norms)."""
    grads = _checks.array_dict("grads", _checks.parameter_grads(grads))
    norms = [float(np.linalg.norm(g.ravel())) for g in grads.values()]
    return float(np.linalg.norm(np.array(norms, dtype=np.float64))) if norms else 0.0


def clip_by_global_norm(grads: Mapping[str, np.ndarray],
                        max_norm: float) -> tuple[dict[str, np.ndarray], float]:
    """Scale all gradients by ``max_norm / (norm + 1e-6)`` when that is < 1.

    The formula of ``torch.nn.utils.clip_grad_norm_``. Returns ``(clipped, norm)`` with ``norm``
    the global norm before clipping. If ``norm`` is inf or nan the gradients come back unchanged
    (copied) and the caller should test ``math.isfinite(norm)`` (a diverged step).
    """
    max_norm = _checks.positive("max_norm", max_norm)
    grads = _checks.array_dict("grads", _checks.parameter_grads(grads))
    norm = global_norm(grads)
    coef = max_norm / (norm + 1e-6)
    if not math.isfinite(norm) or coef >= 1.0:
        return {k: g.copy() for k, g in grads.items()}, norm
    return {k: g * coef for k, g in grads.items()}, norm


def clip_by_value(grads: Mapping[str, np.ndarray], limit: float) -> dict[str, np.ndarray]:
    """Clip every gradient entry to ``[-limit, limit]`` (``torch.nn.utils.clip_grad_value_``)."""
    limit = _checks.positive("limit", limit)
    grads = _checks.array_dict("grads", _checks.parameter_grads(grads))
    return {k: np.clip(g, -limit, limit) for k, g in grads.items()}
