"""The LSTM recurrence as compiled loops: ``bptt.cells.lstm``'s step and step_back, compiled.

Per step, forward: ``a = GX_t + h_{t-1} W_hh^T`` (one BLAS product accumulated into GX_t, which already
holds ``x_t W_ih^T + b_ih + b_hh``), then one pass over (B, H) computing the four gates, c_t, tanh(c_t)
and h_t with the cell's formulas (``LSTMCell.step``). Backward: one pass computing dE/da_t with the
cell's formulas (``LSTMCell.step_back``), written over the gates of GX_t, then ``dh_{t-1} += da_t W_hh``
(one BLAS product accumulated into the loss's dE/dh_{t-1}). Nothing is allocated per step.
"""

from __future__ import annotations

import numba
import numpy as np

from .blas import matmul
from .mathfn import scalars, sigmoid, tanh

_jit = numba.njit(cache=True, nogil=True, error_model="numpy")


@_jit
def forward(GX, WT, h0, c0, C):
    """GX (T, B, 4H) = x_t W_ih^T + b_ih + b_hh, overwritten with the gates (i, f, g, o) of each step;
    WT (H, 4H) = W_hh^T contiguous; h0, c0 (B, H); C = ``mathfn.consts``. Returns hs (T+1, B, H) (hs[0] = h0),
    cs (T+1, B, H) (cs[0] = c0) and tcs (T, B, H) = tanh(c_t)."""
    T, B, G = GX.shape
    H = G // 4
    K = scalars(C)
    one = K[1]
    hs = np.empty((T + 1, B, H), GX.dtype)
    cs = np.empty((T + 1, B, H), GX.dtype)
    tcs = np.empty((T, B, H), GX.dtype)
    hs[0] = h0
    cs[0] = c0
    for t in range(T):
        a = GX[t]
        matmul(hs[t], WT, a, one, one)  # a = GX_t + h_{t-1} W_hh^T
        for b in range(B):
            ab, cp, cn, tc, hn = a[b], cs[t, b], cs[t + 1, b], tcs[t, b], hs[t + 1, b]
            for j in range(H):
                i = sigmoid(ab[j], K)
                f = sigmoid(ab[H + j], K)
                g = tanh(ab[2 * H + j], K)
                o = sigmoid(ab[3 * H + j], K)
                c = f * cp[j] + i * g
                tcj = tanh(c, K)
                ab[j], ab[H + j], ab[2 * H + j], ab[3 * H + j] = i, f, g, o
                cn[j] = c
                tc[j] = tcj
                hn[j] = o * tcj
    return hs, cs, tcs


@_jit
def backward(dH, A, W, cs, tcs, dc, C):
    """dH (T, B, H): the loss's dE/dh_t, overwritten with the total dE/dh_t; A (T, B, 4H): the gates
    from ``forward``, overwritten with dE/da_t; W (4H, H) = W_hh; dc (B, H): dE/dc_T (zeros), overwritten with dE/dc_0.
    Returns dE/dh_0 (B, H)."""
    T, B, G = A.shape
    H = G // 4
    K = scalars(C)
    zero, one = K[0], K[1]
    dh0 = np.empty((B, H), A.dtype)
    for t in range(T - 1, -1, -1):
        a = A[t]
        for b in range(B):
            ab, dh, dcb, cp, tc = a[b], dH[t, b], dc[b], cs[t, b], tcs[t, b]
            for j in range(H):
                i, f, g, o = ab[j], ab[H + j], ab[2 * H + j], ab[3 * H + j]
                tcj = tc[j]
                dct = dcb[j] + dh[j] * o * (one - tcj * tcj)  # total dE/dc_t
                ab[j] = dct * g * i * (one - i)
                ab[H + j] = dct * cp[j] * f * (one - f)
                ab[2 * H + j] = dct * i * (one - g * g)
                ab[3 * H + j] = dh[j] * tcj * o * (one - o)
                dcb[j] = dct * f
        if t > 0:
            matmul(a, W, dH[t - 1], one, one)  # dE/dh_{t-1} += da_t W_hh
        else:
            matmul(a, W, dh0, one, zero)
    return dh0
