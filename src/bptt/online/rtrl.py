"""Real-time recurrent learning (Williams & Zipser 1989): the exact gradient, forward in time.

The influence matrix M_t = dc_t/dtheta (the carry c_t = (h_t) or (h_t, c_t) against the cell's parameters)
obeys M_t = J_t M_{t-1} + I_t, with J_t = dc_t/dc_{t-1} from the cell's ``jacobian`` and I_t the
immediate Jacobian from the cell's ``step_back`` on the unit vectors of the carry (``base.unit_directions``).
The gradient of the loss at step t is dE_t/dc_t M_t. Stored per stream in row form, M (B, n, G*H, F),
n = n_carry*H: O(n^2 * G*H*F) = O(H^4) time and O(H^3) memory per step and stream.
"""

from __future__ import annotations

import numpy as np

from .base import Algorithm, unit_directions


class RTRL(Algorithm):
    name = "rtrl"

    def _init(self, net, B, rows):
        n = net.cell.n_carry * net.n_hidden
        return {"M": np.zeros((B, n, rows.GH, rows.F), net.dtype)}

    def _reset(self, state, keep):
        state["M"] = state["M"] * keep[:, :, None, None]

    def _update(self, net, rows, state, s, rng):
        J = net.cell.jacobian(s.p, s.cache, s.carry)  # (B, n, n)
        Ax, Ah = unit_directions(net.cell, s.p, s.cache, s.carry)  # (B, n, G*H)
        M = state["M"]
        B, n = M.shape[:2]
        JM = np.matmul(J, M.reshape(B, n, -1)).reshape(M.shape)  # a new array: the old state is not touched
        state["M"] = rows.add_immediate(JM, Ax, Ah, s.x, s.carry[0])

    def _cell_rows(self, state, dc, rows):
        M = state["M"]
        B, n = M.shape[:2]
        return np.matmul(dc[:, None, :], M.reshape(B, n, -1)).reshape(B, *M.shape[2:])
