"""The seed tutorial's missing pictures, drawn from :func:`bptt.explain.example.seed_example`.

- ``unrolled``: the Elman net unrolled over N steps (X_t, S_t, Y_t, E_N; Wx, Ws, Wy on the edges);
- ``paths_Wy``, ``paths_Ws``, ``paths_Wx``: every term of the BPTT sum of dE_N/dW as its path back from
  E_N, labelled with its factor chain and the norm of its term (a row of ``gradient_terms``);
- ``dS_norm``: ||dE_N/dS_i|| against i, the vanishing gradient of the seed's last paragraph.

The data each picture is drawn from is a plain function (:func:`weight_paths`, :func:`state_gradient_norms`)
so tests check the numbers, not pixels. Drawing needs matplotlib (the ``[plot]`` extra); the module imports
without it and :func:`require_matplotlib` says how to install it.
"""

from __future__ import annotations

import io
import os
from contextlib import ExitStack
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ..errors import InputError
from ..io import atomic_path
from .example import WEIGHTS, SeedExample, factors, term_steps

#: The figures, in the order they are written; each is saved as NAME.png and NAME.svg.
FIGURES = ("unrolled", "paths_Wy", "paths_Ws", "paths_Wx", "dS_norm")
INSTALL = "pip install 'bptt[plot]'"


class PathTerm(NamedTuple):
    """One term of the BPTT sum of dE_N/d``weight`` as a path back from E_N.

    step: the 1-based step i of the term.  nodes: the nodes the path passes, from E_N to S_i (Wy: to Y_N).
    factors: the factor chain as (numerator, denominator) pairs.  term: the term itself, row i-1 of
    ``gradient_terms(...)[weight]``.  norm: its Frobenius norm.
    """

    weight: str
    step: int
    nodes: tuple
    factors: tuple
    term: np.ndarray
    norm: float


def weight_paths(ex: SeedExample, weight: str) -> list[PathTerm]:
    """The terms of dE_N/d``weight`` (newest step first), the data of figure ``paths_<weight>``."""
    if weight not in WEIGHTS:
        raise InputError(f"weight: got {weight!r}, expected one of {', '.join(WEIGHTS)}")
    n = ex.steps
    out = []
    for i in term_steps(weight, n):
        nodes = (f"E_{n}", f"Y_{n}") + (() if weight == "Wy" else tuple(f"S_{t}" for t in range(n, i - 1, -1)))
        term = ex.terms[weight][i - 1]
        out.append(PathTerm(weight, i, nodes, tuple(factors(weight, i, n)), term, float(np.linalg.norm(term))))
    return out


def state_gradient_norms(ex: SeedExample) -> tuple[np.ndarray, np.ndarray]:
    """(steps 1..N, ||dE_N/dS_i||) from ``gradient_terms(...)["dS"]``: the data of figure ``dS_norm``."""
    return np.arange(1, ex.steps + 1), np.linalg.norm(ex.terms["dS"][:, 0, :], axis=-1)


def require_matplotlib(what: str = "the figures need"):
    """Import matplotlib or raise one InputError line with the install command; ``what`` says what needs it
    (e.g. "--html: the page draws its figures with")."""
    try:
        import matplotlib  # noqa: F401
        from matplotlib.figure import Figure  # noqa: F401
    except ImportError as exc:
        raise InputError(f"{what} matplotlib, which is not installed; install it with: {INSTALL}") from exc


# --------------------------------------------------------------------------------------------
# Drawing
# --------------------------------------------------------------------------------------------

DX, YS, YY, YE = 2.0, 1.7, 3.3, 4.7  # column spacing; heights of the S, Y and E rows (X at 0)
R = 0.36  # node radius
WCOLOR = {"Wx": "#2a7ab0", "Ws": "#c0392b", "Wy": "#2e8b57"}


def _tex(sym: str) -> str:
    """'E_3' -> 'E_{3}', 'Ws' -> 'W_{s}' (mathtext, without the dollars)."""
    if sym in WEIGHTS:
        return f"W_{{{sym[1]}}}"
    base, sub = sym.split("_")
    return f"{base}_{{{sub}}}"


def chain_mathtext(fs) -> str:
    return "$" + r" \cdot ".join(rf"\partial {_tex(a)}/\partial {_tex(b)}" for a, b in fs) + "$"


def _positions(n: int) -> dict:
    pos = {"S_0": (0.0, YS), f"E_{n}": (n * DX, YE)}
    for t in range(1, n + 1):
        pos[f"X_{t}"], pos[f"S_{t}"], pos[f"Y_{t}"] = (t * DX, 0.0), (t * DX, YS), (t * DX, YY)
    return pos


def _edges(n: int) -> list[tuple[str, str, str | None]]:
    """(from, to, weight on the edge) of the unrolled graph."""
    e = []
    for t in range(1, n + 1):
        e += [(f"X_{t}", f"S_{t}", "Wx"), (f"S_{t - 1}", f"S_{t}", "Ws"), (f"S_{t}", f"Y_{t}", "Wy")]
    return e + [(f"Y_{n}", f"E_{n}", None)]


def _trim(a, b, r=R):
    a, b = np.asarray(a, float), np.asarray(b, float)
    u = (b - a) / np.linalg.norm(b - a)
    return a + r * u, b - r * u


def _draw_graph(ax, ex: SeedExample, faint: bool):
    from matplotlib.patches import Circle, FancyBboxPatch

    n, pos = ex.steps, _positions(ex.steps)
    alpha = 0.35 if faint else 1.0  # faint: the graph behind the paths (nodes stay opaque, above the paths)
    ec = "#999999" if faint else "black"
    for a, b, wname in _edges(n):
        p, q = _trim(pos[a], pos[b])
        color = WCOLOR.get(wname, "black")
        ax.annotate("", xy=q, xytext=p, arrowprops=dict(arrowstyle="-|>", color=color, lw=1.4, alpha=alpha,
                                                        shrinkA=0, shrinkB=0), zorder=1)
        if wname:
            m = (p + q) / 2 + (np.array([0.0, 0.22]) if wname == "Ws" else np.array([0.22, 0.0]))
            ax.text(*m, f"${_tex(wname)}$", color=color, fontsize=11, ha="center", va="center", alpha=alpha,
                    bbox=dict(boxstyle="round,pad=0.1", fc="white", ec="none", alpha=0.85), zorder=2)
    for name, (x, y) in pos.items():
        if name.startswith("S"):
            ax.add_patch(Circle((x, y), R, fc="#fdf2e9", ec=ec, lw=1.2, zorder=8))
        else:
            fc = {"X": "#eaf2f8", "Y": "#e9f7ef", "E": "#fdedec"}[name[0]]
            ax.add_patch(FancyBboxPatch((x - R * 0.85, y - R * 0.85), 1.7 * R, 1.7 * R, boxstyle="round,pad=0.05",
                                        fc=fc, ec=ec, lw=1.2, zorder=8))
        ax.text(x, y, f"${_tex(name)}$", fontsize=12, ha="center", va="center", zorder=9,
                color="#555555" if faint else "black")


def _values(ax, ex: SeedExample):
    """The example's numbers next to the nodes of the unrolled graph."""
    n, pos = ex.steps, _positions(ex.steps)
    small = dict(fontsize=8, ha="center", color="#333333")
    vec = (lambda v: "(" + ", ".join(f"{x:.2f}" for x in v) + ")") if ex.hidden <= 3 else (
        lambda v: f"|S|={np.linalg.norm(v):.2f}")
    for t in range(1, n + 1):
        x = t * DX
        ax.text(x, -R - 0.25, f"{ex.X[t - 1, 0, 0]:.3f}", va="top", **small)
        ax.text(x + 0.05, YS - R - 0.12, vec(ex.S[t - 1]), va="top", **small)
        ax.text(x - R - 0.08, YY + R + 0.05, f"{ex.Y[t - 1, 0]:.3f}", va="bottom", **small)
    ax.text(0.05, YS - R - 0.12, vec(ex.s0[0]), va="top", **small)
    x, _ = pos[f"E_{n}"]
    ax.text(x + R + 0.15, YE, f"$E_{{{n}}} = (d_{{{n}}} - Y_{{{n}}})^2$\n$d_{{{n}}}$ = {ex.D[-1, 0, 0]:.3f}, "
            f"$E_{{{n}}}$ = {ex.E:.4f}", fontsize=9, ha="left", va="center")


def _frame(ax, n):
    ax.set_xlim(-0.7, n * DX + 2.4)
    ax.set_ylim(-0.95, YE + 0.6)
    ax.set_aspect("equal")
    ax.axis("off")


def _source(ex: SeedExample) -> str:
    return (f"numbers: the seeded example that `{ex.command}` prints (Elman, H={ex.hidden}, "
            f"g1={ex.g1}, g2={ex.g2}, seed={ex.seed})")


def figure_unrolled(ex: SeedExample):
    from matplotlib.figure import Figure

    n = ex.steps
    width = 1.25 * (n * DX + 3.1)
    fig = Figure(figsize=(width, 1.25 * (YE + 1.55) + 0.9))
    ax = fig.add_axes((0.02, 0.1, 0.96, 0.76))
    _draw_graph(ax, ex, faint=False)
    _values(ax, ex)
    _frame(ax, n)
    fig.suptitle(f"The seed's Elman RNN unrolled over N = {n} steps:  "
                 r"$S_t = g_1(W_x X_t + W_s S_{t-1} + b_s)$,  $Y_t = g_2(W_y S_t + b_y)$", fontsize=11)
    fig.text(0.5, 0.03, _source(ex), ha="center", fontsize=8, color="#555555")
    return fig


def _path_points(ex: SeedExample, pt: PathTerm) -> np.ndarray:
    pos, n, i = _positions(ex.steps), ex.steps, pt.step
    pts = [pos[v] for v in pt.nodes]
    if pt.weight == "Wy":
        end = (np.add(pos[f"S_{n}"], pos[f"Y_{n}"])) / 2
    elif pt.weight == "Ws":
        end = (np.add(pos[f"S_{i - 1}"], pos[f"S_{i}"])) / 2
    else:
        end = (np.add(pos[f"X_{i}"], pos[f"S_{i}"])) / 2
    return np.array(pts + [end], float)


def figure_paths(ex: SeedExample, weight: str):
    from matplotlib.figure import Figure
    import matplotlib

    n, paths = ex.steps, weight_paths(ex, weight)
    width = max(9.0, 1.25 * (n * DX + 3.1))
    graph_h, line_h = 1.25 * (YE + 1.55), 0.32
    height = graph_h + 1.0 + line_h * (len(paths) + 1)
    fig = Figure(figsize=(width, height))
    ax = fig.add_axes((0.02, (height - graph_h - 0.7) / height, 0.96, graph_h / height))
    _draw_graph(ax, ex, faint=True)
    _frame(ax, n)
    biggest = max(p.norm for p in paths) or 1.0
    colors = matplotlib.colormaps["viridis"](np.linspace(0.0, 0.85, max(len(paths), 2)))
    for k, pt in enumerate(paths):
        off = (k - (len(paths) - 1) / 2) * 0.08
        xy = _path_points(ex, pt) + np.array([off, -off])
        lw = 1.0 + 5.0 * pt.norm / biggest
        (line,) = ax.plot(xy[:, 0], xy[:, 1], color=colors[k], lw=lw, solid_capstyle="round", zorder=5)
        line.set_gid(f"path-{weight}-i{pt.step}")
        ax.plot(*xy[-1], marker="o", ms=4 + lw, color=colors[k], zorder=10)
        tag = ax.text(*(xy[-1] + np.array([0.12, -0.22])), f"i={pt.step}", fontsize=9, color=colors[k],
                      fontweight="bold", zorder=10)
        tag.set_gid(f"tag-{weight}-i{pt.step}")
    total = float(np.linalg.norm(ex.grads[weight]))
    what = (f"{len(paths)} terms of the BPTT sum, each a path back from $E_{{{n}}}$ (line width: size of the term)"
            if len(paths) > 1 else f"a single term, its path back from $E_{{{n}}}$")
    fig.suptitle(rf"$\partial E_{{{n}}}/\partial {_tex(weight)}$: " + what, fontsize=11)
    y0 = (line_h * (len(paths) + 1) + 0.35) / height
    for k, pt in enumerate(paths):
        y = y0 - (k + 1) * line_h / height
        t = fig.text(0.03, y, f"i={pt.step}:  " + chain_mathtext(pt.factors)
                     + f"   |term| = {pt.norm:.3e}  ({100 * pt.norm / biggest:.1f}% of the largest)",
                     fontsize=9.5, color=colors[k], va="center")
        t.set_gid(f"label-{weight}-i{pt.step}")
    fig.text(0.03, y0 - (len(paths) + 1) * line_h / height,
             rf"sum of the terms = $\partial E_{{{n}}}/\partial {_tex(weight)}$,  |sum| = {total:.3e};  "
             + _source(ex), fontsize=8, color="#555555", va="center")
    return fig


def figure_state_gradients(ex: SeedExample):
    from matplotlib.figure import Figure

    steps, norms = state_gradient_norms(ex)
    n = ex.steps
    fig = Figure(figsize=(7.0, 4.4))
    ax = fig.add_axes((0.13, 0.23, 0.82, 0.63))
    ax.semilogy(steps, norms, "o-", color=WCOLOR["Ws"], lw=1.8)
    for i, v in zip(steps, norms):
        ax.annotate(f"{v:.2e}", (i, v), textcoords="offset points", xytext=(0, 7), ha="center", fontsize=8)
    ax.set_xticks(steps)
    ax.set_xlabel(f"step i (lag N - i = {n} - i)")
    ax.set_ylabel(rf"$\|\partial E_{{{n}}}/\partial S_i\|$")
    ax.margins(x=0.08, y=0.25)
    ax.grid(True, which="both", alpha=0.3)
    if n > 1 and norms[-1] > 0 and norms[0] > 0:
        rate = (norms[0] / norms[-1]) ** (1.0 / (n - 1))
        extra = f"; mean factor per step back: {rate:.3f}"
    else:
        extra = ""
    ax.set_title(rf"The gradient travelling back in time, $\|\partial E_{{{n}}}/\partial S_i\|${extra}", fontsize=10)
    fig.text(0.5, 0.02, _source(ex).replace(" (Elman", "\n(Elman") + "; longer nets: `bptt diagnose`",
             ha="center", fontsize=7, color="#555555")
    return fig


def make_figures(ex: SeedExample) -> dict:
    """name -> matplotlib Figure, for every name in FIGURES."""
    require_matplotlib()
    figs = {"unrolled": figure_unrolled(ex)}
    for w in WEIGHTS:
        figs[f"paths_{w}"] = figure_paths(ex, w)
    figs["dS_norm"] = figure_state_gradients(ex)
    return figs


def render(fig, fmt: str, dpi: int = 100, description: str | None = None) -> bytes:
    """The figure as PNG or SVG bytes, reproducibly (no dates, fixed SVG ids, text as paths);
    ``description`` goes into the file's metadata (PNG tEXt / SVG dc:description)."""
    import matplotlib

    buf = io.BytesIO()
    with matplotlib.rc_context({"svg.hashsalt": "bptt-explain", "svg.fonttype": "path"}):
        meta = {"Date": None} if fmt == "svg" else {"Software": None}
        if description:
            meta["Description"] = description
        fig.savefig(buf, format=fmt, dpi=dpi, metadata=meta, facecolor="white")
    return buf.getvalue()


def render_all(ex: SeedExample, formats=("png", "svg")) -> dict:
    """file name -> bytes for every figure in every format."""
    out = {}
    for name, fig in make_figures(ex).items():
        for fmt in formats:
            out[f"{name}.{fmt}"] = render(fig, fmt, description=_source(ex))
    return out


def check_folder(folder) -> Path:
    """The output folder: an existing folder, or a new one whose parent exists. InputError otherwise."""
    path = Path(os.fspath(folder))
    if path.exists() and not path.is_dir():
        raise InputError(f"--figures: {os.fspath(folder)!r} exists and is not a folder; give a folder for the figures")
    if not path.exists() and not path.parent.is_dir():
        raise InputError(f"--figures: the parent of {os.fspath(folder)!r} is not an existing folder; "
                         "create it first or give another folder")
    if path.is_dir() and not os.access(path, os.W_OK | os.X_OK):
        raise InputError(f"--figures: folder {os.fspath(folder)!r} is not writable; give a writable folder")
    return path


def write_figures(ex: SeedExample, folder, files: dict | None = None) -> list[Path]:
    """Draw every figure and write FOLDER/NAME.png and .svg atomically; returns the paths written.

    All images are drawn before anything is written (``files``: already rendered by :func:`render_all`);
    the folder is created if missing (and removed again if writing fails). Raises InputError (bad folder,
    no matplotlib) or ModelFileError (OS error).
    """
    path = check_folder(folder)
    files = render_all(ex) if files is None else files
    created = not path.exists()
    try:
        if created:
            path.mkdir()
        with ExitStack() as stack:
            for name, data in files.items():
                tmp = stack.enter_context(atomic_path(path / name, what="figure"))
                tmp.write_bytes(data)
    except BaseException:
        if created:
            try:
                path.rmdir()
            except OSError:
                pass
        raise
    return [path / name for name in files]
