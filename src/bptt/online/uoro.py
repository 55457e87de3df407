"""Unbiased online recurrent optimisation (Tallec & Ollivier 2018): a rank-one, unbiased RTRL.

Per stream it carries s~ (n,) and theta~ (G*H, F) with E[s~ theta~^T] = M_t, RTRL's influence matrix:

    s~_t     = rho0 J_t s~_{t-1} + rho1 nu              nu: independent random signs (n,)
    theta~_t = theta~_{t-1} / rho0 + (nu^T I_t) / rho1

J_t s~ from the cell's ``jacobian``; nu^T I_t (a vector-Jacobian product with the immediate Jacobian) from
one call of the cell's ``step_back`` with dE/dcarry = nu. rho0 = sqrt(|theta~| / |J s~|) and
rho1 = sqrt(|nu^T I_t| / |nu|) minimise the variance (the paper's choice; eps keeps 0/0 away). The
gradient estimate at step t is (dE_t/dc_t . s~_t) theta~_t. O(H^2) a step (O(n*G*H) for the gated
cells' Jacobian). Defined for any differentiable recurrence: every cell.
"""

from __future__ import annotations

import numpy as np

from .base import Algorithm

EPS = 1e-7


class UORO(Algorithm):
    name = "uoro"
    stochastic = True

    def _init(self, net, B, rows):
        n = net.cell.n_carry * net.n_hidden
        return {"s": np.zeros((B, n), net.dtype), "theta": np.zeros((B, rows.GH, rows.F), net.dtype)}

    def _reset(self, state, keep):
        state["s"] = state["s"] * keep
        state["theta"] = state["theta"] * keep[:, :, None]

    def _update(self, net, rows, state, s, rng):
        cell, H = net.cell, net.n_hidden
        J = cell.jacobian(s.p, s.cache, s.carry)  # (B, n, n)
        Js = np.einsum("bkl,bl->bk", J, state["s"])
        B, n = Js.shape
        nu = rng.choice(np.array([-1.0, 1.0], dtype=Js.dtype), size=(B, n))
        dgx, dgh, _ = cell.step_back(s.p, s.cache, s.carry, tuple(nu[:, m * H : (m + 1) * H]
                                                                   for m in range(cell.n_carry)))
        nuI = rows.immediate(dgx[:, None], dgh[:, None], s.x, s.carry[0])[:, 0]  # (B, G*H, F)
        theta = state["theta"]
        norm = lambda a: np.sqrt((a.reshape(B, -1) ** 2).sum(axis=1))  # noqa: E731
        rho0 = np.sqrt((norm(theta) + EPS) / (norm(Js) + EPS))
        rho1 = np.sqrt((norm(nuI) + EPS) / (norm(nu) + EPS))
        state["s"] = rho0[:, None] * Js + rho1[:, None] * nu
        state["theta"] = theta / rho0[:, None, None] + nuI / rho1[:, None, None]

    def _cell_rows(self, state, dc, rows):
        return np.einsum("bk,bk->b", dc, state["s"])[:, None, None] * state["theta"]
