"""The Elman recurrence as compiled loops (numba): ``bptt.cells.elman``'s step and step_back, compiled.

Per step, forward: ``z = GX_t + S_{t-1} Ws^T`` (one product (``blas.matmul``) accumulated into GX_t, which holds
``Wx X_t + bs``), then one pass ``S_t = g1(z)`` over (B, H). Backward: one pass ``dz_t = dE/dS_t *
g1'(S_t)`` (g1' from the output, as ``bptt.activations`` does), then ``dE/dS_{t-1} += dz_t Ws`` (one
product, ``blas.matmul``, accumulated into the loss's dE/dS_{t-1}). Nothing is allocated per step, and no Python runs
between steps. g1 in ``G1_CODES`` (tanh, sigmoid, relu, identity); tanh and the sigmoid are
``bptt.fast.mathfn``'s. Every value lives in the net's dtype: with float32 no variable of these loops
is float64 (constants come in ``C``, an array of the dtype; the tests check the compiled types).
``bptt.fast.compiled`` runs them with the rest of the pass.
"""

from __future__ import annotations

import numba
import numpy as np

from . import G1_CODES
from .blas import matmul, matmul_t
from .mathfn import scalars, sigmoid, tanh

_jit = numba.njit(cache=True, nogil=True, error_model="numpy")


@_jit
def _g(z, code, K):
    """g1(z) for a scalar z (codes as in G1_CODES); the formulas of ``bptt.activations``."""
    if code == 0:
        return tanh(z, K)
    if code == 1:
        return sigmoid(z, K)
    if code == 2:
        return z if z > K[0] else K[0]
    return z


@_jit
def _dg(y, code, K):
    """g1'(z) from the output y = g1(z)."""
    if code == 0:
        return K[1] - y * y
    if code == 1:
        return y * (K[1] - y)
    if code == 2:
        return K[1] if y > K[0] else K[0]
    return K[1]


@_jit
def _g_rows(z, out, code, K):
    """out = g1(z) over (B, H) C-contiguous arrays, one loop per g1 so that LLVM vectorises it (a loop
    that chose g1 per element was not: text size, the Elman forward took 2.3x as long)."""
    zf, of = z.reshape(-1), out.reshape(-1)
    n = zf.shape[0]
    if code == 0:
        for j in range(n):
            of[j] = tanh(zf[j], K)
    elif code == 1:
        for j in range(n):
            of[j] = sigmoid(zf[j], K)
    elif code == 2:
        for j in range(n):
            of[j] = _g(zf[j], 2, K)
    else:
        for j in range(n):
            of[j] = zf[j]


@_jit
def _dg_rows(dz, S, code, K):
    """dz *= g1'(z) from the output S = g1(z), over (B, H) C-contiguous arrays, one loop per g1."""
    df, sf = dz.reshape(-1), S.reshape(-1)
    n = df.shape[0]
    if code == 0:
        for j in range(n):
            df[j] = df[j] * _dg(sf[j], 0, K)
    elif code == 1:
        for j in range(n):
            df[j] = df[j] * _dg(sf[j], 1, K)
    elif code == 2:
        for j in range(n):
            df[j] = df[j] * _dg(sf[j], 2, K)


@_jit
def forward_recurrence(GX, Ws, WsTp, s0, g1, C, S):
    """GX (T, B, H) input parts, overwritten; Ws (H, H); WsTp = Ws^T packed (``blas.packed``), or empty where
    ``blas.needs_packed`` says it is not read; s0 (B, H); g1 a code; C = ``mathfn.consts``.
    Fills S (T+1, B, H) (the caller's buffer): S[0] = s0 and S[t+1] = g1(GX[t] + S[t] Ws^T)."""
    T, B, H = GX.shape
    K = scalars(C)
    one = K[1]
    S[0] = s0
    for t in range(T):
        z = GX[t]
        matmul_t(S[t], Ws, WsTp, z, one, one)  # z = GX_t + S_{t-1} Ws^T
        _g_rows(z, S[t + 1], g1, K)
    return S


@_jit
def backward_recurrence(dH, S, Ws, Wsp, g1, C):
    """dH (T, B, H): the loss's dE/dS_t on entry, dE/dz_t (z the pre-activation) on return (in place);
    S (T+1, B, H) from ``forward_recurrence``; Ws (H, H), Wsp = Ws packed (or empty: ``blas.packed``).
    Returns dE/ds0 (B, H)."""
    T, B, H = dH.shape
    K = scalars(C)
    zero, one = K[0], K[1]
    ds0 = np.empty((B, H), dH.dtype)
    for t in range(T - 1, -1, -1):
        dz = dH[t]  # (B, H): dE/dS_t, everything carried back already added
        _dg_rows(dz, S[t + 1], g1, K)
        if t > 0:
            matmul(dz, Ws, Wsp, dH[t - 1], one, one)  # dE/dS_{t-1} += dz_t Ws
    matmul(dH[0], Ws, Wsp, ds0, one, zero)  # after the loop: see numba_lstm.backward
    return ds0
