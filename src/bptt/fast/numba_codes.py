"""The scatter-add of integer class inputs (``bptt.codes``) as a compiled loop.

``dW_in = dGX^T onehot(codes)``: column c of dW_in is the sum of the rows of dGX whose code is c. NumPy
does it by sorting the rows by code and ``np.add.reduceat`` (``codes.weight_grad``); compiled, it is one
pass over the rows in their order, each added (vectorised) to its code's row of a (n_in, G*H) table
that stays in cache. Text size (T*B = 1600 rows of 4H = 512 float32, n_in = 102): 0.97 ms with
reduceat, 0.1-0.2 ms here.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, nogil=True, error_model="numpy")
def scatter_rows(rows, codes, n_in):
    """rows (N, G), codes (N,) integers in [0, n_in) -> out (n_in, G), out[c] = sum of rows[i] with codes[i] == c
    (summed in row order)."""
    N, G = rows.shape
    out = np.zeros((n_in, G), rows.dtype)
    for i in range(N):
        o = out[codes[i]]
        r = rows[i]
        for j in range(G):
            o[j] += r[j]
    return out


def weight_grad(dGX: np.ndarray, codes: np.ndarray, n_in: int) -> np.ndarray:
    """``bptt.codes.weight_grad``, compiled: dW_in (G*H, n_in) = dGX^T onehot(codes), dGX (T, B, G*H)."""
    G = dGX.shape[-1]
    return scatter_rows(np.ascontiguousarray(dGX.reshape(-1, G)), np.ascontiguousarray(codes.reshape(-1)), n_in).T
