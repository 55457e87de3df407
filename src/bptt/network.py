"""Recurrent networks: a stack of cells (L layers x D directions) with the seed's output layer on top.

    S_t = cell(X_t, S_{t-1})             (Elman: S_t = g1(Wx X_t + Ws S_{t-1} + bs))
    Y_t = g2(Wy S_t + by)

The class holds parameters and configuration only. Time is owned by ``bptt.loop``; optimisers, files and
training live in their own modules.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import numpy as np

from . import activations, cells, loop, losses, products, validate
from .errors import InputError
from .gradients import Gradients


#: ``seed=NO_INIT``: build the structure only; the parameters come from elsewhere (``Network.from_params``).
NO_INIT = object()


def _float_dtype(dtype) -> np.dtype:
    """numpy.float32 or numpy.float64 from anything numpy.dtype reads; InputError otherwise."""
    ok = dtype is None or isinstance(dtype, (str, type, np.dtype)) and not (isinstance(dtype, str) and len(dtype) > 32)
    try:
        dt = np.dtype(dtype) if ok else None  # numpy.dtype(None) is float64
    except (TypeError, ValueError, OverflowError, MemoryError, SyntaxError):
        dt = None
    if dt is None or dt.kind != "f" or dt.itemsize not in (4, 8) or not dt.isnative:
        raise InputError(f"dtype: got {dtype!r}"[:200] + ", expected numpy.float32 or numpy.float64 "
                         "('float32' / 'float64')")
    return dt


@functools.lru_cache(maxsize=64)
def _view_names(names: tuple, layers: int, bidirectional: bool) -> tuple:
    """Per layer, per direction: ((base name, parameter name), ...) for ``Network.views``."""
    return tuple(tuple(tuple((n, n + _suffix(layers, bidirectional, l, d)) for n in names)
                       for d in range(2 if bidirectional else 1)) for l in range(layers))


def _suffix(layers: int, bidirectional: bool, layer: int, direction: int) -> str:
    if layers == 1 and not bidirectional:
        return ""
    return f"_l{layer}" + ("_reverse" if direction else "")


class Forward(NamedTuple):
    Y: np.ndarray  # (T, B, O) outputs g2(Wy S_t + by)
    S: np.ndarray  # (T, B, D*H) hidden outputs of the top layer
    state: object  # the final state, in the same form as s0


class Network:
    """L stacked layers of one cell kind, optionally bidirectional, and a dense output layer.

    Parameter names: the cell's (``Wx, Ws, bs`` for Elman) for a single unidirectional layer; with
    several layers or directions each gets ``_l{layer}`` and, for the backward direction, ``_reverse``
    (PyTorch's scheme). The output layer is ``Wy (O, D*H)``, ``by (O,)``.
    """

    cell_name = "elman"

    def __init__(self, n_in, n_hidden, n_out, *, g2="identity", layers=1, bidirectional=False, seed=0,
                 init="uniform", dtype=np.float64, **cell_options):
        self.n_in = validate.integer("n_in", n_in, low=1)
        self.n_hidden = validate.integer("n_hidden", n_hidden, low=1)
        self.n_out = validate.integer("n_out", n_out, low=1)
        self.layers = validate.integer("layers", layers, low=1)
        if not isinstance(bidirectional, bool):
            raise InputError(f"bidirectional: got {bidirectional!r}, expected True or False")
        self.bidirectional = bidirectional
        self.dtype = _float_dtype(dtype)
        self.g2 = activations.get(g2, role="g2")
        self.cell = cells.make(self.cell_name, **cell_options)
        self.init = init
        self.params = {} if seed is NO_INIT else self._init_params(seed, init)

    @classmethod
    def from_params(cls, params: dict, **config) -> "Network":
        """A network of this class with the given parameters, no random initialiser run (loading uses it).
        ``config``: the constructor's keywords (as in ``config()``, without ``cell``). The parameters' names,
        shapes, dtype and finiteness are checked (``set_params``)."""
        return cls(**config, seed=NO_INIT).set_params(params)

    # ---- structure ----------------------------------------------------------------------------
    @property
    def directions(self) -> int:
        return 2 if self.bidirectional else 1

    def suffix(self, layer: int, direction: int) -> str:
        return _suffix(self.layers, self.bidirectional, layer, direction)

    def param_shapes(self) -> dict[str, tuple]:
        shapes = {}
        H, D = self.n_hidden, self.directions
        for l in range(self.layers):
            for d in range(D):
                for name, shape in self.cell.shapes(self.n_in if l == 0 else D * H, H).items():
                    shapes[name + self.suffix(l, d)] = shape
        shapes["Wy"] = (self.n_out, D * H)
        shapes["by"] = (self.n_out,)
        return shapes

    def _init_params(self, seed, init) -> dict:
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(
            validate.integer("seed", seed, low=0))
        H, D = self.n_hidden, self.directions
        p = {}
        for l in range(self.layers):
            for d in range(D):
                for name, a in self.cell.init(rng, self.n_in if l == 0 else D * H, H, init, self.dtype).items():
                    p[name + self.suffix(l, d)] = a
        k = 1.0 / np.sqrt(D * H)
        p["Wy"] = rng.uniform(-k, k, (self.n_out, D * H)).astype(self.dtype)
        p["by"] = rng.uniform(-k, k, self.n_out).astype(self.dtype)
        return p

    def views(self, params=None) -> list[list[dict]]:
        """Per layer, per direction: the cell's parameters under its base names."""
        params = self.params if params is None else params
        return [[{base: params[full] for base, full in pairs} for pairs in dirs]
                for dirs in _view_names(self.cell.names, self.layers, self.bidirectional)]

    @property
    def n_params(self) -> int:
        return int(sum(a.size for a in self.params.values()))

    def config(self) -> dict:
        """JSON-able description that rebuilds this network (``bptt.io`` stores it)."""
        return {**self.cell.config(), "n_in": self.n_in, "n_hidden": self.n_hidden, "n_out": self.n_out,
                "g2": self.g2.name, "layers": self.layers, "bidirectional": self.bidirectional,
                "init": self.init, "dtype": self.dtype.name}

    def set_params(self, params: dict) -> "Network":
        """Replace the parameters (e.g. with an optimiser's output), checking names, shapes, finiteness."""
        shapes = self.param_shapes()
        if set(params) != set(shapes):
            raise InputError(f"params: got names {sorted(params)}, expected {sorted(shapes)}")
        new = {}
        for name, shape in shapes.items():
            a = validate.array(f"params[{name!r}]", params[name], ndim=len(shape), dtype=self.dtype,
                               expect=f"of shape {shape}")
            validate.sizes(f"params[{name!r}]", a, {i: (n, "size") for i, n in enumerate(shape)})
            new[name] = a
        self.params = new
        return self

    def to_torch(self):
        """The same net as (torch.nn.RNN/LSTM/GRU, torch.nn.Linear); see ``bptt.interop.to_torch``."""
        from .interop import to_torch

        return to_torch(self)

    def __repr__(self):
        c = ", ".join(f"{k}={v!r}" for k, v in self.config().items() if k != "cell")
        return f"{type(self).__name__}({c})"

    # ---- inputs and states ----------------------------------------------------------------------
    def _x(self, X, name="X", ndim=3):
        """Float inputs (..., I), or integer class codes of one rank less standing for one-hot vectors
        of length n_in (a row lookup of the input weight instead of a GEMM: see ``bptt.codes``)."""
        if not isinstance(X, np.ndarray):
            try:
                X = np.asarray(X)
            except Exception:  # ragged lists and the like: validate.array says what is wrong
                pass
        if isinstance(X, np.ndarray) and X.dtype.kind in "iu" and X.ndim == ndim - 1:
            return validate.codes(name, X, n_classes=self.n_in, expect=f"of rank {ndim - 1}")
        shape = "(T, B, I) time-major inputs" if ndim == 3 else "(B, I) one step of input"
        X = validate.array(name, X, ndim=ndim, dtype=self.dtype,
                           expect=f"{shape} (or integer class codes {shape[:shape.index(', I)')] + ')'})")
        validate.sizes(name, X, {ndim - 1: (self.n_in, "n_in (I)")})
        return X

    def _inputs(self, X, D=None, loss="squared"):
        X = self._x(X)
        T, B = X.shape[:2]
        if T < 1 or B < 1:
            raise InputError(f"X: got shape {X.shape}, expected at least one step and one stream")
        if D is None:
            return X, None
        losses.check_pair(loss, self.g2)
        if loss == "cross_entropy":
            D = validate.classes("D", D, T, B, self.n_out)
        else:
            D = validate.array("D", D, ndim=3, dtype=self.dtype, expect=f"({T}, {B}, {self.n_out}) = (T, B, O) targets")
            validate.sizes("D", D, {0: (T, "T of X"), 1: (B, "B of X"), 2: (self.n_out, "n_out (O)")})
        return X, D

    def initial_state(self, B: int):
        """Zeros in the user-facing form: (B, H), or (L*D, B, H) for several layers/directions;
        a (h, c) pair of those for LSTM."""
        shape = (B, self.n_hidden) if self.layers * self.directions == 1 else \
            (self.layers * self.directions, B, self.n_hidden)
        z = [np.zeros(shape, self.dtype) for _ in range(self.cell.n_carry)]
        return z[0] if self.cell.n_carry == 1 else tuple(z)

    def _carry0(self, s0, B):
        """User-facing s0 -> carry[l][d] = tuple of (B, H)."""
        if s0 is None:  # zeros: nothing to validate
            return [[tuple(np.zeros((B, self.n_hidden), self.dtype) for _ in range(self.cell.n_carry))
                     for _ in range(self.directions)] for _ in range(self.layers)]
        parts = (s0,) if self.cell.n_carry == 1 else s0
        if self.cell.n_carry > 1 and (not isinstance(s0, (tuple, list)) or len(s0) != self.cell.n_carry):
            raise InputError(f"s0: expected a tuple of {self.cell.n_carry} arrays (h0, c0) for the {self.cell_name} cell")
        LD = self.layers * self.directions
        want = (B, self.n_hidden) if LD == 1 else (LD, B, self.n_hidden)
        arrs = []
        for k, a in enumerate(parts):
            nm = "s0" if len(parts) == 1 else f"s0[{k}]"
            a = validate.array(nm, a, ndim=len(want), dtype=self.dtype, expect=f"of shape {want}")
            validate.sizes(nm, a, {i: (n, w) for i, (n, w) in enumerate(zip(want, ("L*D", "B", "H")[-len(want):]))})
            arrs.append(a.reshape(LD, B, self.n_hidden))
        return [[tuple(a[l * self.directions + d] for a in arrs) for d in range(self.directions)]
                for l in range(self.layers)]

    def _state_out(self, carries, B):
        """carry[l][d] tuples -> user-facing form (inverse of _carry0)."""
        flat = [c for dirs in carries for c in dirs]
        parts = []
        for k in range(self.cell.n_carry):
            parts.append(flat[0][k].copy() if len(flat) == 1 else np.stack([c[k] for c in flat]))
        return parts[0] if self.cell.n_carry == 1 else tuple(parts)

    def _masks(self, T, B, lengths, resets):
        lens = validate.lengths(lengths, T, B)
        mask = None if lens is None else np.arange(T)[:, None] < lens[None, :]
        res = validate.resets(resets, T, B)
        if res is not None and self.bidirectional:
            raise InputError("resets: stream resets need a causal (unidirectional) net; got bidirectional=True")
        return lens, mask, res

    # ---- forward -------------------------------------------------------------------------------
    def _run(self, X, s0, mask, res):
        trace = loop.stack_forward(self.cell, self.views(), X, self._carry0(s0, X.shape[1]), mask, res)
        S = trace.outputs[-1]
        T, B, _ = S.shape
        Z = (S.reshape(T * B, -1) @ self.params["Wy"].T).reshape(T, B, -1) + self.params["by"]
        return trace, Z

    def _outputs(self, X, s0, lengths, resets, backend):
        """The forward pass: (S (T, B, D*H) of the top layer, final carries carry[l][d], Z (T, B, O)). The
        compiled loops run it where ``gradients`` would run them (``backend``, see ``bptt.fast``)."""
        T, B = X.shape[:2]
        _, mask, res = self._masks(T, B, lengths, resets)
        done = None
        if backend != "numpy":
            from . import fast  # lazily, as in gradients

            done = fast.forward(self, X, s0, lengths, resets, backend)
        if done is None:
            trace, Z = self._run(X, s0, mask, res)
            return trace.outputs[-1], trace.final, Z
        S, final = done
        Z = (S.reshape(T * B, -1) @ self.params["Wy"].T).reshape(T, B, -1) + self.params["by"]
        return S, [[final]], Z

    def forward(self, X, s0=None, lengths=None, resets=None, *, backend="auto") -> Forward:
        """Run the net. X (T, B, I) -> Forward(Y (T, B, O), S (T, B, D*H), final state). ``backend`` as in
        ``gradients``: 'auto' (the compiled loops where they apply), 'numpy' or 'numba'."""
        X, _ = self._inputs(X)
        S, final, Z = self._outputs(X, s0, lengths, resets, backend)
        return Forward(self.g2.forward(Z), S, self._state_out(final, X.shape[1]))

    def step(self, x, state=None):
        """One step for generation: x (B, I), state as s0 -> (y (B, O), new state). Same cell code as
        ``forward``; only causal nets can step."""
        if self.bidirectional:
            raise InputError("step: a bidirectional net needs the whole sequence; use forward()")
        x = self._x(x, "x", ndim=2)
        Y, _, new = self.forward(x[None], s0=state)
        return Y[0], new

    # ---- gradients -----------------------------------------------------------------------------
    def _backward(self, X, D, loss, at, truncate, s0, lengths, resets, carries=True):
        X, D = self._inputs(X, D, loss)
        T, B = X.shape[:2]
        lens, mask, res = self._masks(T, B, lengths, resets)
        lmask = validate.loss_mask(at, T, B, lens, self.dtype)
        truncate = validate.integer("truncate", truncate, low=1, allow_none=True)
        if truncate is not None and self.bidirectional:
            raise InputError("truncate: truncated BPTT needs a causal (unidirectional) net; "
                             f"got truncate={truncate} with bidirectional=True. Use truncate=None.")
        trace, Z = self._run(X, s0, mask, res)
        E, Y, dZ = losses.output_loss(loss, self.g2, Z, D, lmask)
        Wy = self.params["Wy"]
        loss_steps = np.flatnonzero(lmask.any(axis=1))
        if truncate is None or truncate > loss_steps.max():
            # every term reaches step 0: full BPTT, one window, the loss injected at every loss step
            windows = [(0, T - 1, products.matmul(dZ.reshape(T * B, -1), Wy).reshape(T, B, -1))]
        else:
            # one window per loss term E_t: S_t ... S_{t-k+1}, the state before it a constant
            windows = []
            for t in loss_steps:
                lo = max(0, t - truncate + 1)
                dtop = np.zeros((t - lo + 1, B, Wy.shape[1]), self.dtype)
                dtop[-1] = dZ[t] @ Wy
                windows.append((lo, t, dtop))
        accs = loop.stack_backward(self.cell, self.views(), trace, windows, mask, res, carries)
        return E, trace, dZ, accs, B

    def _cell_grads(self, reduce, trace, accs) -> Gradients:
        """Every layer's and direction's cell parameters from the accumulated pre-activation gradients;
        ``reduce`` is ``cell.weight_grads`` (sums: single GEMMs) or ``cell.weight_terms`` (per-step rows)."""
        g = Gradients()
        for l, dirs in enumerate(accs):
            for d, acc in enumerate(dirs):
                hprev = loop.hidden_prev(trace.traces[l][d])
                n_in = self.n_in if l == 0 else self.directions * self.n_hidden
                for name, val in reduce(trace.inputs[l], hprev, acc.dGX, acc.dGH, n_in).items():
                    g[name + self.suffix(l, d)] = val
        return g

    def gradients(self, X, D, loss="squared", at=None, truncate=None, s0=None, lengths=None, resets=None,
                  *, backend="auto", max_states=None, bound="soft"):
        """E and dE/d(every parameter and s0) by exact (or truncated) BPTT.

        X (T, B, I); D (T, B, O) floats for 'squared' or (T, B) ints for 'cross_entropy';
        at: None (loss at every step), an int (one step, negative from the end) or a list of steps;
        truncate: None or k >= 1, each E_t back-propagates through S_t ... S_{t-k+1};
        s0: initial state (zeros by default); lengths (B,): steps past a length are padding;
        resets (T, B) bool: reset that stream's state to zeros before that step.
        backend: 'auto' (the default: the compiled loops when numba is installed and the case is covered,
        this loop otherwise; ``bptt.fast.backend_for`` says which), 'numpy' (this loop) or 'numba'
        (compiled loops: one layer, one direction, full BPTT; ``pip install "bptt[fast]"``); see ``bptt.fast``.
        max_states: None, or M >= 1 to keep at most M checkpointed states plus one segment of ceil(T/M)
        steps and recompute the rest (same gradients, less memory); see ``bptt.memory``.
        bound: with max_states, 'soft' (the above) or 'hard': at most M hidden states held in all, with
        recursive checkpointing (Gruslys et al. 2016's bound; more recomputation).
        X may also be (T, B) integer class codes standing for one-hot inputs (see ``bptt.codes``).
        Returns (E, Gradients) with the same names and shapes as ``params`` plus ``s0``.
        """
        if bound != "soft" and max_states is None:
            raise InputError(f"bound: got {bound!r} without max_states; the bound applies to memory-budgeted "
                             "BPTT: pass max_states=M too (or leave bound out)")
        if backend != "numpy" or max_states is not None:
            from . import fast  # lazily: numba is imported only when asked for

            done = fast.gradients(self, X, D, loss, at, truncate, s0, lengths, resets, backend, max_states,
                                  bound)
            if done is not None:
                return done
        E, trace, dZ, accs, B = self._backward(X, D, loss, at, truncate, s0, lengths, resets, carries=False)
        g = self._cell_grads(self.cell.weight_grads, trace, accs)
        S = trace.outputs[-1]
        T = S.shape[0]
        g["Wy"] = dZ.reshape(T * B, -1).T @ S.reshape(T * B, -1)
        g["by"] = dZ.sum(axis=(0, 1))
        g["s0"] = self._state_out([[tuple(a.ds0) for a in dirs] for dirs in accs], B)
        return E, g

    def gradient_terms(self, X, D, loss="squared", at=None, truncate=None, s0=None, lengths=None):
        """The seed's sum term by term.

        Returns a Gradients mapping: every parameter name -> (T, *shape), row i the contribution of
        step i (of the copy of that weight used at step i); rows add up to ``gradients``. Also
        ``dS`` (T, B, D*H): dE/dS_i of the top layer, and for LSTM ``dC`` likewise for the cell state.
        """
        E, trace, dZ, accs, B = self._backward(X, D, loss, at, truncate, s0, lengths, None)
        g = self._cell_grads(self.cell.weight_terms, trace, accs)
        S = trace.outputs[-1]
        g["Wy"] = np.einsum("tbo,tbh->toh", dZ, S)
        g["by"] = dZ.sum(axis=1)
        top = accs[-1]
        g["dS"] = np.concatenate([a.dcarry[0] for a in top], axis=-1) if len(top) > 1 else top[0].dcarry[0]
        if self.cell.n_carry > 1:
            g["dC"] = np.concatenate([a.dcarry[1] for a in top], axis=-1) if len(top) > 1 else top[0].dcarry[1]
        g["E"] = E
        return g

    def loss(self, X, D, loss="squared", at=None, s0=None, lengths=None, *, backend="auto"):
        """E alone (forward only); ``backend`` as in ``gradients``."""
        return self.forward_loss(X, D, loss, at, s0, lengths, backend=backend)[1]

    def forward_loss(self, X, D, loss="squared", at=None, s0=None, lengths=None, *, backend="auto"):
        """(Y (T, B, O), E) from one forward pass: ``forward(X).Y`` and ``loss(X, D, ...)`` together (held-out
        evaluation needs both)."""
        X, D = self._inputs(X, D, loss)
        T, B = X.shape[:2]
        lens = validate.lengths(lengths, T, B)
        _, _, Z = self._outputs(X, s0, lengths, None, backend)
        E, Y, _ = losses.output_loss(loss, self.g2, Z, D, validate.loss_mask(at, T, B, lens, self.dtype))
        return Y, E


class Elman(Network):
    """The seed's Elman RNN. ``Elman(n_in, n_hidden, n_out, g1="tanh", g2="identity", seed=0,
    init="uniform", dtype=numpy.float64, layers=1, bidirectional=False)``."""

    cell_name = "elman"

    def __init__(self, n_in, n_hidden, n_out, g1="tanh", g2="identity", seed=0, init="uniform",
                 dtype=np.float64, layers=1, bidirectional=False):
        super().__init__(n_in, n_hidden, n_out, g2=g2, layers=layers, bidirectional=bidirectional,
                         seed=seed, init=init, dtype=dtype, g1=g1)


class LSTM(Network):
    """LSTM layers (gates i, f, g, o; PyTorch's W_ih, W_hh, b_ih, b_hh) with the output layer on top.
    ``LSTM(n_in, n_hidden, n_out, g2="identity", seed=0, init="uniform", dtype=numpy.float64, layers=1,
    bidirectional=False, forget_bias=0.0)``; forget_bias is added to the f block of b_ih at init
    (0.0: PyTorch's init law; Jozefowicz et al. 2015 recommend 1.0, which ``bptt train --cell lstm`` uses unless
    --forget-bias says otherwise). The state is the pair (h, c)."""

    cell_name = "lstm"

    def __init__(self, n_in, n_hidden, n_out, g2="identity", seed=0, init="uniform", dtype=np.float64,
                 layers=1, bidirectional=False, forget_bias=0.0):
        super().__init__(n_in, n_hidden, n_out, g2=g2, layers=layers, bidirectional=bidirectional,
                         seed=seed, init=init, dtype=dtype, forget_bias=forget_bias)


class GRU(Network):
    """GRU layers (gates r, z, n; PyTorch's variant and layout) with the output layer on top.
    ``GRU(n_in, n_hidden, n_out, g2="identity", seed=0, init="uniform", dtype=numpy.float64, layers=1,
    bidirectional=False)``."""

    cell_name = "gru"

    def __init__(self, n_in, n_hidden, n_out, g2="identity", seed=0, init="uniform", dtype=np.float64,
                 layers=1, bidirectional=False):
        super().__init__(n_in, n_hidden, n_out, g2=g2, layers=layers, bidirectional=bidirectional,
                         seed=seed, init=init, dtype=dtype)
