"""Kronecker-factored RTRL (Mujika, Meier & Steger 2018): an unbiased RTRL whose influence matrix is one
Kronecker product per stream, M_t ~ u_t (x) A_t.

For the Elman cell the immediate Jacobian is itself one Kronecker product, I_t = a_t (x) D_t, with
a_t = [x_t, S_{t-1}, 1] (the features of every parameter row) and D_t = dS_t/dz_t, here read from the
cell's ``step_back`` on the unit vectors. The update J_t M_{t-1} + I_t = u (x) (J_t A) + a_t (x) D_t, a sum of
two products, is replaced by one, unbiased thanks to independent random signs s1, s2:

    u_t = s1 p1 u_{t-1} + s2 p2 a_t        A_t = s1 (J_t A_{t-1}) / p1 + s2 D_t / p2

with p1 = sqrt(|J A| / |u|), p2 = sqrt(|D| / |a|) (the paper's variance-minimising choice). The gradient
estimate at step t is (dE_t/dS_t A_t) (x) u_t. O(H^3) a step (J_t A), O(H^2) memory per stream.

The paper defines it for nets whose immediate Jacobian is a Kronecker product (tanh RNNs, recurrent highway
nets); here: the Elman cell. The GRU's reset gate scales only the recurrent part of its candidate, so its
immediate Jacobian is a sum of two Kronecker products.
"""

from __future__ import annotations

import numpy as np

from .base import Algorithm, unit_directions

EPS = 1e-7


class KFRTRL(Algorithm):
    name = "kf-rtrl"
    cells = ("elman",)
    stochastic = True

    def _init(self, net, B, rows):
        n = net.cell.n_carry * net.n_hidden
        return {"u": np.zeros((B, rows.F), net.dtype), "A": np.zeros((B, n, rows.GH), net.dtype)}

    def _reset(self, state, keep):
        state["u"] = state["u"] * keep
        state["A"] = state["A"] * keep[:, :, None]

    def _update(self, net, rows, state, s, rng):
        J = net.cell.jacobian(s.p, s.cache, s.carry)  # (B, n, n)
        D, _ = unit_directions(net.cell, s.p, s.cache, s.carry)  # (B, n, G*H), dgx == dgh for Elman
        a = rows.features(s.x, s.carry[0])  # (B, F)
        JA = np.matmul(J, state["A"])
        u = state["u"]
        B = u.shape[0]
        norm = lambda v: np.sqrt((v.reshape(B, -1) ** 2).sum(axis=1))  # noqa: E731
        p1 = np.sqrt((norm(JA) + EPS) / (norm(u) + EPS))
        p2 = np.sqrt((norm(D) + EPS) / (norm(a) + EPS))
        s1, s2 = rng.choice(np.array([-1.0, 1.0], dtype=u.dtype), size=(2, B))
        state["u"] = (s1 * p1)[:, None] * u + (s2 * p2)[:, None] * a
        state["A"] = (s1 / p1)[:, None, None] * JA + (s2 / p2)[:, None, None] * D

    def _cell_rows(self, state, dc, rows):
        dA = np.einsum("bk,bkr->br", dc, state["A"])  # (B, G*H)
        return dA[:, :, None] * state["u"][:, None, :]
