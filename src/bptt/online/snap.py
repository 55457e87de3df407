"""SnAp-n (Menick, Elsen, Evci, Osindero, Simonyan & Graves 2021): RTRL with the influence matrix kept
only where a parameter can reach a carry unit within n steps.

Every cell here gates per unit: pre-activation row r = g*H + u feeds only unit u's carry components, so
a parameter of row r immediately touches unit u alone (SnAp-1), and after n-1 more steps the units that
depend on u through n-1 steps of the recurrent weights' pattern (unit i depends on unit j when some gate
block of W_rec has (i, j) != 0; every unit depends on itself). For dense recurrent weights SnAp-2 already
keeps everything (it is RTRL); the approximation bites at n = 1, or for sparse weights.

SnAp-1 is stored compactly, M1 (B, n_carry, G*H, F) = M[b, m*H + unit(r), r, :]; its update needs only
the per-unit diagonal blocks of J_t and of the immediate Jacobian: O(n_carry^2 * G*H*F) = O(H^2) a step.
SnAp-n (n >= 2) is stored as RTRL's dense M with a mask applied after each update (RTRL's cost here;
cheaper only for sparse nets, which bptt does not build).
"""

from __future__ import annotations

import numbers

import numpy as np

from ..errors import InputError
from .base import Algorithm, unit_directions


class SnAp(Algorithm):
    name = "snap"

    def __init__(self, n: int = 1, rng=None):
        if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1:
            raise InputError(f"snap: got n={n!r}, expected an integer >= 1 (snap1, snap2, ...)")
        super().__init__(rng)
        self.n = int(n)

    @property
    def label(self) -> str:
        return f"snap{self.n}"

    def _init(self, net, B, rows):
        nc, H = net.cell.n_carry, net.n_hidden
        if self.n == 1:
            return {"M1": np.zeros((B, nc, rows.GH, rows.F), net.dtype)}
        return {"M": np.zeros((B, nc * H, rows.GH, rows.F), net.dtype)}

    def _reset(self, state, keep):
        key = "M1" if self.n == 1 else "M"
        state[key] = state[key] * keep.reshape(-1, *([1] * (state[key].ndim - 1)))

    def pattern(self, net, rows) -> np.ndarray:
        """(n_carry*H, G*H) bool: which (carry component, parameter row) entries SnAp-n keeps."""
        H, G = net.n_hidden, net.cell.gates
        W = net.params[net.cell.w_rec] != 0  # (G*H, H)
        A = W.reshape(G, H, H).any(axis=0) | np.eye(H, dtype=bool)  # unit i depends on unit j
        reach = np.eye(H, dtype=bool)
        for _ in range(self.n - 1):
            reach = (A.astype(np.int64) @ reach.astype(np.int64)) > 0
        keep = reach[:, rows.unit]  # (H, G*H): unit i reached from row r's unit
        return np.tile(keep, (net.cell.n_carry, 1))

    def _update(self, net, rows, state, s, rng):
        cell, H = net.cell, net.n_hidden
        J = cell.jacobian(s.p, s.cache, s.carry)  # (B, n, n)
        if self.n > 1:
            Ax, Ah = unit_directions(cell, s.p, s.cache, s.carry)
            M = state["M"]
            B, n = M.shape[:2]
            new = np.matmul(J, M.reshape(B, n, -1)).reshape(M.shape) + rows.immediate(Ax, Ah, s.x, s.carry[0])
            state["M"] = new * self.pattern(net, rows)[None, :, :, None]
            return
        nc = cell.n_carry
        # the per-unit diagonals: step_back on "every unit of component m at once" gives, for row r, the
        # derivative of unit(r)'s component m (rows feed only their own unit)
        B = s.carry[0].shape[0]
        Ax, Ah = [], []
        for m in range(nc):
            dcarry = tuple(np.full((B, H), float(k == m), s.carry[0].dtype) for k in range(nc))
            dgx, dgh, _ = cell.step_back(s.p, s.cache, s.carry, dcarry)
            Ax.append(dgx)
            Ah.append(dgh)
        Ax, Ah = np.stack(Ax, axis=1), np.stack(Ah, axis=1)  # (B, nc, G*H)
        u = rows.unit
        idx = np.arange(nc)[:, None] * H + u[None, :]  # (nc, G*H): carry index m*H + unit(r)
        # Jd[b, m, m2, r] = J[b, m*H + unit(r), m2*H + unit(r)]
        Jd = J[:, idx[:, None, :], idx[None, :, :]]  # (B, nc, nc, G*H)
        M1 = state["M1"]
        state["M1"] = np.einsum("bmkr,bkrf->bmrf", Jd, M1) + rows.immediate(Ax, Ah, s.x, s.carry[0])

    def _cell_rows(self, state, dc, rows):
        if self.n > 1:
            M = state["M"]
            B, n = M.shape[:2]
            return np.matmul(dc[:, None, :], M.reshape(B, n, -1)).reshape(B, *M.shape[2:])
        M1 = state["M1"]
        nc, H = M1.shape[1], dc.shape[1] // M1.shape[1]
        dc1 = dc[:, np.arange(nc)[:, None] * H + rows.unit[None, :]]  # (B, nc, G*H)
        return np.einsum("bmr,bmrf->brf", dc1, M1)
