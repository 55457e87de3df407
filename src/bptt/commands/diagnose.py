"""``bptt diagnose``: how far back does the gradient reach in this network?

    bptt diagnose DIR [--data FILE] --out PREFIX           a saved model (bptt train's run folder, or its model.npz)
    bptt diagnose --cell elman --g1 tanh --hidden 32 --length 50 --init orthogonal --seed 0 --out PREFIX
    bptt diagnose --nets elman:tanh:uniform,elman:tanh:orthogonal,elman:relu:identity,lstm --out PREFIX

A saved model is measured on --batch held-out sequences of its own task (``task.heldout(batch, seed)``),
with the task's loss, following back the loss term at the task's last loss step; --data FILE puts the
task on another file first, as in ``bptt evaluate`` (text and series models).

Fresh nets: --cell, --g1, --init and --hidden take comma-separated lists (``--init uniform,orthogonal,identity``):
every combination becomes one curve (g1 applies to Elman only). --nets instead lists the curves one by one,
``cell[:g1][:init]`` for Elman (``elman:relu:identity`` is the IRNN) and ``cell[:init]`` for LSTM/GRU; missing
parts are tanh and uniform. A fresh LSTM gets --forget-bias (default 1.0, as in bptt train). Fresh nets have
I = --inputs inputs and one output. Unless --arrays gives them, the inputs are N(0, 1) noise of shape
(--length, --batch, I) and the loss is a single squared-error term at the last step against N(0, 1)
targets, all drawn from the seed [--seed, 1], the same for every curve. --arrays FILE: an .npz with ``X``
(T, B, I) floats and optionally ``D``: (T, B, O) floats (squared loss) or (T, B) integer classes
(cross-entropy; the nets then get a softmax output with max(D)+1 classes).

Writes PREFIX.csv (config, lag, grad_norm_dS, [grad_norm_dC], term_<param>..., jacobian_product_norm; one
row per configuration and lag) and, with matplotlib installed (the [plot] extra), PREFIX.png, both
atomically; prints one plain-language line per configuration. See ``bptt.diagnostics``.
"""

from __future__ import annotations

import csv
import itertools
import math
import os
import secrets
import zipfile
from contextlib import suppress

import numpy as np

from .. import cells, diagnostics, network, validate
from ..errors import InputError

FRESH_OPTIONS = ("cell", "g1", "init", "hidden", "inputs", "nets", "forget_bias", "length", "arrays")
NETS_EXAMPLE = "elman:tanh:uniform,elman:tanh:orthogonal,elman:relu:identity,lstm"


def add_parser(subparsers):
    p = subparsers.add_parser(
        "diagnose", help="measure how far back the gradient reaches (vanishing gradients)",
        description="Measure ||dE_N/dS_{N-k}|| against the lag k, its geometric decay, the effective memory "
                    "and the step Jacobians, for a saved model or fresh nets; write PREFIX.csv and PREFIX.png.")
    p.add_argument("model", nargs="?", metavar="DIR", help="a saved model: its run folder (DIR/model.npz) or the "
                   "file, measured on held-out data of its own task; omit to diagnose fresh nets")
    p.add_argument("--data", metavar="FILE", help="with DIR: put the model's task on this file (text and series "
                   "models, as in bptt evaluate)")
    p.add_argument("--arrays", metavar="FILE", help="fresh nets: .npz with X (T, B, I) and optionally D; "
                   "default: N(0, 1) noise")
    p.add_argument("--out", metavar="PREFIX", help="write PREFIX.csv and PREFIX.png, creating folders (default: "
                   "DIR/gradient for a saved model, runs/diagnose/gradient for fresh nets)")
    p.add_argument("--cell", help="cell(s), comma-separated: elman, lstm, gru (default elman)")
    p.add_argument("--g1", help="Elman hidden activation(s), comma-separated (default tanh)")
    p.add_argument("--init", help="recurrent init(s), comma-separated: uniform, orthogonal, identity (default uniform)")
    p.add_argument("--hidden", help="hidden size(s) H, comma-separated (default 32)")
    p.add_argument("--nets", help="fresh nets one by one, comma-separated cell[:g1][:init], e.g. " + NETS_EXAMPLE)
    p.add_argument("--forget-bias", type=float, help="forget-gate bias of a fresh LSTM (default 1.0, as bptt train)")
    p.add_argument("--inputs", type=int, help="inputs I of a fresh net (default 1)")
    p.add_argument("--length", type=int, help="steps T of the random inputs of fresh nets (default 50)")
    p.add_argument("--batch", type=int, default=16, help="sequences B: random inputs, or held-out sequences of a "
                   "saved model's task (default 16)")
    p.add_argument("--seed", type=int, default=0, help="seed of the fresh nets and of the random data, or of the "
                   "held-out draw (default 0)")
    p.add_argument("--fraction", type=float, default=1e-2,
                   help="effective memory: last lag whose gradient is >= this fraction of the largest (default 0.01)")
    p.add_argument("--no-plot", action="store_true", help="write the CSV only")
    p.add_argument("--estimators", help="compare gradient estimators with exact BPTT instead: comma-separated rtrl, "
                   "snap1, snap2, uoro, kf-rtrl, artbp[:C], tbptt:K, bptt (one net; see docs/online.md)")
    p.add_argument("--lengths", help="with --estimators, fresh net: sequence lengths, comma-separated "
                   "(default 10,50,200)")
    p.add_argument("--draws", type=int, help="with --estimators: draws of each stochastic estimator (default 20)")
    p.set_defaults(run=run)


# ---- configurations --------------------------------------------------------------------------------
def _list(option: str, text: str | None, default: str) -> list[str]:
    items = [s.strip() for s in (default if text is None else text).split(",")]
    if not all(items):
        raise InputError(f"--{option}: got {text!r}, expected comma-separated names without empty items")
    return list(dict.fromkeys(items))  # keep order, drop repeats


def _fresh_net(cell, g1, init, H, n_in, n_out, g2, seed, forget_bias):
    if cell not in cells.CELLS:
        raise InputError(f"--cell: unknown cell {cell!r}; expected one of {', '.join(cells.CELLS)}")
    cls = {"elman": "Elman", "lstm": "LSTM", "gru": "GRU"}.get(cell)
    cls = getattr(network, cls, None) if cls else None
    if cls is None:  # a registered cell without its own class
        cls = type(cell.upper(), (network.Network,), {"cell_name": cell})
    opts = {"g1": g1} if cell == "elman" else {"forget_bias": forget_bias} if cell == "lstm" else {}
    return cls(n_in, H, n_out, g2=g2, seed=seed, init=init, **opts)


def _hidden_sizes(args) -> list[int]:
    hs = []
    for h in _list("hidden", args.hidden, "32"):
        try:
            hs.append(validate.integer("--hidden", int(h), low=1))
        except ValueError:
            raise InputError(f"--hidden: got {h!r}, expected positive integers, comma-separated (e.g. 32,64)") from None
    return hs


def _parse_nets(text: str) -> list[tuple[str, str, str]]:
    """--nets 'elman:relu:identity,lstm:orthogonal' -> [(cell, g1, init)] (g1 'tanh' for gated cells)."""
    out = []
    for item in _list("nets", text, ""):
        parts = item.split(":")
        cell = parts[0]
        n_max = 3 if cell == "elman" else 2
        if len(parts) > n_max or not all(parts):
            form = "elman[:G1][:INIT]" if cell == "elman" else f"{cell}[:INIT]"
            raise InputError(f"--nets: item {item!r} has the wrong form; expected {form} (e.g. {NETS_EXAMPLE})")
        g1 = parts[1] if cell == "elman" and len(parts) > 1 else "tanh"
        init = parts[-1] if len(parts) == n_max else "uniform"
        out.append((cell, g1, init))
    return list(dict.fromkeys(out))


def _fresh_configs(args):
    """[(label, builder(n_in, n_out, g2) -> net)] for every combination of the list options, or for every
    item of --nets."""
    hs = _hidden_sizes(args)
    if args.nets is not None:
        clash = [f"--{o}" for o in ("cell", "g1", "init") if getattr(args, o) is not None]
        if clash:
            raise InputError(f"--nets and {', '.join(clash)}: give the curves either as --nets items or as "
                             "--cell/--g1/--init lists, not both")
        combos = _parse_nets(args.nets)
    else:
        g1s = _list("g1", args.g1, "tanh")
        combos = [(c, g, i) for c, g, i in itertools.product(_list("cell", args.cell, "elman"), g1s,
                                                             _list("init", args.init, "uniform"))
                  if c == "elman" or g == g1s[0]]  # g1 is Elman's only: one curve per gated cell and init
    fb = 1.0 if args.forget_bias is None else args.forget_bias
    out = []
    for (cell, g1, init), H in itertools.product(combos, hs):
        label = "/".join([cell] + ([g1] if cell == "elman" else []) + [init] + ([f"H{H}"] if len(hs) > 1 else []))
        out.append((label, lambda n_in, n_out, g2, c=cell, g=g1, i=init, h=H:
                    _fresh_net(c, g, i, h, n_in, n_out, g2, args.seed, fb)))
    return out


def _read_arrays(path):
    """(X, D or None) from an .npz."""
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except OSError:
        raise
    except (ValueError, zipfile.BadZipFile, EOFError) as e:
        raise InputError(f"--arrays: cannot read {path!r} as an .npz file ({e}); expected arrays X (T, B, I) "
                         "and optionally D") from None
    if "X" not in arrays:
        raise InputError(f"--arrays: {path!r} holds {sorted(arrays)}, expected an array named 'X' (T, B, I)")
    X = arrays["X"]
    if X.ndim != 3 or X.dtype.kind != "f":
        raise InputError(f"--arrays: X has dtype {X.dtype} and shape {X.shape}, expected (T, B, I) floats")
    return X.astype(np.float64), arrays.get("D")


def _saved_model(args, batch, seed):
    """(label, net, X, D, loss, at, description) for DIR: held-out data of the model's own task."""
    from pathlib import Path

    from ..data import at_steps
    from ._load import load_model, task_for

    net = load_model(args.model)
    task = task_for(net, args.data, model=args.model)
    X, D = task.heldout(batch, seed)  # (T, B, I), targets as the task gives them
    T = X.shape[0]
    at = int(at_steps(task.at, T)[-1])  # the task's last loss step
    p = Path(args.model)
    label = p.name if p.is_dir() else p.stem
    where = f" on {args.data}" if args.data else ""
    desc = (f"{label}: {X.shape[1]} held-out sequences of its {task.name} task{where} (T = {T}, seed {seed}), "
            f"{task.loss} loss at step {at}")
    return label, net, X, D, task.loss, at, desc


def _targets(rng, T, B, n_out, softmax):
    if softmax:
        return rng.integers(0, n_out, (T, B)), "cross_entropy"
    return rng.standard_normal((T, B, n_out)), "squared"


# ---- outputs -----------------------------------------------------------------------------------------
def _atomic(path, write):
    """write(tmp) then os.replace(tmp, path): a reader sees the old file or the new one, never half."""
    folder = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(folder, f".{os.path.basename(path)}.tmp-{os.getpid()}-{secrets.token_hex(4)}")
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        with suppress(OSError):
            os.unlink(tmp)
        raise


def write_csv(path, results):
    """results: [(LagProfile, jacobian product norms (N+1,))] -> one row per configuration and lag."""
    rows, cols = [], ["config"]
    for prof, jp in results:
        for r, j in zip(prof.to_rows(), jp):
            rows.append({"config": prof.label, **r, "jacobian_product_norm": float(j)})
    for r in rows:
        cols += [c for c in r if c not in cols and c != "jacobian_product_norm"]
    cols.append("jacobian_product_norm")

    def write(tmp):
        with open(tmp, "w", newline="", encoding="utf-8") as fh:
            w = csv.DictWriter(fh, cols, restval="")
            w.writeheader()
            w.writerows({k: (f"{v:.17g}" if isinstance(v, float) else v) for k, v in r.items()} for r in rows)

    _atomic(path, write)


def write_png(path, results) -> bool:
    """Log-scale gradient norm against lag, fitted decay dashed, effective memory marked. False without
    matplotlib."""
    try:
        import matplotlib
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        return False
    colors = matplotlib.rcParams["axes.prop_cycle"].by_key()["color"]
    if len(results) > len(colors):  # more curves than the default cycle: 20 distinct colours
        colors = [matplotlib.colormaps["tab20"](i) for i in range(20)]
    fig = Figure(figsize=(7.5, 4.8))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for n, (prof, _) in enumerate(results):
        c = colors[n % len(colors)]
        y = np.where(prof.grad_norm > 0, prof.grad_norm, np.nan)
        m = prof.effective_memory
        ax.plot(prof.lags, y, color=c, lw=1.6,
                label=f"{prof.label}: memory {m}{'+' if prof.censored else ''}, rate {prof.decay_rate:.3g}")
        if math.isfinite(prof.decay_rate):
            ax.plot(prof.lags, prof.fitted(), color=c, lw=1, ls="--")
        ax.axvline(m, color=c, lw=0.8, ls=":")
        ax.plot([m], [y[m]], "o", color=c, ms=5)
    ax.set_yscale("log")
    ax.set_xlabel("lag k = N - i (steps back from the loss at step N)")
    ax.set_ylabel("mean ||dE_N / dS_(N-k)||")
    ax.set_title(f"How far back the gradient reaches (dashed: fitted decay; dot: effective memory, "
                 f"{results[0][0].fraction:g} of the largest)", fontsize=9)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    _atomic(path, lambda tmp: fig.savefig(tmp, format="png", dpi=120))
    return True


def summary(prof, spec, hint="try a longer --length") -> str:
    """One plain-language line about a profile and the recurrent matrix's spectrum; ``hint``: what to do
    when the memory reaches the start of the sequence."""
    r, h = prof.decay_rate, prof.half_life
    if not math.isfinite(r):
        decay = "no decay could be fitted (the gradient is zero beyond the loss step)"
    elif r < 1:
        decay = f"the gradient halves every {h:.1f} steps"
    elif r == 1:
        decay = "the gradient neither shrinks nor grows"
    else:
        decay = f"the gradient grows, doubling every {-h:.1f} steps"
    mem = (f"effective memory >= {prof.effective_memory} steps (the whole sequence: {hint})"
           if prof.censored else f"effective memory {prof.effective_memory} steps")
    sv = spec["max_singular_value"]
    if spec["vanishing_bound"] is not None:
        vb = spec["vanishing_bound"]
        rel = "<" if sv < vb else ">="
        why = "vanishing guaranteed" if sv < vb else "vanishing not guaranteed by the bound"
        sp = f"largest singular value of {spec['matrix']} {sv:.2f} {rel} 1/gamma = {vb:g} ({why})"
    else:
        sp = f"largest singular value of the {spec['matrix']} gate blocks {sv:.2f} (the 1/gamma bound is Elman-only)"
    return f"{prof.label}: {decay}; {mem}; {sp}"


# ---- the command ---------------------------------------------------------------------------------------
def default_out(model) -> str:
    """Where the outputs go without --out: next to a saved model (DIR/gradient, or FILE's folder/<stem>-gradient),
    runs/diagnose/gradient for fresh nets."""
    if model is None:
        return os.path.join("runs", "diagnose", "gradient")
    if os.path.isdir(model):
        return os.path.join(model, "gradient")
    stem = os.path.splitext(os.path.basename(model))[0]
    return os.path.join(os.path.dirname(model), f"{stem}-gradient")


def _fresh_data(args, rng, batch):
    """(nets, X, D, loss) for fresh nets: --arrays or N(0, 1) noise (and targets) from rng."""
    X, D = _read_arrays(args.arrays) if args.arrays else (None, None)
    if X is not None and args.length is not None:
        raise InputError("--length: the --arrays file fixes the length (X is (T, B, I)); leave --length out")
    configs = _fresh_configs(args)
    n_in = X.shape[2] if X is not None else validate.integer("--inputs", 1 if args.inputs is None else args.inputs,
                                                              low=1)
    softmax = D is not None and D.dtype.kind in "iu"
    if D is None:
        n_out = 1
    elif softmax:
        if D.ndim != 2 or D.size == 0 or D.min() < 0:
            raise InputError(f"--arrays: integer D has shape {D.shape}, expected (T, B) class indices >= 0")
        n_out = int(D.max()) + 1
    else:
        if D.ndim != 3:
            raise InputError(f"--arrays: D has shape {D.shape}, expected (T, B, O) float targets or (T, B) classes")
        n_out = D.shape[2]
    g2 = "softmax" if softmax else "identity"
    nets = [(label, build(n_in, n_out, g2)) for label, build in configs]
    if X is None:
        length = validate.integer("--length", 50 if args.length is None else args.length, low=1)
        X = rng.standard_normal((length, batch, n_in))
    if D is None:
        D, loss = _targets(rng, X.shape[0], X.shape[1], n_out, softmax)
    else:
        loss = "cross_entropy" if softmax else "squared"
    return nets, X, D, loss


def run(args) -> int:
    batch = validate.integer("--batch", args.batch, low=1)
    seed = validate.integer("--seed", args.seed, low=0)
    if not (isinstance(args.fraction, float) and 0 < args.fraction < 1):
        raise InputError(f"--fraction: got {args.fraction!r}, expected a number strictly between 0 and 1")
    args.out = default_out(args.model) if args.out is None else args.out
    folder = os.path.dirname(os.path.abspath(args.out))
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise InputError(f"--out: {folder!r} is a file, not a folder; expected PREFIX in a folder (e.g. runs/x/gradient)")
    if os.path.isdir(args.out):
        raise InputError(f"--out: {args.out!r} is a folder; expected a PREFIX for PREFIX.csv and PREFIX.png (e.g. "
                         f"{os.path.join(args.out, 'gradient')})")

    if args.estimators is not None:
        return _estimators(args, batch, seed)
    for o in ("lengths", "draws"):
        if getattr(args, o) is not None:
            raise InputError(f"--{o}: only with --estimators (the gradient-estimator comparison)")
    lines = []
    if args.model is not None:
        given = [f"--{o.replace('_', '-')}" for o in FRESH_OPTIONS if getattr(args, o) is not None]
        if given:
            raise InputError(f"{', '.join(given)}: only for fresh nets; a saved model (DIR) brings its own "
                             "network and task (held-out data of its task; --data FILE for text/series models)")
        label, net, X, D, loss, at, desc = _saved_model(args, batch, seed)
        nets = [(label, net)]
        lines.append(desc)
    else:
        if args.data is not None:
            raise InputError(f"--data: got {args.data!r} without a saved model; --data puts a saved model's task on "
                             "another file (bptt diagnose DIR --data FILE); for fresh nets give X (and D) in an .npz "
                             "with --arrays FILE")
        rng = np.random.default_rng([seed, 1])  # the data: one draw shared by every curve
        nets, X, D, loss = _fresh_data(args, rng, batch)
        at = -1

    results = []
    hint = "try a longer --length" if args.model is None else "the true memory may be longer than the task's sequences"
    for label, net in nets:
        prof = diagnostics.gradient_by_lag(net, X, D, loss=loss, at=at, fraction=args.fraction, label=label)
        results.append((prof, diagnostics.jacobian_products(net, X, at=at)))
        lines.append(summary(prof, diagnostics.recurrent_spectrum(net), hint))
    try:  # only now, with every input checked
        os.makedirs(folder, exist_ok=True)
    except OSError as e:
        raise InputError(f"--out: cannot create folder {folder!r}: {e.strerror or e}") from None
    write_csv(args.out + ".csv", results)
    for line in lines:
        print(line)
    print(f"wrote {args.out}.csv")
    if not args.no_plot:
        if write_png(args.out + ".png", results):
            print(f"wrote {args.out}.png")
        else:
            print("matplotlib is not installed: no plot (pip install 'bptt[plot]')")
    return 0


def _estimators(args, batch, seed) -> int:
    """--estimators: each estimator's cosine, relative error and variance against exact BPTT vs the length
    (``bptt.online.compare``): PREFIX.csv, PREFIX.png, one summary line per estimator."""
    from ..online import compare

    ests = compare.parse_estimators(args.estimators, seed)
    if args.model is not None:
        if args.lengths is not None:
            raise InputError("--lengths: a saved model is measured on held-out sequences of its own task (its length)")
        label, net, X, D, loss, at, desc = _saved_model(args, batch, seed)
        lengths, data = [X.shape[0]], lambda T: (X, D, loss, at)
    else:
        for o in ("arrays", "length", "nets"):
            if getattr(args, o) is not None:
                raise InputError(f"--{o}: not with --estimators; a fresh net gets N(0, 1) inputs and targets of "
                                 "each --lengths, with a squared-error term at every step")
        configs = _fresh_configs(args)
        if len(configs) != 1:
            raise InputError(f"--estimators: compares estimators on one net; got {len(configs)} combinations of "
                             "--cell/--g1/--init/--hidden (give one of each)")
        n_in = validate.integer("--inputs", 1 if args.inputs is None else args.inputs, low=1)
        label, net = configs[0][0], configs[0][1](n_in, 1, "identity")
        try:
            lengths = [validate.integer("--lengths", int(t), low=1) for t in (args.lengths or "10,50,200").split(",")]
        except ValueError:
            raise InputError(f"--lengths: got {args.lengths!r}, expected comma-separated integers "
                             "(e.g. 10,50,200)") from None

        def data(T):
            rng = np.random.default_rng([seed, 1, T])
            return rng.standard_normal((T, batch, n_in)), rng.standard_normal((T, batch, 1)), "squared", None

        desc = f"{label}: fresh net, {batch} sequences of N(0, 1) inputs, squared error at every step, seed {seed}"
    rows = compare.estimator_rows(net, ests, data, lengths, 20 if args.draws is None else args.draws)
    compare.write_csv(args.out + ".csv", rows)
    print(desc)
    for line in compare.estimator_summary(rows):
        print(line)
    print(f"wrote {args.out}.csv")
    if not args.no_plot:
        if compare.write_png(args.out + ".png", rows, title=desc):
            print(f"wrote {args.out}.png")
        else:
            print("matplotlib is not installed: no plot (pip install 'bptt[plot]')")
    return 0
