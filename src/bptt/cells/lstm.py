"""LSTM cell (Hochreiter & Schmidhuber 1997, with the forget gate of Gers et al. 2000), PyTorch's layout.

    a_t = W_ih x_t + b_ih + W_hh h_{t-1} + b_hh          (B, 4H), gate blocks in the order i, f, g, o
    i = sigmoid(a_i)  f = sigmoid(a_f)  g = tanh(a_g)  o = sigmoid(a_o)
    c_t = f * c_{t-1} + i * g
    h_t = o * tanh(c_t)

Parameters: W_ih (4H, I), W_hh (4H, H), b_ih (4H,), b_hh (4H,), exactly torch.nn.LSTM's. The carry is
(h, c), both (B, H). ``forget_bias`` (Jozefowicz, Zaremba & Sutskever 2015 recommend 1.0) is added at
init to the f block of b_ih (rows H:2H) on top of the uniform draw; b_hh is left as drawn. The default 0.0
keeps PyTorch's initialisation law unchanged.
"""

from __future__ import annotations

import numbers
from typing import NamedTuple

import numpy as np

from .. import activations
from ..errors import InputError
from .base import Cell

_sigmoid = activations.get("sigmoid", role="g1").forward


class LSTMCache(NamedTuple):
    i: np.ndarray  # (B, H) input gate
    f: np.ndarray  # (B, H) forget gate
    g: np.ndarray  # (B, H) candidate
    o: np.ndarray  # (B, H) output gate
    tc: np.ndarray  # (B, H) tanh(c_t)


class LSTMCell(Cell):
    name = "lstm"
    gates = 4
    n_carry = 2
    w_in, w_rec, b_in, b_rec = "W_ih", "W_hh", "b_ih", "b_hh"
    tied_dgh = True  # step_back returns one array as both dgx and dgh (no gate sees h apart from x)

    def __init__(self, forget_bias: float = 0.0):
        if isinstance(forget_bias, bool) or not isinstance(forget_bias, numbers.Real) or not np.isfinite(forget_bias):
            raise InputError(f"forget_bias: got {forget_bias!r}, expected a finite number (e.g. 1.0 or 0.0)")
        self.forget_bias = float(forget_bias)

    def config(self) -> dict:
        return {"cell": self.name, "forget_bias": self.forget_bias}

    def init(self, rng, n_in, H, scheme, dtype):
        p = super().init(rng, n_in, H, scheme, dtype)
        p["b_ih"][H : 2 * H] += self.forget_bias  # the f block; PyTorch's law when forget_bias == 0
        return p

    def step(self, p, gx, carry):
        """gx (B, 4H) = W_ih x_t + b_ih; carry (h_{t-1}, c_{t-1}) -> ((h_t, c_t), LSTMCache)."""
        h_prev, c_prev = carry
        H = h_prev.shape[1]
        a = h_prev @ p["W_hh"].T  # (B, 4H)
        a += gx
        a += p["b_hh"]
        i = _sigmoid(a[:, :H])
        f = _sigmoid(a[:, H : 2 * H])
        g = np.tanh(a[:, 2 * H : 3 * H])
        o = _sigmoid(a[:, 3 * H :])
        c = f * c_prev
        c += i * g
        tc = np.tanh(c)
        return (o * tc, c), LSTMCache(i, f, g, o, tc)

    def step_back(self, p, cache, carry, dcarry):
        """(dh_t, dc_t) -> dE/da_t (the same for the input and the recurrent part) and
        (dh_{t-1}, dc_{t-1}) = (da W_hh, dc_total * f)."""
        i, f, g, o, tc = cache
        c_prev = carry[1]
        dh, dc = dcarry
        dct = dc + dh * o * (1.0 - tc * tc)  # (B, H) total dE/dc_t, through h_t = o tanh(c_t) too
        da = np.concatenate(
            [
                dct * g * i * (1.0 - i),  # a_i
                dct * c_prev * f * (1.0 - f),  # a_f
                dct * i * (1.0 - g * g),  # a_g
                dh * tc * o * (1.0 - o),  # a_o
            ],
            axis=1,
        )  # (B, 4H)
        return da, da, (da @ p["W_hh"], dct * f)

    def jacobian(self, p, cache, carry):
        """d(h_t, c_t)/d(h_{t-1}, c_{t-1}) for each stream: (B, 2H, 2H), blocks [[dh/dh, dh/dc], [dc/dh, dc/dc]]."""
        i, f, g, o, tc = cache
        c_prev = carry[1]
        B, H = i.shape
        W = p["W_hh"]
        Wi, Wf, Wg, Wo = W[:H], W[H : 2 * H], W[2 * H : 3 * H], W[3 * H :]
        # dc_t/dh_{t-1}: through a_i, a_f and a_g
        dc_dh = ((g * i * (1 - i))[:, :, None] * Wi + (c_prev * f * (1 - f))[:, :, None] * Wf
                 + (i * (1 - g * g))[:, :, None] * Wg)  # (B, H, H)
        k = o * (1 - tc * tc)  # dh_t/dc_t (diagonal)
        dh_dh = (tc * o * (1 - o))[:, :, None] * Wo + k[:, :, None] * dc_dh
        J = np.zeros((B, 2 * H, 2 * H), dtype=i.dtype)
        idx = np.arange(H)
        J[:, :H, :H] = dh_dh
        J[:, idx, H + idx] = k * f  # dh_t/dc_{t-1}
        J[:, H:, :H] = dc_dh
        J[:, H + idx, H + idx] = f  # dc_t/dc_{t-1}
        return J
