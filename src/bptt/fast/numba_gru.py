"""The GRU recurrence as compiled loops: ``bptt.cells.gru``'s step and step_back, compiled.

Per step, forward: ``gh = h_{t-1} W_hh^T`` (one BLAS product into a (B, 3H) buffer), then one pass over
(B, H) computing r, z, n and h_t with the cell's formulas (``GRUCell.step``). Backward: one pass
computing dE/dgx_t and dE/dgh_t with the cell's formulas (``GRUCell.step_back``), then
``dh_{t-1} += dgh_t W_hh`` (one BLAS product accumulated into the loss's dE/dh_{t-1}); the direct path
``dh_t * z`` is carried to the next pass. Nothing is allocated per step.
"""

from __future__ import annotations

import numba
import numpy as np

from .blas import matmul
from .mathfn import scalars, sigmoid, tanh

_jit = numba.njit(cache=True, nogil=True, error_model="numpy")


@_jit
def forward(GX, WT, bh, h0, C):
    """GX (T, B, 3H) = x_t W_ih^T + b_ih, overwritten with (r, z, n) of each step; WT (H, 3H) = W_hh^T,
    bh (3H,) = b_hh; h0 (B, H). Returns hs (T+1, B, H) (hs[0] = h0) and ghn (T, B, H) = W_hn h_{t-1} + b_hn."""
    T, B, G = GX.shape
    H = G // 3
    K = scalars(C)
    zero, one = K[0], K[1]
    hs = np.empty((T + 1, B, H), GX.dtype)
    ghn = np.empty((T, B, H), GX.dtype)
    gh = np.empty((B, G), GX.dtype)
    hs[0] = h0
    for t in range(T):
        matmul(hs[t], WT, gh, one, zero)  # gh = h_{t-1} W_hh^T
        a = GX[t]
        for b in range(B):
            ab, ghb, hp, hn, gn = a[b], gh[b], hs[t, b], hs[t + 1, b], ghn[t, b]
            for j in range(H):
                r = sigmoid(ab[j] + (ghb[j] + bh[j]), K)
                z = sigmoid(ab[H + j] + (ghb[H + j] + bh[H + j]), K)
                g = ghb[2 * H + j] + bh[2 * H + j]
                n = tanh(ab[2 * H + j] + r * g, K)
                ab[j], ab[H + j], ab[2 * H + j] = r, z, n
                gn[j] = g
                hn[j] = n + z * (hp[j] - n)
    return hs, ghn


@_jit
def backward(dH, A, W, hs, ghn, C):
    """dH (T, B, H): the loss's dE/dh_t, overwritten with the total dE/dh_t; A (T, B, 3H): (r, z, n)
    from ``forward``, overwritten with dE/dgx_t; W (3H, H) = W_hh. Returns dGH (T, B, 3H) = dE/dgh_t and dE/dh_0 (B, H)."""
    T, B, G = A.shape
    H = G // 3
    K = scalars(C)
    zero, one = K[0], K[1]
    dGH = np.empty((T, B, G), A.dtype)
    carry = np.zeros((B, H), A.dtype)  # dh_{t+1} * z_{t+1}: the direct path into dE/dh_t
    dh0 = np.empty((B, H), A.dtype)
    for t in range(T - 1, -1, -1):
        a, d = A[t], dGH[t]
        for b in range(B):
            ab, db, dh, hp, gn, cb = a[b], d[b], dH[t, b], hs[t, b], ghn[t, b], carry[b]
            for j in range(H):
                r, z, n = ab[j], ab[H + j], ab[2 * H + j]
                dhj = dh[j] + cb[j]
                dh[j] = dhj
                dan = dhj * (one - z) * (one - n * n)
                dar = dan * gn[j] * r * (one - r)
                daz = dhj * (hp[j] - n) * z * (one - z)
                ab[j], ab[H + j], ab[2 * H + j] = dar, daz, dan
                db[j], db[H + j], db[2 * H + j] = dar, daz, dan * r
                cb[j] = dhj * z
        if t > 0:
            matmul(d, W, dH[t - 1], one, one)  # dE/dh_{t-1} += dgh_t W_hh (+ carry, next pass)
        else:
            matmul(d, W, dh0, one, zero)
    dh0 += carry
    return dGH, dh0
