"""Input checks with messages that name the argument, what came and what was expected."""

from __future__ import annotations

import numbers

import numpy as np

from .errors import InputError


def _shape(a) -> str:
    return "(" + ", ".join(str(n) for n in a.shape) + ")"


def array(name: str, a, *, ndim: int, dtype, expect: str) -> np.ndarray:
    """A floating array of rank ``ndim`` converted to ``dtype`` (float32 <-> float64 only), finite."""
    if not isinstance(a, np.ndarray):
        try:
            a = np.asarray(a)
        except Exception as e:  # ragged lists and the like
            raise InputError(f"{name}: cannot be read as an array ({e}); expected {expect}") from None
    if a.dtype.kind not in "f":
        hint = (f" (integer inputs are class codes of rank {ndim - 1}, one per step and stream, standing for "
                "one-hot vectors; class targets go in D with loss='cross_entropy')") if a.dtype.kind in "iub" else ""
        raise InputError(
            f"{name}: got dtype {a.dtype}, expected a floating-point array {expect}{hint}; "
            f"convert with {name}.astype(numpy.{np.dtype(dtype).name})"
        )
    if a.ndim != ndim:
        raise InputError(f"{name}: got shape {_shape(a)} (rank {a.ndim}), expected rank {ndim}: {expect}")
    if a.size and not np.isfinite(a).all():
        bad = np.argwhere(~np.isfinite(a))[0]
        raise InputError(f"{name}: contains NaN or inf (first at index {tuple(int(i) for i in bad)}); "
                         "expected finite values: clean or mask the data first")
    return a.astype(dtype, copy=False)


def codes(name: str, a, *, n_classes: int, expect: str) -> np.ndarray:
    """Integer class inputs (``bptt.codes``): an integer array of any rank, every entry in [0, n_classes)."""
    if a.dtype.kind not in "iu":
        raise InputError(f"{name}: got dtype {a.dtype}, expected integer class codes {expect}")
    if a.size and (a.min() < 0 or a.max() >= n_classes):
        bad = int(a.min()) if a.min() < 0 else int(a.max())
        raise InputError(f"{name}: class code {bad} out of range; expected 0 <= code < n_in = {n_classes} "
                         f"(integer inputs stand for one-hot vectors of length n_in)")
    return a.astype(np.intp, copy=False)


def sizes(name: str, a: np.ndarray, expected: dict[int, tuple[int, str]]) -> None:
    """Check axis sizes: expected maps axis -> (size, what it is)."""
    for ax, (n, what) in expected.items():
        if a.shape[ax] != n:
            raise InputError(f"{name}: got shape {_shape(a)}, axis {ax} must be {what} = {n}")


def classes(name: str, D, T: int, B: int, n_out: int) -> np.ndarray:
    if not isinstance(D, np.ndarray):
        D = np.asarray(D)
    if D.dtype.kind not in "iu":
        raise InputError(
            f"{name}: got dtype {D.dtype}, expected integer class indices of shape ({T}, {B}) for "
            f"loss='cross_entropy'; convert with {name}.astype(numpy.int64) if they are whole numbers"
        )
    if D.shape != (T, B):
        raise InputError(f"{name}: got shape {_shape(D)}, expected ({T}, {B}) = (T, B) class indices")
    if D.size and (D.min() < 0 or D.max() >= n_out):
        bad = int(D.min()) if D.min() < 0 else int(D.max())
        raise InputError(f"{name}: class index {bad} out of range; expected 0 <= index < n_out = {n_out}")
    return D.astype(np.int64, copy=False)


def integer(name: str, v, *, low: int | None = None, allow_none=False):
    if v is None and allow_none:
        return None
    if isinstance(v, bool) or not isinstance(v, numbers.Integral):
        raise InputError(f"{name}: got {v!r} ({type(v).__name__}), expected an integer"
                         + (f" >= {low}" if low is not None else ""))
    if low is not None and v < low:
        raise InputError(f"{name}: got {v}, expected an integer >= {low}")
    return int(v)


def lengths(v, T: int, B: int) -> np.ndarray | None:
    if v is None:
        return None
    a = np.asarray(v)
    if a.dtype.kind not in "iu" or a.shape != (B,):
        raise InputError(f"lengths: got {a.dtype} array of shape {_shape(a)}, expected ({B},) integers")
    if a.size and (a.min() < 1 or a.max() > T):
        raise InputError(f"lengths: got values in [{a.min()}, {a.max()}], expected 1 <= length <= T = {T}")
    return a.astype(np.int64)


def resets(v, T: int, B: int) -> np.ndarray | None:
    if v is None:
        return None
    a = np.asarray(v)
    if a.dtype != bool or a.shape != (T, B):
        raise InputError(f"resets: got {a.dtype} array of shape {_shape(a)}, expected ({T}, {B}) booleans "
                         "(True where a stream's state is reset to zeros before that step)")
    return a


def loss_mask(at, T: int, B: int, lens: np.ndarray | None, dtype) -> np.ndarray:
    """(T, B) 0/1 weights from ``at``: None (every step), an int (negative counts from the end of each
    sequence) or a list of distinct ints. Steps past a sequence's length never carry a loss."""
    if at is None and lens is None:
        return np.ones((T, B), dtype)
    L = np.full(B, T) if lens is None else lens
    steps = np.arange(T)[:, None]
    if at is None:
        return (steps < L[None, :]).astype(dtype)
    if isinstance(at, (bool, np.bool_)) or not isinstance(at, (numbers.Integral, list, tuple, np.ndarray)):
        raise InputError(f"at: got {at!r}, expected None (every step), an int or a list of ints")
    single = isinstance(at, numbers.Integral)
    items = [at] if single else list(np.asarray(at).ravel()) if isinstance(at, np.ndarray) else list(at)
    if not items:
        raise InputError("at: got an empty list, expected at least one step (or None for every step)")
    mask = np.zeros((T, B), dtype)
    seen = set()
    for a in items:
        if isinstance(a, (bool, np.bool_)) or not isinstance(a, numbers.Integral):
            raise InputError(f"at: got element {a!r}, expected integer steps")
        a = int(a)
        if not -T <= a < T:
            raise InputError(f"at: step {a} is outside the sequence; expected -{T} <= at < {T} (T = {T})")
        tb = L + a if a < 0 else np.full(B, a)
        if (tb < 0).any() or (tb >= L).any():
            b = int(np.argmax((tb < 0) | (tb >= L)))
            raise InputError(f"at: step {a} is outside sequence {b}, whose length is {int(L[b])}")
        key = tuple(tb)
        if key in seen:
            raise InputError(f"at: step {a} is listed twice; expected distinct steps")
        seen.add(key)
        mask[tb, np.arange(B)] = 1
    return mask
