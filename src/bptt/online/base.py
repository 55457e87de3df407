"""What every online gradient algorithm shares: the interface, one step of the net, and the parameter rows.

Interface (every algorithm in ``bptt.online``)::

    state = alg.init(net, B)                                     # a dict of numpy arrays only
    E_t, g, state = alg.step(net, state, x_t, d_t, loss="squared", weight=None, reset=None, last=False)

``x_t (B, I)`` one step of input; ``d_t (B, O)`` float targets ('squared') or ``(B,)`` classes
('cross_entropy'), or None when this step carries no loss; ``weight (B,)`` 0/1 per stream (default 1);
``reset (B,)`` bool: that stream's state goes back to zeros before this step (no gradient crosses it);
``last``: the sequence ends after this step (ARTBP closes its segment). ``g`` is a :class:`Gradients`
with every parameter of the net: the algorithm's estimate of dE_t/dtheta (the loss at this step, through
all the past, the weights treated as fixed), or for ARTBP the estimate of a whole segment's gradient at
the step that closes it (zeros elsewhere). Summed over a sequence with frozen weights, RTRL gives exactly
``net.gradients`` (without ``s0``); UORO, KF-RTRL and ARTBP give it in expectation.

The state holds everything an algorithm carries (the net's carry ``carry/k``, the step count ``t``, the
influence matrix, factors, ...), so a checkpoint of its arrays resumes bit for bit. Randomness: each step
draws from ``numpy.random.default_rng([key0, key1, t])``, the key drawn once in ``init`` from the Generator
given to the algorithm (``Algorithm(rng=...)``); nothing global.

The parameter rows
------------------
A cell's parameters are G*H rows (r = g*H + u: gate g, unit u) of F features,
``[W_in row (I), W_rec row (H), b_in (1, when the cell has it), b_rec (1, likewise)]``. The immediate
Jacobian of the carry with respect to them (the previous carry held fixed) is, for carry component k,
``dc_k/dtheta[r] = [Ax[k, r] x_t, Ah[k, r] h_{t-1}, Ax[k, r], Ah[k, r]]`` where ``Ax[k] = dgx`` and
``Ah[k] = dgh`` are what the cell's own ``step_back`` returns for the unit vector e_k as dE/d(carry):
the cell's math is used, never copied (this is how ``Cell.weight_terms`` turns dgx/dgh into weight rows).
Influence matrices are stored in this row form, (B, n, G*H, F) with n = n_carry * H.
"""

from __future__ import annotations

import numbers
from typing import ClassVar

import numpy as np

from .. import losses
from ..errors import InputError
from ..gradients import Gradients


class Rows:
    """The (G*H, F) row layout of one cell's parameters (see the module docstring)."""

    def __init__(self, cell, n_in: int, H: int):
        self.cell, self.I, self.H = cell, n_in, H
        self.GH = cell.gates * H
        self.biases = [b for b in (cell.b_in, cell.b_rec) if b is not None]
        self.F = n_in + H + len(self.biases)
        self.unit = np.arange(self.GH) % H  # the hidden unit each row feeds

    def immediate(self, Ax, Ah, x, h):
        """Ax, Ah (B, k, G*H): dgx/dgh of k dcarry directions; x (B, I), h (B, H) the step's input and
        h_{t-1} -> (B, k, G*H, F): each direction's vector-Jacobian product with the parameters."""
        B, k, GH = Ax.shape
        parts = [Ax[..., None] * x[:, None, None, :], Ah[..., None] * h[:, None, None, :]]
        if self.cell.b_in is not None:
            parts.append(Ax[..., None])
        if self.cell.b_rec is not None:
            parts.append(Ah[..., None])
        return np.concatenate(parts, axis=-1)

    def add_immediate(self, M, Ax, Ah, x, h):
        """M (B, k, G*H, F) += ``immediate(Ax, Ah, x, h)``, in place, without building the product."""
        I, H = self.I, self.H
        M[..., :I] += Ax[..., None] * x[:, None, None, :]
        M[..., I : I + H] += Ah[..., None] * h[:, None, None, :]
        j = I + H
        for A, b in ((Ax, self.cell.b_in), (Ah, self.cell.b_rec)):
            if b is not None:
                M[..., j] += A
                j += 1
        return M

    def features(self, x, h):
        """(B, F) the vector a_t = [x_t, h_{t-1}, 1, 1] with immediate = D (x) a_t when dgx == dgh."""
        B = x.shape[0]
        return np.concatenate([x, h, np.ones((B, len(self.biases)), x.dtype)], axis=1)

    def unpack(self, R) -> dict:
        """R (..., G*H, F) -> {parameter base name: (..., *shape)}."""
        I, H = self.I, self.H
        out = {self.cell.w_in: R[..., :I], self.cell.w_rec: R[..., I : I + H]}
        for j, b in enumerate(self.biases):
            out[b] = R[..., I + H + j]
        return out


def tile(a, n):
    """(B, ...) -> (n*B, ...): n copies along the first axis, copy j at rows j*B .. j*B+B-1."""
    return np.tile(a, (n,) + (1,) * (a.ndim - 1))


def unit_directions(cell, p, cache, carry):
    """The cell's ``step_back`` applied to every unit vector e_k of the carry at once (the batch tiled
    n = n_carry*H times). Returns Ax, Ah (B, n, G*H): dgx and dgh for dE/dcarry = e_k."""
    B, H = carry[0].shape
    n = cell.n_carry * H
    eye = np.eye(n, dtype=carry[0].dtype)
    dcarry = tuple(np.repeat(eye[:, m * H : (m + 1) * H], B, axis=0) for m in range(cell.n_carry))  # (n*B, H)
    big_cache = type(cache)(*(tile(a, n) for a in cache))
    dgx, dgh, _ = cell.step_back(p, big_cache, tuple(tile(c, n) for c in carry), dcarry)
    Ax = dgx.reshape(n, B, -1).transpose(1, 0, 2)
    Ah = Ax if dgh is dgx else dgh.reshape(n, B, -1).transpose(1, 0, 2)
    return Ax, Ah


def check_net(net, name: str, cells=("elman", "lstm", "gru")) -> None:
    """One clear error for what the online algorithms do not support."""
    if net.layers != 1 or net.bidirectional:
        raise InputError(f"{name}: online algorithms need a single unidirectional layer; got layers={net.layers}, "
                         f"bidirectional={net.bidirectional}. Use layers=1 (--layers 1) and no bidirectional net.")
    if net.cell.name not in cells:
        raise InputError(f"{name}: not defined for the {net.cell.name} cell; it supports {', '.join(cells)}")


class StepOut:
    """What the forward part of a step hands to an algorithm's update."""

    __slots__ = ("p", "x", "carry", "new", "cache")

    def __init__(self, p, x, carry, new, cache):
        self.p, self.x, self.carry, self.new, self.cache = p, x, carry, new, cache


class Algorithm:
    """Base class. Subclasses set ``name``, ``cells``, ``stochastic`` and implement ``_init`` (extra state),
    ``_reset`` (zero a stream's state), ``_update`` (carry the algorithm's state over one step) and
    ``_cell_rows`` (per-stream (B, G*H, F) gradient rows of the cell's parameters from dE/dcarry_t)."""

    name: ClassVar[str]
    cells: ClassVar[tuple] = ("elman", "lstm", "gru")
    stochastic: ClassVar[bool] = False

    def __init__(self, rng: np.random.Generator | None = None):
        if rng is not None and not isinstance(rng, np.random.Generator):
            raise InputError(f"rng: got {type(rng).__name__}, expected a numpy.random.Generator "
                             "(numpy.random.default_rng(seed))")
        if self.stochastic and rng is None:
            raise InputError(f"{self.name}: a stochastic algorithm needs rng=numpy.random.default_rng(seed)")
        self.rng = rng

    @property
    def label(self) -> str:
        return self.name

    def __repr__(self):
        return f"{type(self).__name__}({self.label!r})"

    # ---- state ---------------------------------------------------------------------------------
    def init(self, net, B: int) -> dict:
        """The state before the first step of B streams: zero carry, zero influence."""
        check_net(net, self.label, self.cells)
        if isinstance(B, bool) or not isinstance(B, numbers.Integral) or B < 1:
            raise InputError(f"B: got {B!r}, expected the number of streams, an integer >= 1")
        B = int(B)
        state = {f"carry/{k}": np.zeros((B, net.n_hidden), net.dtype) for k in range(net.cell.n_carry)}
        state["t"] = np.zeros((), np.int64)
        key = self.rng.integers(0, 2**62, size=2) if self.rng is not None else np.zeros(2, np.int64)
        state["key"] = key.astype(np.int64)
        state.update(self._init(net, B, Rows(net.cell, net.n_in, net.n_hidden)))
        return state

    def _init(self, net, B, rows) -> dict:
        return {}

    def _reset(self, state, keep) -> None:
        """keep (B, 1) bool, False for streams reset before this step: zero their algorithm state."""

    @staticmethod
    def carry(state) -> tuple:
        return tuple(state[f"carry/{k}"] for k in range(sum(1 for s in state if s.startswith("carry/"))))

    def step_rng(self, state) -> np.random.Generator:
        k0, k1 = (int(v) for v in state["key"])
        return np.random.default_rng([k0, k1, int(state["t"])])

    # ---- one step ------------------------------------------------------------------------------
    def step(self, net, state, x_t, d_t=None, *, loss="squared", weight=None, reset=None, last=False,
             per_stream=False):
        """Advance one step. Returns (E_t, Gradients, new state); see the module docstring.
        ``per_stream``: every gradient array gets a leading (B,) axis, one estimate per stream."""
        x, d, w, r = check_step(net, state, x_t, d_t, loss, weight, reset)
        state = dict(state)
        carry = self.carry(state)
        if r is not None:
            keep = ~r[:, None]
            carry = tuple(c * keep for c in carry)
            self._reset(state, keep)
        (view,) = net.views()[0]
        p = net.cell.prepare(view)
        gx = net.cell.project(p, x[None])[0]
        new, cache = net.cell.step(p, gx, carry)
        new = tuple(np.array(a) for a in new)
        rows = Rows(net.cell, net.n_in, net.n_hidden)
        rng = self.step_rng(state) if self.stochastic else None
        self._update(net, rows, state, StepOut(p, x, carry, new, cache), rng)
        for k, a in enumerate(new):
            state[f"carry/{k}"] = a
        state["t"] = np.asarray(int(state["t"]) + 1, np.int64)
        E, g = output_grads(net, new[0], d, w, loss, per_stream)
        if d is not None:
            dh = g.pop("_dh")
            dc = np.concatenate([dh] + [np.zeros_like(dh)] * (net.cell.n_carry - 1), axis=1)  # (B, n)
            R = self._cell_rows(state, dc, rows)  # (B, G*H, F)
            for name, v in rows.unpack(R if per_stream else R.sum(axis=0)).items():
                g[name] = v
        else:
            B = x.shape[0]
            for name, shape in net.cell.shapes(net.n_in, net.n_hidden).items():
                g[name] = np.zeros(((B,) if per_stream else ()) + shape, net.dtype)
        return E, g, state

    def _update(self, net, rows, state, s: StepOut, rng) -> None:
        raise NotImplementedError

    def _cell_rows(self, state, dc, rows):
        raise NotImplementedError


def check_step(net, state, x_t, d_t, loss, weight, reset):
    """Validate one step's inputs; returns (x (B, I), d or None, w (B,) floats, reset (B,) bool or None)."""
    if not isinstance(state, dict) or "carry/0" not in state:
        raise InputError("state: expected the dict returned by alg.init(net, B) or by the previous alg.step")
    B = state["carry/0"].shape[0]
    x = np.asarray(x_t)
    if x.shape != (B, net.n_in) or x.dtype.kind != "f":
        raise InputError(f"x_t: got {x.dtype} {x.shape}, expected ({B}, {net.n_in}) = (B, I) floats, one step")
    x = x.astype(net.dtype, copy=False)
    losses.check_pair(loss, net.g2)
    d = None
    if d_t is not None:
        d = np.asarray(d_t)
        if loss == "cross_entropy":
            if d.shape != (B,) or d.dtype.kind not in "iu" or (d.size and (d.min() < 0 or d.max() >= net.n_out)):
                raise InputError(f"d_t: got {d.dtype} {d.shape}, expected ({B},) integer classes in [0, {net.n_out})")
        elif d.shape != (B, net.n_out) or d.dtype.kind != "f":
            raise InputError(f"d_t: got {d.dtype} {d.shape}, expected ({B}, {net.n_out}) = (B, O) float targets")
    w = np.ones(B, net.dtype) if weight is None else np.asarray(weight, dtype=net.dtype)
    if w.shape != (B,):
        raise InputError(f"weight: got shape {w.shape}, expected ({B},) loss weights per stream")
    r = None
    if reset is not None:
        r = np.asarray(reset)
        if r.shape != (B,) or r.dtype != bool:
            raise InputError(f"reset: got {r.dtype} {r.shape}, expected ({B},) bool")
        r = r if r.any() else None
    return x, d, w, r


def output_grads(net, h, d, w, loss, per_stream):
    """The loss of one step and the gradients of the output layer; ``_dh`` (B, H) = dE/dh_t.
    Uses ``bptt.losses.output_loss`` on a one-step sequence (its 1/B scaling included)."""
    g = Gradients()
    B = h.shape[0]
    if d is None:
        g["Wy"] = np.zeros(((B,) if per_stream else ()) + net.params["Wy"].shape, net.dtype)
        g["by"] = np.zeros(((B,) if per_stream else ()) + net.params["by"].shape, net.dtype)
        return 0.0, g
    Z = h @ net.params["Wy"].T + net.params["by"]
    E, _, dZ = losses.output_loss(loss, net.g2, Z[None], d[None], w[None])
    dZ = dZ[0]  # (B, O)
    if per_stream:
        g["Wy"] = dZ[:, :, None] * h[:, None, :]
        g["by"] = dZ.copy()
    else:
        g["Wy"] = dZ.T @ h
        g["by"] = dZ.sum(axis=0)
    g["_dh"] = dZ @ net.params["Wy"]
    return E, g


__all__ = ["Algorithm", "Rows", "check_net", "check_step", "output_grads", "unit_directions", "tile"]
