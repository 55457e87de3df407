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


# ---- the estimator table of ``bptt diagnose --estimators`` -----------------------------------------------
COLUMNS = ["estimator", "length", "draws", "cosine", "cosine_of_mean", "rel_error", "rel_error_of_mean",
           "rel_variance", "seconds_per_step"]


def parse_estimators(text: str, seed: int = 0) -> list:
    """'rtrl,uoro,tbptt:10' -> [(label, stochastic, fn)] (see :func:`estimator`), repeats dropped."""
    items = [s.strip() for s in str(text).split(",")]
    if not all(items):
        raise InputError(f"--estimators: got {text!r}, expected comma-separated names (e.g. rtrl,uoro,kf-rtrl,"
                         "snap1,snap2,tbptt:10,artbp)")
    return [estimator(s, seed) for s in dict.fromkeys(items)]


def estimator_rows(net, estimators, data, lengths, draws: int = 20, log=None) -> list[dict]:
    """For every length T and estimator: its quality against exact BPTT (:func:`quality`) on
    ``data(T) -> (X, D, loss, at)``, with ``draws`` draws for the stochastic ones, and its wall time per
    sequence step (one estimate). Returns the rows (dicts with COLUMNS)."""
    from ..experiment import _one_blas_thread  # small nets: one BLAS thread (many fight over few cores)

    draws = validate.integer("--draws", draws, low=2)
    rows = []
    with _one_blas_thread():
        _estimator_rows(net, estimators, data, lengths, draws, log, rows)
    return rows


def _estimator_rows(net, estimators, data, lengths, draws, log, rows):
    import time

    for T in lengths:
        X, D, loss, at = data(T)
        g = exact(net, X, D, loss, at)
        for label, stochastic, fn in estimators:
            t0 = time.perf_counter()
            G = fn(net, X, D, loss, at, draws if stochastic else 1)
            sec = (time.perf_counter() - t0) / (len(G) * X.shape[0])
            q = quality(G, g)
            rows.append({"estimator": label, "length": int(X.shape[0]), "draws": len(G), **q,
                         "seconds_per_step": sec})
            if log:
                log(f"T={X.shape[0]} {label}: cosine {q['cosine']:.3f}, relative error {q['rel_error']:.3g}")


def estimator_summary(rows) -> list[str]:
    """One line per estimator: its cosine (single draw) and relative error at each length."""
    out = []
    for label in dict.fromkeys(r["estimator"] for r in rows):
        rs = [r for r in rows if r["estimator"] == label]
        Ts = "/".join(str(r["length"]) for r in rs)
        cos = "/".join(f"{r['cosine']:.3f}" for r in rs)
        err = "/".join(f"{r['rel_error']:.3g}" for r in rs)
        line = f"{label}: cosine with exact BPTT {cos}, relative error {err} at T = {Ts}"
        if rs[0]["draws"] > 1:
            mean = "/".join(f"{r['cosine_of_mean']:.3f}" for r in rs)
            line += f"; mean of {rs[0]['draws']} draws: cosine {mean}"
        out.append(line)
    return out


def write_csv(path, rows, columns=COLUMNS) -> None:
    import csv
    import io as _io

    from ..io import atomic_write_bytes

    buf = _io.StringIO()
    w = csv.DictWriter(buf, columns, lineterminator="\n")
    w.writeheader()
    w.writerows({k: (f"{v:.9g}" if isinstance(v, float) else v) for k, v in r.items() if k in columns} for r in rows)
    atomic_write_bytes(path, buf.getvalue().encode(), what="estimator table")


def write_png(path, rows, title="") -> bool:
    """Cosine, relative error and relative variance against the sequence length, one line per estimator.
    False without matplotlib."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        return False
    from ..io import atomic_path

    fig = Figure(figsize=(12, 3.8))
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 3)
    import matplotlib

    colors = matplotlib.colormaps["tab10"]
    for n, label in enumerate(dict.fromkeys(r["estimator"] for r in rows)):
        rs = [r for r in rows if r["estimator"] == label]
        T = [r["length"] for r in rs]
        kw = {"label": label, "ms": 4, "color": colors(n % 10)}
        axes[0].plot(T, [r["cosine"] for r in rs], "o-", **kw)
        axes[1].plot(T, [max(r["rel_error"], 1e-16) for r in rs], "o-", **kw)  # exact: at the 1e-16 floor
        if rs[0]["draws"] > 1:
            axes[2].plot(T, [r["rel_variance"] for r in rs], "o-", **kw)
    for ax, name in zip(axes, ("cosine with exact BPTT (one draw)", "relative error |g~ - g| / |g| (rms; floor 1e-16)",
                               "total variance / |g|^2 (stochastic)")):
        ax.set_xscale("log")
        ax.set_xlabel("sequence length T")
        ax.set_title(name, fontsize=9)
        ax.grid(True, alpha=0.3)
    axes[1].set_yscale("log")
    axes[2].set_yscale("log")
    axes[0].legend(fontsize=8)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    with atomic_path(path, what="plot") as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    return True
