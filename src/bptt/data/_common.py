"""Helpers shared by the tasks: argument checks, the held-out seed stream, loss positions, metrics.

Nothing here is public API except what ``bptt.data`` re-exports (``at_steps``, ``loss_mask``,
``heldout_rng``, ``bits_per_char``).
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from bptt.errors import InputError

# A fixed tag mixed into every held-out SeedSequence. Training code seeds its Generator with
# ``np.random.default_rng(seed)`` (SeedSequence(seed)); held-out data comes from
# SeedSequence([HELDOUT_TAG, seed]), a different entropy pool, so the two streams are
# unrelated for every seed (including equal seeds).
HELDOUT_TAG = 0x48454C44  # "HELD"

_TINY = 1e-300  # floor for log(p) so a zero probability gives a large but finite loss


def check_int(name: str, value: Any, lo: int | None = None, hi: int | None = None) -> int:
    """Return ``value`` as an int, or raise InputError naming ``name`` and the allowed range."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise InputError(f"{name} must be an integer; received {value!r} of type {type(value).__name__}. "
                         f"Pass a whole number.")
    value = int(value)
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        rng = f">= {lo}" if hi is None else (f"<= {hi}" if lo is None else f"in [{lo}, {hi}]")
        raise InputError(f"{name} must be {rng}; received {value}.")
    return value


def check_float(name: str, value: Any, lo: float | None = None, hi: float | None = None,
                lo_open: bool = False, hi_open: bool = False) -> float:
    """Return ``value`` as a finite float inside the given (open or closed) bounds, else InputError."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise InputError(f"{name} must be a number; received {value!r} of type {type(value).__name__}.")
    value = float(value)
    bad = not math.isfinite(value)
    if lo is not None:
        bad |= value <= lo if lo_open else value < lo
    if hi is not None:
        bad |= value >= hi if hi_open else value > hi
    if bad:
        left = "(" if lo_open else "["
        right = ")" if hi_open else "]"
        raise InputError(f"{name} must be a finite number in {left}{lo if lo is not None else '-inf'}, "
                         f"{hi if hi is not None else 'inf'}{right}; received {value!r}.")
    return value


def check_rng(rng: Any) -> np.random.Generator:
    """Require a ``numpy.random.Generator`` (never the global NumPy state)."""
    if not isinstance(rng, np.random.Generator):
        raise InputError(f"rng must be a numpy.random.Generator; received {type(rng).__name__}. "
                         f"Create one with numpy.random.default_rng(seed).")
    return rng


def heldout_rng(seed: int) -> np.random.Generator:
    """Generator of the held-out split for ``seed``: SeedSequence([HELDOUT_TAG, seed]).

    Deterministic in ``seed`` and a different stream from ``default_rng(seed)`` used for training.
    """
    seed = check_int("seed", seed, lo=0)
    return np.random.default_rng(np.random.SeedSequence([HELDOUT_TAG, seed]))


def at_steps(at: None | int | list[int] | tuple[int, ...], T: int) -> np.ndarray:
    """Time indices (sorted, non-negative, int64) where the loss sits for a sequence of length ``T``.

    at: None -> every step 0..T-1; an int -> that one step (negative counts from the end, -1 = last);
    a list/tuple of ints -> those steps.
    """
    T = check_int("T", T, lo=1)
    if at is None:
        return np.arange(T, dtype=np.int64)
    items = [at] if isinstance(at, (int, np.integer)) and not isinstance(at, bool) else at
    if not isinstance(items, (list, tuple)) or len(items) == 0:
        raise InputError(f"at must be None, an int or a non-empty list of ints; received {at!r}.")
    out = []
    for a in items:
        a = check_int("at entry", a, lo=-T, hi=T - 1)
        out.append(a % T)
    return np.array(sorted(set(out)), dtype=np.int64)


def loss_mask(at: None | int | list[int] | tuple[int, ...], T: int) -> np.ndarray:
    """Boolean mask (T,) that is True at the steps where the loss sits (see :func:`at_steps`)."""
    mask = np.zeros(check_int("T", T, lo=1), dtype=bool)
    mask[at_steps(at, T)] = True
    return mask


def check_outputs(Y: Any, D: np.ndarray, loss: str, n_out: int) -> np.ndarray:
    """Validate network outputs ``Y`` (T,B,O) against targets ``D`` and return Y as float64.

    For ``loss == "cross_entropy"`` Y must hold class probabilities (softmax outputs, the network's
    output after g2): non-negative, each (t, b) row summing to 1 within 1e-6.
    """
    D = np.asarray(D)
    try:
        Y = np.asarray(Y, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(f"Y must be a numeric array of shape (T,B,{n_out}); could not convert: {exc}.") from None
    T, B = D.shape[:2]
    if Y.shape != (T, B, n_out):
        raise InputError(f"Y (network outputs) must have shape (T,B,O) = {(T, B, n_out)} to match the targets; "
                         f"received {Y.shape}.")
    if not np.all(np.isfinite(Y)):
        raise InputError("Y (network outputs) contains NaN or inf; the network diverged or was fed bad data.")
    if loss == "cross_entropy":
        sums = Y.sum(axis=-1)
        if np.any(Y < -1e-12) or np.max(np.abs(sums - 1.0)) > 1e-6:
            raise InputError("Y must hold class probabilities (the softmax output after g2): non-negative, rows "
                             f"summing to 1; received rows summing to [{sums.min():.4g}, {sums.max():.4g}] "
                             f"and minimum {Y.min():.4g}. Apply softmax to logits before calling metric.")
    return Y


def class_metrics(P: np.ndarray, D: np.ndarray, steps: np.ndarray) -> dict[str, Any]:
    """Cross-entropy (nats), accuracy and per-sequence all-correct flags over ``steps``.

    P: (T,B,O) probabilities; D: (T,B) int classes; steps: (S,) time indices.
    """
    Ps, Ds = P[steps], D[steps]                                        # (S,B,O), (S,B)
    p_true = np.take_along_axis(Ps, Ds[..., None], axis=-1)[..., 0]    # (S,B)
    correct = Ps.argmax(axis=-1) == Ds                                 # (S,B)
    return {"ce": float(-np.log(np.maximum(p_true, _TINY)).mean()),
            "accuracy": float(correct.mean()),
            "all_correct": correct.all(axis=0)}                        # (B,) per sequence


def bits_per_char(mean_ce_nats: float) -> float:
    """Convert a mean cross-entropy in nats per character to bits per character (divide by ln 2)."""
    return check_float("mean_ce_nats", mean_ce_nats, lo=0.0) / math.log(2.0)


def one_hot(codes: np.ndarray, n: int) -> np.ndarray:
    """One-hot float64 encoding: codes (...) ints in [0, n) -> (..., n)."""
    out = np.zeros(codes.shape + (n,), dtype=np.float64)
    np.put_along_axis(out, codes[..., None], 1.0, axis=-1)
    return out
