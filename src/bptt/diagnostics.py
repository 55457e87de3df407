"""The gradient lab: how far back does BPTT's gradient reach?

The seed writes dE_N/dW as a sum over steps i = N, N-1, ..., 0 of terms that each pass through the
product of step Jacobians dS_N/dS_i = J_N J_{N-1} ... J_{i+1}, J_t = dS_t/dS_{t-1}. When those products
shrink geometrically, so do the terms, and the sum in practice only sees the last few steps. This
module measures that on any network (every cell, through the cell interface), NumPy only:

- :func:`gradient_by_lag`: ||dE_N/dS_{N-k}|| and each parameter's term against the lag k, the fitted
  geometric decay rate, the half-life and the *effective memory* (:class:`LagProfile`);
- :func:`jacobian_products`, :func:`step_jacobian_norms`: spectral norms of dS_N/dS_{N-k} and of J_t;
- :func:`recurrent_spectrum`: spectral radius and largest singular value of the recurrent matrix and the
  sufficient condition for vanishing of Pascanu, Mikolov & Bengio (2013), sections 2-3;
- :func:`omega`, :func:`add_omega`: the Pascanu et al. (2013) regulariser and its exact gradient;
- :func:`tracked_metrics`: the numbers the training loop records with ``--track-gradients``.

Reference: R. Pascanu, T. Mikolov, Y. Bengio, "On the difficulty of training recurrent neural
networks", ICML 2013 (arXiv:1211.5063).
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import numpy as np

from . import loop
from .errors import InputError
from .gradients import Gradients

# PyTorch's gate order for the gated cells: names of the (H, H) blocks of W_hh, top to bottom
GATE_NAMES = {"lstm": ("i", "f", "g", "o"), "gru": ("r", "z", "n")}


# ---- gradient against lag ----------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class LagProfile:
    """How the gradient of one loss term E_N spreads over the steps before N.

    Index k of every array is the lag k = N - i of step i (k = 0 is the loss step itself).

    lags (N+1,) int; grad_norm (N+1,): mean over the B streams of ||dE_{N,b}/dS_{N-k,b}||, E_{N,b} stream
    b's own loss term (so it does not shrink with B), S the top layer's hidden output (both directions
    concatenated for a bidirectional net); cell_norm (N+1,) the same for the LSTM cell state c, else None;
    term_norms: every recurrent-layer parameter name -> (N+1,) Frobenius norm of its term i = N - k of the
    seed's sum (the batch-mean gradient's row i of ``Network.gradient_terms``; Wy and by, whose only term
    is at k = 0, are left out).

    decay_rate: r of the least-squares line log grad_norm[k] ~ c + k log r, fitted over every lag whose norm
    is a positive normal float (``fit_lags`` = (first, last) such lag, ``fit_points`` how many); nan with
    fewer than two. ``fit_intercept`` is c. half_life = ln(1/2) / ln(r) steps: the gradient halves every
    half_life steps (negative: it doubles every |half_life| steps; inf: r = 1).

    effective_memory: the largest lag k with grad_norm[k] >= fraction * max(grad_norm), an integer;
    effective_memory_interp: where the log-linear interpolation between that lag and the next crosses
    fraction * max (for a geometric profile c r^k with maximum at k = 0 it is exactly ln(f)/ln(r), and
    effective_memory = floor(ln(f)/ln(r))). ``censored``: the threshold is still met at k = N, the start of
    the sequence, so the true memory may be longer than measured: use a longer sequence.
    """

    label: str
    at: int
    lags: np.ndarray
    grad_norm: np.ndarray
    cell_norm: np.ndarray | None
    term_norms: dict
    fraction: float
    decay_rate: float
    fit_intercept: float
    fit_lags: tuple
    fit_points: int
    half_life: float
    effective_memory: int
    effective_memory_interp: float
    censored: bool

    def fitted(self) -> np.ndarray:
        """(N+1,) the fitted geometric profile exp(c) r^k (for plots)."""
        return np.exp(self.fit_intercept + self.lags * math.log(self.decay_rate)) \
            if self.decay_rate > 0 else np.full(self.lags.shape, np.nan)

    def to_rows(self) -> list[dict]:
        """One dict per lag, for ``csv.DictWriter``: lag, grad_norm_dS, [grad_norm_dC], term_<name>..."""
        rows = []
        for k in range(len(self.lags)):
            r = {"lag": int(self.lags[k]), "grad_norm_dS": float(self.grad_norm[k])}
            if self.cell_norm is not None:
                r["grad_norm_dC"] = float(self.cell_norm[k])
            for name, v in self.term_norms.items():
                r[f"term_{name}"] = float(v[k])
            rows.append(r)
        return rows


def _loss_step(at, T: int) -> int:
    """One loss step N from ``at`` (an int, negative from the end)."""
    if isinstance(at, (bool, np.bool_)) or not isinstance(at, numbers.Integral):
        raise InputError(f"at: got {at!r}, expected one integer step (e.g. -1 for the last step): the "
                         "profile follows a single loss term E_N back in time")
    if not -T <= at < T:
        raise InputError(f"at: step {at} is outside the sequence; expected -{T} <= at < {T} (T = {T})")
    return int(at) % T


def _fraction(fraction) -> float:
    if isinstance(fraction, bool) or not isinstance(fraction, numbers.Real) or not 0 < fraction < 1:
        raise InputError(f"fraction: got {fraction!r}, expected a number strictly between 0 and 1 (e.g. 0.01)")
    return float(fraction)


def fit_decay(norms) -> tuple[float, float, tuple, int]:
    """Least-squares fit of log norms[k] = c + k log r over the lags whose norm is a positive normal float.

    norms (K,) -> (r, c, (first lag, last lag) used, number of lags used); r = c = nan below two lags.
    """
    norms = np.asarray(norms, dtype=np.float64)
    k = np.flatnonzero(np.isfinite(norms) & (norms >= np.finfo(np.float64).tiny))
    if k.size < 2:
        return math.nan, math.nan, (None, None), int(k.size)
    slope, intercept = np.polyfit(k.astype(np.float64), np.log(norms[k]), 1)
    return float(math.exp(slope)), float(intercept), (int(k[0]), int(k[-1])), int(k.size)


def half_life(rate: float) -> float:
    """ln(1/2) / ln(rate) in steps; inf for rate 1, nan for rate nan or <= 0."""
    if not rate > 0:
        return math.nan
    if rate == 1.0:
        return math.inf
    return math.log(0.5) / math.log(rate)


def effective_memory(norms, fraction: float = 1e-2) -> tuple[int, float, bool]:
    """(largest lag with norms >= fraction * max, its log-linear interpolated crossing, censored)."""
    norms = np.asarray(norms, dtype=np.float64)
    top = norms.max()
    if not top > 0:
        return 0, 0.0, False
    level = fraction * top
    m = int(np.flatnonzero(norms >= level)[-1])
    if m == len(norms) - 1:
        return m, float(m), True
    lo, hi = norms[m], norms[m + 1]
    if not hi > 0:
        return m, float(m), False
    return m, m + (math.log(level) - math.log(lo)) / (math.log(hi) - math.log(lo)), False


def gradient_by_lag(net, X, D, loss="squared", at=-1, fraction=1e-2, s0=None, label="") -> LagProfile:
    """Profile the gradient of the single loss term E_N (N = ``at``) against the lag N - i.

    net: a ``bptt.Network``; X (T, B, I); D (T, B, O) floats for 'squared' or (T, B) ints for
    'cross_entropy'; at: int, the loss step N (negative counts from the end); fraction in (0, 1): the
    effective memory's threshold relative to the largest term; s0: initial state as for ``gradients``.
    Uses ``net.gradient_terms`` (full BPTT). See :class:`LagProfile` for every field.
    """
    fraction = _fraction(fraction)
    X = np.asarray(X)
    if X.ndim != 3:
        raise InputError(f"X: got shape {X.shape}, expected (T, B, I) time-major inputs")
    N = _loss_step(at, X.shape[0])
    g = net.gradient_terms(X, D, loss=loss, at=N, s0=s0)
    B = X.shape[1]
    back = slice(N, None, -1)  # steps N, N-1, ..., 0: lag 0, 1, ..., N

    def stream_norm(dS):  # (T, B, H) of the batch-mean loss -> (N+1,) mean_b ||dE_{N,b}/dS_{i,b}||
        return B * np.linalg.norm(dS[back].astype(np.float64), axis=-1).mean(axis=1)

    grad = stream_norm(g["dS"])
    cell = stream_norm(g["dC"]) if "dC" in g else None
    terms = {name: np.linalg.norm(v[back].reshape(N + 1, -1).astype(np.float64), axis=1)
             for name, v in g.items() if name not in ("Wy", "by", "dS", "dC", "E")}
    rate, c, rng, npts = fit_decay(grad)
    mem, mem_i, cens = effective_memory(grad, fraction)
    return LagProfile(label, N, np.arange(N + 1), grad, cell, terms, fraction, rate, c, rng, npts,
                      half_life(rate), mem, mem_i, cens)


# ---- step Jacobians ------------------------------------------------------------------------------
def _top_trace(net, X, s0):
    """Forward pass of the whole stack; returns (cell params, LayerTrace) of the top layer's forward
    direction: its own recurrence S_t = f(S_{t-1}, input_t)."""
    X, _ = net._inputs(X)
    views = net.views()
    trace = loop.stack_forward(net.cell, views, X, net._carry0(s0, X.shape[1]))
    return views[-1][0], trace.traces[-1][0]


def _spectral(P) -> np.ndarray:
    """(B, n, n) -> (B,) largest singular values: sqrt of the top eigenvalue of P P^T (symmetric eigenvalues
    are about twice as fast as an SVD; the top one is relatively accurate to rounding)."""
    return np.sqrt(np.maximum(np.linalg.eigvalsh(P @ P.transpose(0, 2, 1))[:, -1], 0.0))


def step_jacobian_norms(net, X, s0=None) -> np.ndarray:
    """(T,) mean over streams of ||J_t||_2, J_t = d carry_t / d carry_{t-1} (B, n_carry*H, n_carry*H) from
    the cell's ``jacobian`` (Elman: diag(g1'(z_t)) Ws; LSTM: the (h, c) pair). Top layer, forward
    direction for deep or bidirectional nets. X (T, B, I)."""
    p, tr = _top_trace(net, X, s0)
    return np.array([_spectral(net.cell.jacobian(p, tr.caches[t], tr.prev[t]).astype(np.float64)).mean()
                     for t in range(len(tr.caches))])


def jacobian_products(net, X, s0=None, at=-1) -> np.ndarray:
    """(N+1,) entry k: mean over the B streams of ||dS_N/dS_{N-k}||_2 = ||J_N J_{N-1} ... J_{N-k+1}||_2
    (entry 0 is ||I|| = 1), N = ``at`` (default the last step, so (T,)).

    Every cell works through its ``jacobian(p, cache, carry)``; the carry is the cell's whole state
    ((S,) for Elman and GRU, (h, c) for LSTM). For a deep net this is the top layer's own recurrence
    (the path through the layers below is not included); for a bidirectional net its forward direction.
    The running product is rescaled every step and its scale kept in logs, so long products neither
    underflow nor overflow before the final norm (a norm beyond float range is reported as 0 or inf).
    Cost: one (n, n) product and symmetric eigenproblem per lag and stream, n = n_carry * H.
    """
    X = np.asarray(X)
    if X.ndim != 3:
        raise InputError(f"X: got shape {X.shape}, expected (T, B, I) time-major inputs")
    N = _loss_step(at, X.shape[0])
    p, tr = _top_trace(net, X, s0)
    J = net.cell.jacobian(p, tr.caches[N], tr.prev[N]).astype(np.float64)
    B, n, _ = J.shape
    P = np.broadcast_to(np.eye(n), (B, n, n)).copy()  # dS_N/dS_N
    logscale = np.zeros(B)  # the true product is exp(logscale) * P
    out = np.empty(N + 1)
    out[0] = 1.0
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        for k in range(1, N + 1):
            t = N - k + 1
            P = P @ net.cell.jacobian(p, tr.caches[t], tr.prev[t]).astype(np.float64)  # dS_N/dS_{t-1}
            s = _spectral(P)
            out[k] = float(np.mean(np.exp(logscale + np.log(s))))
            P /= np.where(s > 0, s, 1.0)[:, None, None]
            logscale += np.log(s)
    return out


def recurrent_spectrum(net, layer: int = -1) -> dict:
    """The recurrent matrix of one layer (forward direction) and Pascanu et al. (2013)'s condition.

    Elman: W = Ws (H, H); spectral_radius = max |eigenvalue|, max_singular_value = ||Ws||_2,
    gamma = sup |g1'| (1 for tanh, relu, identity; 1/4 for sigmoid), vanishing_bound = 1/gamma, and
    vanishing_guaranteed = ||Ws||_2 < 1/gamma: then every ||J_t|| <= ||diag(g1')|| ||Ws|| < 1 and the terms
    vanish geometrically (sufficient, section 3.1; ||Ws||_2 > 1/gamma is necessary for exploding).

    Gated cells (LSTM, GRU): their Jacobian is not diag(.) W_hh, so the bound is Elman-only: gamma,
    vanishing_bound and vanishing_guaranteed are None, ``blocks`` lists each (H, H) gate block of W_hh
    with its spectral radius and largest singular value, and spectral_radius / max_singular_value are the
    largest over the blocks. ``matrix`` names the parameter, ``note`` says which case applies.
    """
    L = net.layers
    if isinstance(layer, bool) or not isinstance(layer, numbers.Integral) or not -L <= layer < L:
        raise InputError(f"layer: got {layer!r}, expected an integer in [{-L}, {L - 1}] (the net has {L} layers)")
    layer = int(layer) % L
    name = net.cell.w_rec + net.suffix(layer, 0)
    W = np.asarray(net.params[name], dtype=np.float64)
    H = net.n_hidden

    def spec(M):
        return float(np.max(np.abs(np.linalg.eigvals(M)))), float(np.linalg.norm(M, 2))

    if net.cell.gates == 1 and hasattr(net.cell, "g1"):
        rho, sv = spec(W)
        gamma = float(net.cell.g1.bound)
        return {"matrix": name, "spectral_radius": rho, "max_singular_value": sv, "gamma": gamma,
                "vanishing_bound": 1.0 / gamma, "vanishing_guaranteed": bool(sv < 1.0 / gamma), "blocks": None,
                "note": "Elman: dS_t/dS_{t-1} = diag(g1'(z_t)) Ws, Pascanu et al. 2013 sections 2-3"}
    names = GATE_NAMES.get(net.cell.name, tuple(str(g) for g in range(net.cell.gates)))
    blocks = []
    for gname, gi in zip(names, range(net.cell.gates)):
        rho, sv = spec(W[gi * H : (gi + 1) * H])
        blocks.append({"gate": gname, "spectral_radius": rho, "max_singular_value": sv})
    return {"matrix": name, "spectral_radius": max(b["spectral_radius"] for b in blocks),
            "max_singular_value": max(b["max_singular_value"] for b in blocks), "gamma": None,
            "vanishing_bound": None, "vanishing_guaranteed": None, "blocks": blocks,
            "note": f"{net.cell.name}: gate blocks of {net.cell.w_rec}; the 1/gamma bound is for Elman only "
                    "(use jacobian_products for this cell's real Jacobians)"}


# ---- the Pascanu et al. (2013) regulariser ---------------------------------------------------------
def _second_derivative(g1, S):
    """g1''(z) from S = g1(z), elementwise (B, H)."""
    if g1.name == "tanh":
        return -2.0 * S * (1.0 - S * S)
    if g1.name == "sigmoid":
        return S * (1.0 - S) * (1.0 - 2.0 * S)
    if g1.name in ("relu", "identity"):
        return np.zeros_like(S)  # relu: 0 wherever it is differentiable
    raise InputError(f"g1: omega has no second derivative for {g1.name!r}")


def omega(net, X, D, loss="squared", at=None, s0=None, through_states=True):
    """Pascanu, Mikolov & Bengio (2013), eq. 9, for the Elman cell, and its gradient (eq. 10).

        Omega = (1/B) sum_b sum_{t=1}^{T-1} ( ||v_t J_t|| / ||v_t|| - 1 )^2,
        v_t = dE/dS_t (stream b's row),  J_t = dS_t/dS_{t-1} = diag(g1'(z_t)) Ws,  z_t = Wx X_t + Ws S_{t-1} + bs

    i.e. the paper's sum over k of Omega_k with k + 1 = t (the transitions between the sequence's own
    states; the one from s0 is left out), averaged over the streams like E. Terms with v_t = 0 (steps after
    the last loss step) have no direction to preserve and are skipped. v_t comes from full BPTT of E (the
    same ``loss`` and ``at`` as ``Network.gradients``) and, as in the paper (section 3.3), is treated as a
    constant when differentiating.

    through_states=True (default): the exact gradient of that Omega with v held fixed: through the explicit
    Ws in J_t and through g1'(z_t), which depends on Wx, Ws, bs directly and through every earlier state
    (a second backward pass over time; uses g1'' for tanh/sigmoid, 0 for relu/identity).
    through_states=False: the paper's immediate derivative d+ (eq. 10), z_t also held fixed: only Ws, via
    the explicit Ws in J_t; Wx and bs get zeros.

    net: single-layer unidirectional Elman; X (T, B, I); D as for ``gradients``; s0 (B, H) or None.
    Returns (Omega: float, Gradients {Wx, Ws, bs}).
    """
    if net.cell.name != "elman" or net.layers != 1 or net.bidirectional:
        raise InputError(f"omega: needs a single-layer unidirectional Elman net (Pascanu et al.'s J = diag(g1') Ws); "
                         f"got cell={net.cell.name!r}, layers={net.layers}, bidirectional={net.bidirectional}")
    if not isinstance(through_states, bool):
        raise InputError(f"through_states: got {through_states!r}, expected True or False")
    _, trace, _, accs, B = net._backward(X, D, loss, at, None, s0, None, None)
    V = accs[0][0].dcarry[0]  # (T, B, H) dE/dS_t, a constant from here on
    S = trace.outputs[0]  # (T, B, H) S_t
    Sprev = loop.hidden_prev(trace.traces[0][0])  # (T, B, H) S_{t-1}
    Xin = trace.inputs[0]  # (T, B, I)
    Ws = net.params["Ws"]
    g1 = net.cell.g1
    T = S.shape[0]
    total = 0.0
    dWs = np.zeros_like(Ws)
    C = np.zeros_like(S)  # (T, B, H) dOmega/dz_t through g1'(z_t) directly
    for t in range(1, T):
        a = g1.grad_from_output(S[t])  # (B, H) g1'(z_t)
        w = V[t] * a  # (B, H)
        u = w @ Ws  # (B, H) v_t J_t
        nv = np.linalg.norm(V[t], axis=1)  # (B,)
        nu = np.linalg.norm(u, axis=1)
        live = nv > 0
        if not live.any():
            continue
        r = np.where(live, nu / np.where(live, nv, 1.0), 1.0)
        total += float(np.sum((r - 1.0) ** 2))
        # dOmega/du = 2 (r - 1) / ||v|| * u / ||u|| (0 where u = 0: the subgradient), / B for the mean
        coef = np.where(live & (nu > 0), 2.0 * (r - 1.0) / (np.where(live, nv, 1.0) * np.where(nu > 0, nu, 1.0)), 0.0)
        gu = (coef / B)[:, None] * u  # (B, H)
        dWs += w.T @ gu  # u_j = sum_i w_i Ws[i, j]
        if through_states:
            C[t] = (gu @ Ws.T) * V[t] * _second_derivative(g1, S[t])  # via a = g1'(z_t)
    grads = Gradients(Wx=np.zeros_like(net.params["Wx"]), Ws=dWs, bs=np.zeros_like(net.params["bs"]))
    if through_states:
        # dOmega/dz_t = C_t + (dOmega/dz_{t+1} Ws) * g1'(z_t), backward over time like the seed's BPTT
        dZ = np.empty_like(S)
        carry = np.zeros_like(S[0])  # dOmega/dS_t through z_{t+1}
        for t in range(T - 1, -1, -1):
            dZ[t] = C[t] + carry * g1.grad_from_output(S[t])
            carry = dZ[t] @ Ws
        Tb = T * B
        grads["Ws"] = dWs + dZ.reshape(Tb, -1).T @ Sprev.reshape(Tb, -1)
        grads["Wx"] = dZ.reshape(Tb, -1).T @ Xin.reshape(Tb, -1)
        grads["bs"] = dZ.sum(axis=(0, 1))
    return total / B, grads


def add_omega(grads, omega_grads, lam) -> Gradients:
    """grads + lam * omega_grads, name by name (names missing from omega_grads unchanged): the gradient
    of E + lam * Omega for ``--omega LAMBDA``. Returns a new Gradients; the inputs are not modified."""
    if isinstance(lam, bool) or not isinstance(lam, numbers.Real) or not (math.isfinite(lam) and lam >= 0):
        raise InputError(f"lam: got {lam!r}, expected a finite number >= 0 (the weight of Omega)")
    extra = set(omega_grads) - set(grads)
    if extra:
        raise InputError(f"omega_grads: names {sorted(extra)} are not in grads ({sorted(grads)}); "
                         "pass the gradients of the same network")
    out = Gradients(grads)
    for name, g in omega_grads.items():
        out[name] = grads[name] + lam * g
    return out


# ---- for training --------------------------------------------------------------------------------
def tracked_metrics(net, X, D, loss="squared", at=-1, fraction=1e-2, s0=None) -> dict:
    """What ``bptt train --track-gradients`` records, from one batch.

    X (T, B, I), D as for ``gradients``; at: the loss step whose gradient is followed back; None or a list
    (a loss at several steps) means the last step T-1. Returns {effective_memory (int, lags),
    decay_rate (per step), half_life (steps), spectral_radius, max_singular (of Elman's Ws, or the largest
    over the gate blocks of W_hh for gated cells; top layer)}.
    """
    if at is None or isinstance(at, (list, tuple, np.ndarray)):
        at = -1
    prof = gradient_by_lag(net, X, D, loss=loss, at=at, fraction=fraction, s0=s0)
    spec = recurrent_spectrum(net)
    return {"effective_memory": prof.effective_memory, "decay_rate": prof.decay_rate,
            "half_life": prof.half_life, "spectral_radius": spec["spectral_radius"],
            "max_singular": spec["max_singular_value"]}


__all__ = ["LagProfile", "gradient_by_lag", "fit_decay", "half_life", "effective_memory", "jacobian_products",
           "step_jacobian_norms", "recurrent_spectrum", "omega", "add_omega", "tracked_metrics"]
