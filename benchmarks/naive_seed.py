"""The seed's Elman RNN transcribed naively into NumPy: the baseline ``bptt bench`` calls "naive".

The tutorial's formulas, written the way one first writes them, one step at a time:

    forward    S_t = g1(Wx X_t + Ws S_{t-1} + bs),  Y_t = Wy S_t + by        (g2 = identity)
    loss       E = (1/B) sum_t sum_b |d_t - Y_t|^2                         (the seed's E_t = (d_t - Y_t)^2)
    backward   dE/dS_t = dE_t/dY_t . dY_t/dS_t + dE/dS_{t+1} . dS_{t+1}/dS_t
               (the seed's sum over i of dE_N/dY_N . dY_N/dS_N . dS_N/dS_{N-1} ... dS_{i+1}/dS_i,
               for every loss term E_N, gathered step by step from the end: Horner's rule)
               dE/dW += dE/dS_t . dS_t/dW  for W in Wx, Ws, bs, and dE/dWy += dE_t/dY_t . dY_t/dWy,
               one term per step, as the seed's sums are written.

No hoisting of the input projection, no preallocation, weight gradients as one small product per
step: a fair picture of a first NumPy implementation, and a check that bptt's loop is worth having.
(Multiplying the Jacobians dS_k/dS_{k-1} out literally for every E_N would be O(T^2 H^3): not a
baseline anyone would use; ``bptt explain`` shows those terms.)
"""

from __future__ import annotations

import numpy as np

G1 = {  # activation and its derivative from the output
    "tanh": (np.tanh, lambda s: 1.0 - s * s),
    "sigmoid": (lambda z: 1.0 / (1.0 + np.exp(-z)), lambda s: s * (1.0 - s)),
    "relu": (lambda z: np.maximum(z, 0.0), lambda s: (s > 0).astype(s.dtype)),
    "identity": (lambda z: z, lambda s: np.ones_like(s)),
}


def forward_backward(params, X, D, g1="tanh"):
    """E and gradients of the squared loss at every step, averaged over the batch.

    params: Wx (H, I), Ws (H, H), bs (H,), Wy (O, H), by (O,); X (T, B, I), D (T, B, O).
    Returns (E, {Wx, Ws, bs, Wy, by}); s0 is zero.
    """
    f, df = G1[g1]
    Wx, Ws, bs, Wy, by = (params[k] for k in ("Wx", "Ws", "bs", "Wy", "by"))
    T, B, _ = X.shape
    S = [np.zeros((B, Ws.shape[0]), X.dtype)]  # S[t + 1] = S_t
    Y = []
    for t in range(T):
        S.append(f(X[t] @ Wx.T + S[t] @ Ws.T + bs))
        Y.append(S[t + 1] @ Wy.T + by)
    E = sum(float(((D[t] - Y[t]) ** 2).sum()) for t in range(T)) / B
    g = {k: np.zeros_like(v) for k, v in params.items() if k in ("Wx", "Ws", "bs", "Wy", "by")}
    dS_next = np.zeros_like(S[0])  # dE/dS_{t+1} . dS_{t+1}/dS_t
    for t in range(T - 1, -1, -1):
        dY = 2.0 * (Y[t] - D[t]) / B  # dE_t/dY_t, (B, O)
        g["Wy"] += dY.T @ S[t + 1]
        g["by"] += dY.sum(axis=0)
        dS = dY @ Wy + dS_next  # dE/dS_t
        dz = dS * df(S[t + 1])  # through g1
        g["Ws"] += dz.T @ S[t]
        g["Wx"] += dz.T @ X[t]
        g["bs"] += dz.sum(axis=0)
        dS_next = dz @ Ws
    return E, g
