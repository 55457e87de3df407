"""The seed's Elman cell: S_t = g1(Wx X_t + Ws S_{t-1} + bs).

Parameters: Wx (H, I), Ws (H, H), bs (H,). The carry is (S,), S of shape (B, H).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .. import activations
from .base import Cell


class ElmanCache(NamedTuple):
    S: np.ndarray  # (B, H) the new state S_t = g1(z_t); g1'(z_t) is computed from it


class ElmanCell(Cell):
    name = "elman"
    gates = 1
    n_carry = 1
    w_in, w_rec, b_in, b_rec = "Wx", "Ws", "bs", None
    tied_dgh = True  # dE/dz_t is both the input and the recurrent part's gradient
    step_out = True

    def __init__(self, g1: str = "tanh"):
        self.g1 = activations.get(g1, role="g1")

    def config(self) -> dict:
        return {"cell": self.name, "g1": self.g1.name}

    def init(self, rng, n_in, H, scheme, dtype):
        p = super().init(rng, n_in, H, scheme, dtype)
        if scheme == "identity":
            # IRNN (Le, Jaitly & Hinton 2015): Ws = I, zero bias, small Gaussian input weights
            p["bs"][:] = 0
            p["Wx"] = (0.001 * rng.standard_normal((H, n_in))).astype(dtype)
        return p

    def prepare(self, p):
        # S_{t-1} Ws^T with a contiguous copy of Ws^T: BLAS is faster on it than on the transposed view
        return {**p, "WsT": np.ascontiguousarray(p["Ws"].T)}

    def step(self, p, gx, carry, out=None):
        """gx (B, H) = Wx X_t + bs; carry (S_{t-1},) -> ((S_t,), ElmanCache). out (B, H): where S_t goes."""
        (S_prev,) = carry
        WsT = p["WsT"] if "WsT" in p else p["Ws"].T
        z = np.matmul(S_prev, WsT, out=out)  # (B, H)
        z += gx
        S = self.g1.forward(z, out=z)  # in place: z is not needed again
        return (S,), ElmanCache(S)

    def step_back(self, p, cache, carry, dcarry):
        """dE/dS_t -> dE/dz_t (both for the input and the recurrent part) and dE/dS_{t-1} = dz Ws."""
        (dS,) = dcarry
        dz = self.g1.grad_from_output(cache.S)  # (B, H): dE/dz_t = dE/dS_t * g1'(z_t)
        dz *= dS
        return dz, dz, (dz @ p["Ws"],)

    def jacobian(self, p, cache, carry):
        """dS_t/dS_{t-1} = diag(g1'(z_t)) Ws, for each stream: (B, H, H)."""
        return self.g1.grad_from_output(cache.S)[:, :, None] * p["Ws"][None, :, :]
