"""Integer class inputs ("codes"): what a one-hot input costs without the one-hot.

A net whose input at each step is one of ``n_in`` classes (a character of a text, a symbol of the copy
task) can take X as (T, B) integers in [0, n_in) instead of (T, B, n_in) one-hot floats. The results
are those of the one-hot X (tests check 1e-12 in float64), but the two products that touch X change:

- the input projection ``GX = onehot(X) W_in^T + b_in`` is a row lookup: ``GX[t, b] = W_in[:, X[t, b]]
  + b_in``, one gather from the (n_in, G*H) table ``W_in^T + b_in`` (an embedding), instead of a
  (T*B, n_in) x (n_in, G*H) GEMM;
- the weight gradient ``dW_in = dGX^T onehot(X)`` is a scatter-add: column c of dW_in is the sum of the
  rows of dGX whose code is c. The rows are sorted by code once and summed per code in one
  ``np.add.reduceat`` pass (in column blocks), which is faster than ``np.add.at`` (5x) or the GEMM
  against the one-hot (1.6-2x) at text sizes (T*B = 1600, n_in ~ 100, G*H = 128-512).

Only the first layer sees X; the layers above take the hidden states as before.
"""

from __future__ import annotations

import numpy as np


def is_codes(X: np.ndarray) -> bool:
    """True for validated integer inputs (T, B) (float inputs are (T, B, I))."""
    return X.ndim == 2 and X.dtype.kind in "iu"


def project(W_in: np.ndarray, b_in: np.ndarray | None, codes: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """GX (T, B, G*H) = W_in[:, codes] + b_in, as one gather from the table W_in^T + b_in (into ``out``
    when given)."""
    table = W_in.T + b_in if b_in is not None else np.ascontiguousarray(W_in.T)  # (n_in, G*H)
    return np.take(table, codes, axis=0, out=out)


def _grouped(codes: np.ndarray):
    """Sort order of the flattened codes, the start of each run of equal codes, and the run's code."""
    flat = codes.ravel()
    order = np.argsort(flat, kind="stable")
    sorted_codes = flat[order]
    starts = np.flatnonzero(np.concatenate(([True], sorted_codes[1:] != sorted_codes[:-1])))
    return order, starts, sorted_codes[starts]


def weight_grad(dGX: np.ndarray, codes: np.ndarray, n_in: int) -> np.ndarray:
    """dW_in (G*H, n_in) = dGX^T onehot(codes): dGX (T, B, G*H) rows summed per code."""
    G = dGX.shape[-1]
    rows = dGX.reshape(-1, G)
    order, starts, present = _grouped(codes)
    out = np.zeros((n_in, G), dGX.dtype)
    # in blocks of 128 columns: a gathered (T*B, 128) block stays in cache (whole rows of 4H = 512
    # float32 columns, a 2 KiB stride, ran 2.5x slower on the test machine)
    for j in range(0, G, 128):
        out[present, j : j + 128] = np.add.reduceat(rows[order, j : j + 128], starts, axis=0)
    return out.T


def weight_terms(dGX: np.ndarray, codes: np.ndarray, n_in: int) -> np.ndarray:
    """The same per step: (T, G*H, n_in), row t = dGX[t]^T onehot(codes[t])."""
    T, B, G = dGX.shape
    out = np.zeros((T, n_in, G), dGX.dtype)
    np.add.at(out, (np.repeat(np.arange(T), B), codes.ravel()), dGX.reshape(T * B, G))
    return out.transpose(0, 2, 1)


def one_hot(codes: np.ndarray, n_in: int, dtype) -> np.ndarray:
    """(T, B) codes -> (T, B, n_in) one-hot floats (for code that needs float inputs)."""
    out = np.zeros(codes.shape + (n_in,), dtype)
    np.put_along_axis(out, codes[..., None], 1, axis=-1)
    return out


__all__ = ["is_codes", "one_hot", "project", "weight_grad", "weight_terms"]
