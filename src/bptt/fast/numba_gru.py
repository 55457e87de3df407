"""The GRU recurrence as compiled loops: ``bptt.cells.gru``'s step and step_back, compiled.

Per step, forward: ``gh = h_{t-1} W_hh^T`` (one product (``blas.matmul``) into a (B, 3H) buffer), then one pass over
(B, H) computing r, z, n and h_t with the cell's formulas (``GRUCell.step``). Backward: one pass
computing dE/dgx_t and dE/dgh_t with the cell's formulas (``GRUCell.step_back``), then
``dh_{t-1} += dgh_t W_hh`` (one product (``blas.matmul``) accumulated into the loss's dE/dh_{t-1}); the direct path
``dh_t * z`` is carried to the next pass. Nothing is allocated per step.
"""

from __future__ import annotations

import numba
import numpy as np

from .blas import matmul, matmul_t
from .mathfn import scalars, sigmoid, tanh

_jit = numba.njit(cache=True, nogil=True, error_model="numpy")


@_jit
def forward(GX, W, WTp, bh, h0, C, hs, ghn):
    """GX (T, B, 3H) = x_t W_ih^T + b_ih, overwritten with (r, z, n) of each step; W (3H, H) = W_hh,
    WTp = W_hh^T packed (or empty: ``blas.packed``), bh (3H,) = b_hh; h0 (B, H). Fills hs (T+1, B, H)
    (hs[0] = h0) and ghn (T, B, H) = W_hn h_{t-1} + b_hn (the caller's buffers)."""
    T, B, G = GX.shape
    H = G // 3
    K = scalars(C)
    zero, one = K[0], K[1]
    gh = np.empty((B, G), GX.dtype)
    hs[0] = h0
    for t in range(T):
        matmul_t(hs[t], W, WTp, gh, one, zero)  # gh = h_{t-1} W_hh^T
        a = GX[t]
        for b in range(B):
            ab, ghb, hp, hn, gn = a[b], gh[b], hs[t, b], hs[t + 1, b], ghn[t, b]
            rg, zg, ng = ab[:H], ab[H : 2 * H], ab[2 * H :]
            # one loop per formula over (H,) views, so that LLVM vectorises each (see numba_lstm)
            for j in range(H):
                rg[j] = sigmoid(rg[j] + (ghb[j] + bh[j]), K)  # r
            for j in range(H):
                zg[j] = sigmoid(zg[j] + (ghb[H + j] + bh[H + j]), K)  # z
            for j in range(H):
                gn[j] = ghb[2 * H + j] + bh[2 * H + j]  # W_hn h_{t-1} + b_hn
            for j in range(H):
                ng[j] = tanh(ng[j] + rg[j] * gn[j], K)  # n
            for j in range(H):
                hn[j] = ng[j] + zg[j] * (hp[j] - ng[j])  # h_t = (1 - z) n + z h_{t-1}
    return 0


@_jit
def backward(dH, A, W, Wp, hs, ghn, C, dGH):
    """dH (T, B, H): the loss's dE/dh_t, overwritten with the total dE/dh_t; A (T, B, 3H): (r, z, n)
    from ``forward``, overwritten with dE/dgx_t; W (3H, H) = W_hh, Wp = W_hh packed (or empty:
    ``blas.packed``). Fills dGH (T, B, 3H) = dE/dgh_t (the caller's
    buffer); returns dE/dh_0 (B, H)."""
    T, B, G = A.shape
    H = G // 3
    K = scalars(C)
    zero, one = K[0], K[1]
    carry = np.zeros((B, H), A.dtype)  # dh_{t+1} * z_{t+1}: the direct path into dE/dh_t
    dh0 = np.empty((B, H), A.dtype)
    for t in range(T - 1, -1, -1):
        a, d = A[t], dGH[t]
        for b in range(B):
            ab, db, dh, hp, gn, cb = a[b], d[b], dH[t, b], hs[t, b], ghn[t, b], carry[b]
            rg, zg, ng = ab[:H], ab[H : 2 * H], ab[2 * H :]
            dr, dz, dn = db[:H], db[H : 2 * H], db[2 * H :]
            # one loop per formula over (H,) views (vectorised); each gate's value is read before the
            # loop that overwrites it with its gradient
            for j in range(H):
                dh[j] += cb[j]  # total dE/dh_t: the loss's, through W_hh (last pass) and through z
            for j in range(H):
                cb[j] = dh[j] * zg[j]  # the direct path into dE/dh_{t-1}
            for j in range(H):
                n = ng[j]
                dn[j] = dh[j] * (one - zg[j]) * (one - n * n)  # dE/d(gx_n + r gh_n)
            for j in range(H):
                z = zg[j]
                dz[j] = dh[j] * (hp[j] - ng[j]) * z * (one - z)  # dE/d(gx_z + gh_z)
            for j in range(H):
                zg[j] = dz[j]
            for j in range(H):
                ng[j] = dn[j]  # dE/dgx_n
            for j in range(H):
                dn[j] = dn[j] * rg[j]  # dE/dgh_n = r dE/d(pre-tanh)
            for j in range(H):
                r = rg[j]
                dr[j] = ng[j] * gn[j] * r * (one - r)  # dE/d(gx_r + gh_r)
            for j in range(H):
                rg[j] = dr[j]
        if t > 0:
            matmul(d, W, Wp, dH[t - 1], one, one)  # dE/dh_{t-1} += dgh_t W_hh (+ carry, next pass)
    matmul(dGH[0], W, Wp, dh0, one, zero)  # after the loop: see numba_lstm.backward
    dh0 += carry
    return dh0
