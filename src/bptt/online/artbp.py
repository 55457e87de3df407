"""Anticipated reweighted truncated backpropagation (ARTBP; Tallec & Ollivier 2017): truncated BPTT made
unbiased by random truncation points and compensation factors.

After each step t a truncation between t and t+1 is drawn with probability c (decided before the future
is seen: "anticipated"). The steps since the previous truncation form a segment; when it closes, the
segment is back-propagated by the existing time loop (``bptt.loop``) from the state at its start, with the
backward recursion reweighted: each step boundary j that the gradient crosses inside a segment multiplies
it by 1/(1 - c). Because the truncation at j happens with probability c and is independent of everything
after j, E[(1 - eps_j)/(1 - c)] = 1 and the estimate of the full gradient is unbiased.

The reweighting factorises: the factor from a loss at step t to the parameter term of step i is
W(t)/W(i), W(i) = (1 - c)^-(i - s) for a segment starting at s. So the loss at t is injected scaled by
W(t), the loop runs its ordinary backward over the segment, and each step's pre-activation gradient is
divided by W(i) before the weight gradients are formed (``Cell.weight_grads``).

Truncation points are shared by the B streams of a batch (one draw per step). A truncation probability c
gives segments of mean length 1/c (default c = 0.1: 10 steps, like BPTT(10)); the compensation factors grow
like (1 - c)^-k along a segment, which the decay of the gradient usually outweighs.
"""

from __future__ import annotations

import numbers

import numpy as np

from .. import loop, losses
from ..errors import InputError
from ..gradients import Gradients
from .base import Algorithm, check_step


class ARTBP(Algorithm):
    name = "artbp"
    stochastic = True

    def __init__(self, c: float = 0.1, rng=None):
        if isinstance(c, bool) or not isinstance(c, numbers.Real) or not 0 < c < 1:
            raise InputError(f"artbp: got truncation probability c={c!r}, expected a number strictly between 0 "
                             "and 1 (e.g. artbp:0.1, segments of 10 steps on average)")
        super().__init__(rng)
        self.c = float(c)

    @property
    def label(self) -> str:
        return "artbp" if self.c == 0.1 else f"artbp:{self.c:g}"

    def _init(self, net, B, rows):
        st = {f"s0/{k}": np.zeros((B, net.n_hidden), net.dtype) for k in range(net.cell.n_carry)}
        st.update({"X": np.zeros((0, B, net.n_in), net.dtype), "D": np.zeros((0, B, net.n_out), net.dtype),
                   "w": np.zeros((0, B), net.dtype), "R": np.zeros((0, B), bool)})
        return st

    def step(self, net, state, x_t, d_t=None, *, loss="squared", weight=None, reset=None, last=False,
             per_stream=False):
        if per_stream:
            raise InputError("artbp: truncation points are shared by the streams of a batch; per_stream "
                             "estimates are not independent (run one batch per draw)")
        x, d, w, r = check_step(net, state, x_t, d_t, loss, weight, reset)
        state = dict(state)
        B = x.shape[0]
        carry = self.carry(state)
        if r is not None:
            carry = tuple(c * ~r[:, None] for c in carry)
        (view,) = net.views()[0]
        p = net.cell.prepare(view)
        new, _ = net.cell.step(p, net.cell.project(p, x[None])[0], carry)
        E = 0.0
        if d is None:
            d = np.zeros((B,) if loss == "cross_entropy" else (B, net.n_out),
                         np.int64 if loss == "cross_entropy" else net.dtype)
            w = np.zeros(B, net.dtype)
        else:
            Z = new[0] @ net.params["Wy"].T + net.params["by"]
            E = losses.output_loss(loss, net.g2, Z[None], d[None], w[None])[0]
        Dbuf = state["D"]
        if Dbuf.shape[0] == 0:  # a fresh segment takes the loss's target kind
            Dbuf = np.zeros((0,) + d.shape, d.dtype)
        state["X"] = np.concatenate([state["X"], x[None]])
        state["D"] = np.concatenate([Dbuf, d[None].astype(Dbuf.dtype)])
        state["w"] = np.concatenate([state["w"], w[None]])
        state["R"] = np.concatenate([state["R"], (np.zeros(B, bool) if r is None else r)[None]])
        for k, a in enumerate(new):
            state[f"carry/{k}"] = np.array(a)
        cut = last or self.step_rng(state).random() < self.c
        state["t"] = np.asarray(int(state["t"]) + 1, np.int64)
        if not cut:
            return E, zeros(net), state
        g = segment_gradient(net, tuple(state[f"s0/{k}"] for k in range(net.cell.n_carry)), state["X"],
                             state["D"], state["w"], state["R"], loss, self.c)
        for k in range(net.cell.n_carry):
            state[f"s0/{k}"] = state[f"carry/{k}"]
        state["X"], state["D"] = state["X"][:0], state["D"][:0]
        state["w"], state["R"] = state["w"][:0], state["R"][:0]
        return E, g, state


def zeros(net) -> Gradients:
    return Gradients({k: np.zeros_like(v) for k, v in net.params.items()})


def segment_gradient(net, s0, X, D, w, R, loss, c) -> Gradients:
    """The reweighted gradient of one segment. s0: carry tuple at its start; X (n, B, I); D (n, B, O) or
    (n, B); w (n, B) loss weights; R (n, B) resets; c the truncation probability."""
    n = X.shape[0]
    cell = net.cell
    views = net.views()
    res = R if R.any() else None
    trace = loop.stack_forward(cell, views, X, [[s0]], None, res)
    S = trace.outputs[-1]
    Wy = net.params["Wy"]
    Z = S @ Wy.T + net.params["by"]
    _, _, dZ = losses.output_loss(loss, net.g2, Z, D, w)
    W = (1.0 - c) ** -np.arange(n, dtype=np.float64)  # W(i), i = 0 .. n-1 within the segment
    dtop = (dZ * W[:, None, None].astype(dZ.dtype)) @ Wy
    (acc,), = loop.stack_backward(cell, views, trace, [(0, n - 1, dtop)], None, res, carries=False)
    inv = (1.0 / W)[:, None, None].astype(dZ.dtype)
    dGX = acc.dGX * inv
    dGH = dGX if acc.dGH is acc.dGX else acc.dGH * inv
    g = Gradients(cell.weight_grads(X, loop.hidden_prev(trace.traces[0][0]), dGX, dGH))
    T, B = S.shape[:2]
    g["Wy"] = dZ.reshape(T * B, -1).T @ S.reshape(T * B, -1)
    g["by"] = dZ.sum(axis=(0, 1))
    return g
