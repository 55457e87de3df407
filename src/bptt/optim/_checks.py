"""Argument checks shared by the optimizers, schedules and clipping (all raise ``InputError``)."""

from __future__ import annotations

import math
import numbers

import numpy as np

from bptt.errors import InputError


def real(name: str, value: object) -> float:
    """Return ``value`` as a finite Python float, or raise ``InputError`` naming ``name``."""
    # bool is an int subclass; True as a learning rate is always a mistake.
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InputError(f"{name} must be a real number, got {value!r} of type "
                         f"{type(value).__name__}; pass a float such as 0.01")
    out = float(value)
    if not math.isfinite(out):
        raise InputError(f"{name} must be finite, got {out!r}; pass a finite float")
    return out


def positive(name: str, value: object) -> float:
    """A finite float > 0."""
    out = real(name, value)
    if out <= 0.0:
        raise InputError(f"{name} must be > 0, got {out!r}; pass a positive float")
    return out


def nonnegative(name: str, value: object) -> float:
    """A finite float >= 0."""
    out = real(name, value)
    if out < 0.0:
        raise InputError(f"{name} must be >= 0, got {out!r}; pass 0 or a positive float")
    return out


def unit(name: str, value: object) -> float:
    """A float in [0, 1): a decay rate such as a momentum or Adam beta."""
    out = real(name, value)
    if not 0.0 <= out < 1.0:
        raise InputError(f"{name} must be in [0, 1), got {out!r}; typical values are 0.9 or 0.999")
    return out


def count(name: str, value: object, minimum: int = 1) -> int:
    """An integer >= ``minimum`` (NumPy integers accepted, bools and floats refused)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise InputError(f"{name} must be an integer >= {minimum}, got {value!r} of type "
                         f"{type(value).__name__}; pass an int")
    out = int(value)
    if out < minimum:
        raise InputError(f"{name} must be an integer >= {minimum}, got {out}")
    return out


def parameter_grads(grads: object, params: object = None) -> object:
    """``grads`` without the ``s0`` entry of ``net.gradients(...)`` (dE/ds0: the initial state is not a parameter),
    unless ``params`` has an ``s0``. The one rule of every optimiser and clipping function, for every cell."""
    if hasattr(grads, "items") and "s0" in grads and not (params is not None and "s0" in params):
        return {k: v for k, v in grads.items() if k != "s0"}
    return grads


def array_dict(name: str, arrays: object) -> dict[str, np.ndarray]:
    """Check a ``{name: floating ndarray}`` mapping (params or grads); return it as a dict."""
    if not hasattr(arrays, "items"):
        raise InputError(f"{name} must be a dict mapping parameter names to NumPy arrays, "
                         f"got {type(arrays).__name__}")
    out = dict(arrays.items())
    for key, arr in out.items():
        if not isinstance(key, str):
            raise InputError(f"{name} keys must be str parameter names, got key {key!r}")
        if not isinstance(arr, np.ndarray) or not np.issubdtype(arr.dtype, np.floating):
            kind = arr.dtype if isinstance(arr, np.ndarray) else type(arr).__name__
            raise InputError(f"{name}[{key!r}] must be a floating NumPy array, got {kind}; "
                             f"convert it with np.asarray(x, dtype=np.float64)")
    return out


def same_layout(params: dict[str, np.ndarray], grads: dict[str, np.ndarray]) -> None:
    """Check ``grads`` has exactly the names and shapes of ``params``."""
    if params.keys() != grads.keys():
        missing = sorted(params.keys() - grads.keys())
        extra = sorted(grads.keys() - params.keys())
        raise InputError(f"grads must have the same names as params; missing {missing}, "
                         f"unexpected {extra}")
    for key, p in params.items():
        if grads[key].shape != p.shape:
            raise InputError(f"grads[{key!r}] has shape {grads[key].shape} but params[{key!r}] "
                             f"has shape {p.shape}; they must match")
