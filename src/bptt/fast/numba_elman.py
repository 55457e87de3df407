"""Compiled time loops for the single-layer unidirectional Elman net (numba).

At small sizes the NumPy loop's time goes to Python and to the fixed cost of each NumPy/BLAS call, a
dozen per step; the arithmetic is tiny. Here the two recurrences, the only parts that must walk time
step by step, are compiled loops, and everything that is not recurrent is done once for all steps,
as in ``bptt.loop``, with NumPy (one GEMM each):

    NumPy   GX = X Wx^T + bs                                   (T, B, H) the hoisted input projection
    numba   S_t = g1(GX_t + Ws S_{t-1}),  t = 0 .. T-1         ``forward_recurrence``
    NumPy   Z = S Wy^T + by; E, dZ = the library's own loss (``bptt.losses.output_loss``)
    NumPy   dH = dZ Wy                                         (T, B, H) the loss's dE/dS_t
    numba   dz_t = (dH_t + dz_{t+1} Ws) * g1'(S_t),  t = T-1 .. 0   ``backward_recurrence``
    NumPy   dWs = dz^T S_{t-1},  dWx = dz^T X,  dbs = sum dz,  dWy = dZ^T S,  dby = sum dZ

So the number of Python-level calls is fixed (about fifteen), not proportional to T. Inner loops run
over contiguous rows (axpy form, with Ws^T for the forward product), so they vectorise without
reassociating sums. Summation order differs from BLAS's, so results equal ``Network.gradients`` to
rounding (float64: relative error ~1e-15), not bitwise. Every value lives in the net's dtype: with
float32 no variable of the compiled loops is float64 (constants come in ``C``, an array of that
dtype; the tests check the compiled types).

Covered: g1 in ``G1_CODES`` (tanh, sigmoid, relu, identity), every g2 and loss, any ``at`` and ``s0``.
The caller (``bptt.fast``) checks the rest: no lengths, resets or truncation, one layer, one direction.
Importing this module imports numba; ``bptt.fast`` imports it only when the numba backend is asked for.
"""

from __future__ import annotations

import numba
import numpy as np

from .. import losses
from . import G1_CODES

_jit = numba.njit(cache=True, nogil=True)


@_jit
def _g(z, code, zero, one):
    """g1(z) for a scalar z (codes as in G1_CODES); the same formulas as ``bptt.activations``."""
    if code == 0:
        return np.tanh(z)
    if code == 1:  # the safe logistic: exp of a non-positive number only
        if z >= zero:
            return one / (one + np.exp(-z))
        e = np.exp(z)
        return e / (one + e)
    if code == 2:
        return z if z > zero else zero
    return z


@_jit
def _dg(y, code, zero, one):
    """g1'(z) from the output y = g1(z)."""
    if code == 0:
        return one - y * y
    if code == 1:
        return y * (one - y)
    if code == 2:
        return one if y > zero else zero
    return one


@_jit
def forward_recurrence(GX, WsT, s0, g1, C):
    """GX (T, B, H) input parts, WsT (H, H) = Ws^T contiguous, s0 (B, H), g1 a code, C = [0, 1] in the
    dtype. Returns S (T+1, B, H) with S[0] = s0 and S[t+1] = g1(GX[t] + S[t] Ws^T)."""
    T, B, H = GX.shape
    zero, one = C[0], C[1]
    S = np.empty((T + 1, B, H), GX.dtype)
    S[0] = s0
    for t in range(T):
        z = S[t + 1]  # (B, H)
        sp = S[t]
        for b in range(B):
            for j in range(H):
                z[b, j] = GX[t, b, j]
        for k in range(H):  # z += s_{t-1} Ws^T as axpys over rows of Ws^T, each row reused by every stream
            w = WsT[k]
            for b in range(B):
                s = sp[b, k]
                zb = z[b]
                for j in range(H):
                    zb[j] += w[j] * s
        for b in range(B):
            for j in range(H):
                z[b, j] = _g(z[b, j], g1, zero, one)
    return S


@_jit
def backward_recurrence(dH, S, Ws, g1, C):
    """dH (T, B, H): the loss's dE/dS_t on entry, dE/dz_t (z the pre-activation) on return (in place);
    S (T+1, B, H) from ``forward_recurrence``; Ws (H, H). Returns dE/ds0 (B, H)."""
    T, B, H = dH.shape
    zero, one = C[0], C[1]
    dh = np.zeros((B, H), dH.dtype)  # dE/dS_t carried back from step t+1: dz_{t+1} Ws
    for t in range(T - 1, -1, -1):
        st = S[t + 1]
        dz = dH[t]  # (B, H)
        for b in range(B):
            for j in range(H):
                dz[b, j] = (dz[b, j] + dh[b, j]) * _dg(st[b, j], g1, zero, one)
                dh[b, j] = zero
        for j in range(H):  # carried back: dz Ws, as axpys over rows of Ws, each row reused by every stream
            w = Ws[j]
            for b in range(B):
                d = dz[b, j]
                hb = dh[b]
                for k in range(H):
                    hb[k] += d * w[k]
    return dh


def gradients(X, D, loss, lmask, params, g1, g2, s0):
    """E and the gradients. X (T, B, I), D targets, lmask (T, B) the loss mask, params the net's dict
    (Wx, Ws, bs, Wy, by), g1 a name in G1_CODES, g2 the output Activation, s0 (B, H); all validated
    and in one dtype. Returns (E float, dict of gradients with ``s0``)."""
    T, B, I = X.shape
    Wx, Ws, bs, Wy, by = (params[k] for k in ("Wx", "Ws", "bs", "Wy", "by"))
    C = np.array([0, 1], X.dtype)
    Xf = X.reshape(T * B, I)
    GX = (Xf @ Wx.T).reshape(T, B, -1)
    GX += bs
    S = forward_recurrence(GX, np.ascontiguousarray(Ws.T), np.ascontiguousarray(s0), G1_CODES[g1], C)
    Sf = S[1:].reshape(T * B, -1)  # S_0 .. S_{T-1}
    Z = (Sf @ Wy.T).reshape(T, B, -1)
    Z += by
    E, _, dZ = losses.output_loss(loss, g2, Z, D, lmask)
    dZf = dZ.reshape(T * B, -1)
    dH = (dZf @ Wy).reshape(T, B, -1)
    ds0 = backward_recurrence(dH, S, np.ascontiguousarray(Ws), G1_CODES[g1], C)
    dz = dH.reshape(T * B, -1)
    grads = {"Wx": dz.T @ Xf, "Ws": dz.T @ S[:-1].reshape(T * B, -1), "bs": dz.sum(axis=0),
             "Wy": dZf.T @ Sf, "by": dZf.sum(axis=0), "s0": ds0}
    return E, grads
