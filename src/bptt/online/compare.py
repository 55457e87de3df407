"""Online estimators next to exact BPTT: whole-sequence estimates, their draws, and how good they are.

- :func:`sequence_gradient`: run an online algorithm over a sequence with frozen weights and sum its
  per-step estimates (RTRL: exactly ``net.gradients`` without ``s0``);
- :func:`draws`: R independent whole-sequence estimates of a stochastic algorithm, (R, P) flattened in
  ``net.params`` order (UORO, KF-RTRL: the batch tiled R times, one draw per copy; ARTBP: R runs);
- :func:`estimator`: any name of ``bptt diagnose --estimators`` (the online ones, ``tbptt:K`` = per-term
  truncated BPTT, ``bptt`` = exact) -> a function (net, X, D, loss, at, draws, rng) -> (R, P);
- :func:`quality`: cosine with the exact gradient, relative error, variance over draws.
"""

from __future__ import annotations

import numpy as np

from .. import validate
from ..errors import InputError
from ..gradients import Gradients
from . import make
from .artbp import ARTBP


def flat(net, g) -> np.ndarray:
    """Gradients -> (P,) or (R, P) in ``net.params`` order (``s0`` left out)."""
    parts = []
    for k, v in net.params.items():
        a = np.asarray(g[k])
        parts.append(a.reshape(a.shape[: a.ndim - v.ndim] + (-1,)))
    return np.concatenate(parts, axis=-1)


def sequence_gradient(alg, net, X, D, loss="squared", at=None, per_stream=False):
    """(E, Gradients): the sum over t of ``alg.step``'s estimates over X (T, B, I), the weights frozen.
    ``at`` as for ``net.gradients`` (loss steps); ``per_stream``: one estimate per stream (leading B axis)."""
    X, D = net._inputs(X, D, loss)
    T, B, _ = X.shape
    lmask = validate.loss_mask(at, T, B, None, net.dtype)
    state = alg.init(net, B)
    total, E = None, 0.0
    for t in range(T):
        has = lmask[t].any()
        e, g, state = alg.step(net, state, X[t], D[t] if has else None, loss=loss, weight=lmask[t] if has else None,
                               last=t == T - 1, per_stream=per_stream)
        E += e
        total = g if total is None else Gradients({k: total[k] + g[k] for k in g})
    return E, total


def draws(alg, net, X, D, loss="squared", at=None, n: int = 1) -> np.ndarray:
    """(n, P): n independent whole-sequence estimates (each over all B sequences of X, as ``net.gradients``)."""
    n = validate.integer("draws", n, low=1)
    X, D = net._inputs(X, D, loss)
    T, B, _ = X.shape
    if isinstance(alg, ARTBP):  # truncations are shared by a batch: one run per draw
        return np.stack([flat(net, sequence_gradient(alg, net, X, D, loss, at)[1]) for _ in range(n)])
    Xr = np.tile(X, (1, n, 1))
    Dr = np.tile(D, (1, n) + (1,) * (D.ndim - 2))
    _, g = sequence_gradient(alg, net, Xr, Dr, loss, at, per_stream=True)
    G = flat(net, g)  # (n*B, P): the loss was scaled by 1/(n*B); each draw's own mean is over its B streams
    return n * G.reshape(n, B, -1).sum(axis=1)


def exact(net, X, D, loss="squared", at=None) -> np.ndarray:
    """(P,) full BPTT, ``net.gradients`` flattened."""
    return flat(net, net.gradients(X, D, loss=loss, at=at)[1])


def estimator(spec: str, seed: int = 0):
    """A name of ``--estimators`` -> (label, stochastic, fn(net, X, D, loss, at, n) -> (n or 1, P))."""
    s = spec.strip().lower()
    if s == "bptt":
        return "bptt", False, lambda net, X, D, loss, at, n: exact(net, X, D, loss, at)[None]
    if s.startswith("tbptt:"):
        try:
            k = int(s[6:])
        except ValueError:
            k = 0
        if k < 1:
            raise InputError(f"--estimators: got {spec!r}, expected tbptt:K with K >= 1 (e.g. tbptt:10)")
        return s, False, lambda net, X, D, loss, at, n: flat(net, net.gradients(X, D, loss=loss, at=at,
                                                                             truncate=k)[1])[None]
    try:
        alg = make(s, rng=np.random.default_rng([seed, 13]))
    except InputError as e:
        raise InputError(f"--estimators: {e} (or tbptt:K, bptt)") from None
    if not alg.stochastic:
        return alg.label, False, lambda net, X, D, loss, at, n: flat(net, sequence_gradient(alg, net, X, D, loss,
                                                                                            at)[1])[None]
    return alg.label, True, lambda net, X, D, loss, at, n: draws(alg, net, X, D, loss, at, n)


def quality(G, g) -> dict:
    """G (R, P) estimates, g (P,) the exact gradient -> cosine of the mean estimate and mean cosine of a
    single draw with g, relative error of the mean |mean - g| / |g| and of a single draw (rms), and the
    total variance over draws relative to |g|^2 (0 for deterministic estimators)."""
    G = np.asarray(G, np.float64)
    g = np.asarray(g, np.float64)
    gn = np.linalg.norm(g)
    m = G.mean(axis=0)

    def cos(a):
        na = np.linalg.norm(a, axis=-1)
        return np.where(na * gn > 0, (a @ g) / np.maximum(na * gn, 1e-300), np.nan)

    var = float(G.var(axis=0, ddof=1).sum()) if len(G) > 1 else 0.0
    return {"cosine": float(cos(G).mean()), "cosine_of_mean": float(cos(m)),
            "rel_error": float(np.sqrt(((G - g) ** 2).sum(axis=1).mean()) / gn),
            "rel_error_of_mean": float(np.linalg.norm(m - g) / gn), "rel_variance": var / gn**2}
