"""PyTorch reference for the seed's Elman RNN with UNTIED per-step weight copies.

Step t uses its own leaf copies Wx_t, Ws_t, bs_t, Wy_t, by_t, so torch's gradient of copy t is exactly the
t-th term of the seed's sum, and the sum over copies is the full gradient. Truncated BPTT is computed
independently of our code: for each loss term E_t the state before its window is recomputed and detached.
"""

from __future__ import annotations

import numpy as np
import torch

ACT = {
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "relu": torch.relu,
    "identity": lambda z: z,
    "softmax": lambda z: torch.softmax(z, dim=-1),
}
NAMES = ("Wx", "Ws", "bs", "Wy", "by")


def _term(loss, g2, z, d, w):
    """Loss of one step: z (B,O) pre-activation, d targets, w (B,) weights (mask / B)."""
    if loss == "squared":
        return (w[:, None] * (ACT[g2](z) - d) ** 2).sum()
    return -(w * torch.log_softmax(z, dim=-1).gather(1, d[:, None])[:, 0]).sum()


def reference(params, X, D, mask, *, loss, g1, g2, truncate=None, s0=None):
    """Returns dict: E, grads (summed), terms (T, *shape) per name, dS (T,B,H), s0 grad."""
    T, B, _ = X.shape
    H = params["Ws"].shape[0]
    t64 = lambda a: torch.tensor(np.asarray(a), dtype=torch.float64)
    copies = {n: [t64(params[n]).requires_grad_() for _ in range(T)] for n in NAMES}
    S0 = (t64(s0) if s0 is not None else torch.zeros(B, H, dtype=torch.float64)).requires_grad_()
    Xt = t64(X)
    Dt = torch.tensor(D) if loss == "cross_entropy" else t64(D)
    W = t64(mask) / B

    def run(lo, hi, start):
        """States S_lo..S_hi from state `start` (the state before lo)."""
        S, out = start, []
        for t in range(lo, hi + 1):
            S = ACT[g1](Xt[t] @ copies["Wx"][t].T + S @ copies["Ws"][t].T + copies["bs"][t])
            out.append(S)
        return out

    def E_at(t, S_t):
        z = S_t @ copies["Wy"][t].T + copies["by"][t]
        return _term(loss, g2, z, Dt[t], W[t])

    # the loss value, with the full graph
    states = run(0, T - 1, S0)
    E = sum(E_at(t, states[t]) for t in range(T) if mask[t].any())
    k = T if truncate is None else truncate
    terms = {n: np.zeros((T,) + np.shape(params[n])) for n in NAMES}
    dS = np.zeros((T, B, H))
    ds0 = np.zeros((B, H))
    for t in range(T):
        if not mask[t].any():
            continue
        lo = max(0, t - k + 1)
        start = S0 if lo == 0 else run(0, lo - 1, S0)[-1].detach()
        win = run(lo, t, start)
        Et = E_at(t, win[-1])
        leaves = [copies[n][i] for n in NAMES for i in range(T)]
        gs = torch.autograd.grad(Et, leaves + win + [S0], allow_unused=True)
        j = 0
        for n in NAMES:
            for i in range(T):
                if gs[j] is not None:
                    terms[n][i] += gs[j].numpy()
                j += 1
        for i in range(len(win)):
            if gs[j + i] is not None:
                dS[lo + i] += gs[j + i].numpy()
        if gs[-1] is not None:
            ds0 += gs[-1].numpy()
    grads = {n: terms[n].sum(axis=0) for n in NAMES}
    grads["s0"] = ds0
    return {"E": float(E.detach()), "grads": grads, "terms": terms, "dS": dS}


def rel_err(a, b) -> float:
    """Norm-wise relative error ||a - b|| / max(||b||, ||a||), 0 when both are exactly zero."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    den = max(np.linalg.norm(a), np.linalg.norm(b))
    return 0.0 if den == 0 else float(np.linalg.norm(a - b) / den)
