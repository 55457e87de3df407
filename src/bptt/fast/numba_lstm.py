"""The LSTM recurrence as compiled loops: ``bptt.cells.lstm``'s step and step_back, compiled.

Per step, forward: ``a = GX_t + h_{t-1} W_hh^T`` (one product (``blas.matmul``) accumulated into GX_t, which already
holds ``x_t W_ih^T + b_ih + b_hh``), then one pass over (B, H) computing the four gates, c_t, tanh(c_t)
and h_t with the cell's formulas (``LSTMCell.step``). Backward: one pass computing dE/da_t with the
cell's formulas (``LSTMCell.step_back``), written over the gates of GX_t, then ``dh_{t-1} += da_t W_hh``
(one product (``blas.matmul``) accumulated into the loss's dE/dh_{t-1}). Nothing is allocated per step.
"""

from __future__ import annotations

import numba
import numpy as np

from .blas import matmul, matmul_t
from .mathfn import scalars, sigmoid, tanh

_jit = numba.njit(cache=True, nogil=True, error_model="numpy")


@_jit
def forward(GX, W, WTp, h0, c0, C, hs, cs, tcs):
    """GX (T, B, 4H) = x_t W_ih^T + b_ih + b_hh, overwritten with the gates (i, f, g, o) of each step;
    W (4H, H) = W_hh; WTp = W_hh^T packed (``blas.packed``), or empty where ``blas.needs_packed`` says it
    is not read; h0, c0 (B, H); C = ``mathfn.consts``. Fills hs (T+1, B, H) (hs[0] = h0), cs (T+1, B, H)
    (cs[0] = c0) and tcs (T, B, H) = tanh(c_t) (the caller's buffers: see ``compiled``)."""
    T, B, G = GX.shape
    H = G // 4
    K = scalars(C)
    one = K[1]
    hs[0] = h0
    cs[0] = c0
    for t in range(T):
        a = GX[t]
        matmul_t(hs[t], W, WTp, a, one, one)  # a = GX_t + h_{t-1} W_hh^T
        for b in range(B):
            ab, cp, cn, tc, hn = a[b], cs[t, b], cs[t + 1, b], tcs[t, b], hs[t + 1, b]
            ig, fg, gg, og = ab[:H], ab[H : 2 * H], ab[2 * H : 3 * H], ab[3 * H :]
            # One short loop per formula, each over (H,) views with at most four arrays: LLVM vectorises
            # these (tanh/sigmoid inlined), not one loop writing five arrays at offsets j, H + j, ...
            # (text size, H=128, B=32, T=50, float32: the forward took 9.9 ms as one loop, 2.5 ms as these).
            for j in range(H):
                ig[j] = sigmoid(ig[j], K)
            for j in range(H):
                fg[j] = sigmoid(fg[j], K)
            for j in range(H):
                gg[j] = tanh(gg[j], K)
            for j in range(H):
                og[j] = sigmoid(og[j], K)
            for j in range(H):
                cn[j] = fg[j] * cp[j] + ig[j] * gg[j]  # c_t = f c_{t-1} + i g
            for j in range(H):
                tc[j] = tanh(cn[j], K)
            for j in range(H):
                hn[j] = og[j] * tc[j]  # h_t = o tanh(c_t)
    return 0


@_jit
def backward(dH, A, W, Wp, cs, tcs, dc, C):
    """dH (T, B, H): the loss's dE/dh_t, overwritten with the total dE/dh_t; A (T, B, 4H): the gates
    from ``forward``, overwritten with dE/da_t; W (4H, H) = W_hh, Wp = W_hh packed (or empty:
    ``blas.packed``); dc (B, H): dE/dc_T (zeros), overwritten with dE/dc_0. Returns dE/dh_0 (B, H)."""
    T, B, G = A.shape
    H = G // 4
    K = scalars(C)
    zero, one = K[0], K[1]
    dh0 = np.empty((B, H), A.dtype)
    for t in range(T - 1, -1, -1):
        a = A[t]
        for b in range(B):
            ab, dh, dcb, cp, tc = a[b], dH[t, b], dc[b], cs[t, b], tcs[t, b]
            ig, fg, gg, og = ab[:H], ab[H : 2 * H], ab[2 * H : 3 * H], ab[3 * H :]
            # per formula a loop over (H,) views (vectorised, as in forward); dcb: dE/dc_t in, then the
            # total dE/dc_t, then dE/dc_{t-1} out; the gate block is overwritten with dE/da in the
            # order that keeps each gate's value until its last use (g before i, f after both)
            for j in range(H):
                tcj = tc[j]
                dcb[j] += dh[j] * og[j] * (one - tcj * tcj)  # total dE/dc_t, through h_t = o tanh(c_t)
            for j in range(H):
                o = og[j]
                og[j] = dh[j] * tc[j] * o * (one - o)  # a_o
            for j in range(H):
                g = gg[j]
                gg[j] = dcb[j] * ig[j] * (one - g * g)  # a_g
                i = ig[j]
                ig[j] = dcb[j] * g * i * (one - i)  # a_i
            for j in range(H):
                f = fg[j]
                fg[j] = dcb[j] * cp[j] * f * (one - f)  # a_f
                dcb[j] = dcb[j] * f  # dE/dc_{t-1}
        if t > 0:
            matmul(a, W, Wp, dH[t - 1], one, one)  # dE/dh_{t-1} += da_t W_hh
    # dE/dh_0 = da_0 W_hh, after the loop: with this product in an else branch of the one above, LLVM
    # merged the two inlined copies (they differ in beta) into a slower one (one stream, H=100: 25
    # products 39 -> 31 us)
    matmul(A[0], W, Wp, dh0, one, zero)
    return dh0
