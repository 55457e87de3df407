"""The seed tutorial's system, checked by hand: forward, E_3, and the three terms of dE_3/dWs.

Run: python examples/01_seed_by_hand.py
"""

import numpy as np

import bptt

rng = np.random.default_rng(0)
net = bptt.Elman(n_in=1, n_hidden=3, n_out=1, g1="tanh", g2="identity", seed=0)
X = rng.uniform(-1, 1, (3, 1, 1))  # X_1, X_2, X_3: (T, B, I) = (3, 1, 1)
D = rng.uniform(-1, 1, (3, 1, 1))  # d_t; only d_3 is used below

# the seed's E_3 is the loss at the last step: at=2 (0-based) or at=-1
E, g = net.gradients(X, D, at=-1)
terms = net.gradient_terms(X, D, at=-1)

# the same three terms written out with the seed's chain rule
p = net.params
S = net.forward(X).S[:, 0]  # (3, H): S_1, S_2, S_3
Sprev = np.vstack([np.zeros(3), S[:-1]])  # S_0 = 0 (so the i=1 term of Ws is zero), S_1, S_2
dE_dY3 = 2 * (S[2] @ p["Wy"].T + p["by"] - D[2, 0])  # dE_3/dY_3 (identity g2)
dE_dS = dE_dY3 @ p["Wy"]  # dE_3/dS_3 = dE_3/dY_3 . dY_3/dS_3
for i in (2, 1, 0):
    term = np.outer(dE_dS * (1 - S[i] ** 2), Sprev[i])  # ... . dS_i/dWs (immediate derivative)
    print(f"term i={i + 1}: |by hand - library| = {np.abs(term - terms['Ws'][i]).max():.1e}, |term| = {np.linalg.norm(term):.4f}")
    dE_dS = (dE_dS * (1 - S[i] ** 2)) @ p["Ws"]  # one step back: . dS_i/dS_(i-1) = diag(g1') Ws
print(f"sum of the terms - dE_3/dWs: {np.abs(terms['Ws'].sum(axis=0) - g.Ws).max():.1e}")

# truncated BPTT keeps only the newest terms: truncate=1 is the first term alone
_, g1 = net.gradients(X, D, at=-1, truncate=1)
print(f"truncate=1 equals term i=3: {np.allclose(g1.Ws, terms['Ws'][2])}")
