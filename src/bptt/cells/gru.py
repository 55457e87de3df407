"""GRU cell (Cho et al. 2014), PyTorch's variant and layout.

    gx = W_ih x_t + b_ih,  gh = W_hh h_{t-1} + b_hh       (B, 3H), gate blocks in the order r, z, n
    r = sigmoid(gx_r + gh_r)   z = sigmoid(gx_z + gh_z)
    n = tanh(gx_n + r * gh_n)                              (the reset gate scales W_hn h + b_hn)
    h_t = (1 - z) * n + z * h_{t-1}

Parameters: W_ih (3H, I), W_hh (3H, H), b_ih (3H,), b_hh (3H,), exactly torch.nn.GRU's. The carry is (h,).
Because r multiplies only the recurrent part of the n block, dE/dgx and dE/dgh differ there:
dE/dgx_n = dE/d(pre-tanh) while dE/dgh_n = r * dE/d(pre-tanh).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .. import activations
from .base import Cell

_sigmoid = activations.get("sigmoid", role="g1").forward


class GRUCache(NamedTuple):
    r: np.ndarray  # (B, H) reset gate
    z: np.ndarray  # (B, H) update gate
    n: np.ndarray  # (B, H) candidate
    ghn: np.ndarray  # (B, H) W_hn h_{t-1} + b_hn, the part r scales


class GRUCell(Cell):
    name = "gru"
    gates = 3
    n_carry = 1
    w_in, w_rec, b_in, b_rec = "W_ih", "W_hh", "b_ih", "b_hh"

    def step(self, p, gx, carry):
        """gx (B, 3H) = W_ih x_t + b_ih; carry (h_{t-1},) -> ((h_t,), GRUCache)."""
        (h_prev,) = carry
        H = h_prev.shape[1]
        gh = h_prev @ p["W_hh"].T  # (B, 3H)
        gh += p["b_hh"]
        r = _sigmoid(gx[:, :H] + gh[:, :H])
        z = _sigmoid(gx[:, H : 2 * H] + gh[:, H : 2 * H])
        ghn = gh[:, 2 * H :]
        n = np.tanh(gx[:, 2 * H :] + r * ghn)
        h = n + z * (h_prev - n)  # = (1 - z) n + z h_{t-1}
        return (h,), GRUCache(r, z, n, ghn)

    def step_back(self, p, cache, carry, dcarry):
        """dh_t -> (dE/dgx_t, dE/dgh_t) (B, 3H) each, and (dh_{t-1},) = (dgh W_hh + dh_t * z,)."""
        r, z, n, ghn = cache
        (h_prev,) = carry
        (dh,) = dcarry
        dan = dh * (1.0 - z) * (1.0 - n * n)  # (B, H) dE/d(gx_n + r * gh_n)
        dar = dan * ghn * r * (1.0 - r)  # dE/d(gx_r + gh_r)
        daz = dh * (h_prev - n) * z * (1.0 - z)  # dE/d(gx_z + gh_z)
        dgx = np.concatenate([dar, daz, dan], axis=1)
        dgh = np.concatenate([dar, daz, dan * r], axis=1)
        return dgx, dgh, (dgh @ p["W_hh"] + dh * z,)

    def jacobian(self, p, cache, carry):
        """dh_t/dh_{t-1} for each stream: (B, H, H)."""
        r, z, n, ghn = cache
        (h_prev,) = carry
        H = r.shape[1]
        W = p["W_hh"]
        Wr, Wz, Wn = W[:H], W[H : 2 * H], W[2 * H :]
        dn = (1 - z) * (1 - n * n)  # dh_t/d(pre-tanh of n)
        J = ((h_prev - n) * z * (1 - z))[:, :, None] * Wz  # through z
        J += (dn * r)[:, :, None] * Wn  # through gh_n
        J += (dn * ghn * r * (1 - r))[:, :, None] * Wr  # through r
        idx = np.arange(H)
        J[:, idx, idx] += z  # the direct path z * h_{t-1}
        return J
