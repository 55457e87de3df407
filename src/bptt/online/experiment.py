"""``bptt experiment online``: the online algorithms side by side, on tasks and against the hidden size.

Two parts, both written into one folder:

1. **Cost**: wall time of one online step (one stream, I = 1, the Elman cell, float64) at several hidden
   sizes H, for every algorithm, and the least-squares exponent k of time ~ H^k, next to the theoretical
   one (RTRL 4, KF-RTRL 3, UORO 2, SnAp-1 2; ARTBP and BPTT pay per step what BPTT pays: about H^2).
   Small H is dominated by NumPy's per-call overhead, which flattens the fitted exponents; the table says
   which sizes were timed.
2. **Training**: every algorithm (and truncated BPTT(K, K) as the baseline it should beat) trains the
   same net with ``bptt train TASK --online ALG`` (``--tbptt K K``) on the tasks' streams; each run is an
   ordinary run folder ``OUT/runs/<task>-<alg>`` (finished runs are not trained again, cut runs resume),
   and the table reports the held-out metric of its task (``solved`` and the loss).

Reference point: O. Marschall, K. Cho, C. Savin, "A unified framework of online learning algorithms for
training recurrent neural networks", JMLR 21(135), 2020 (see docs/online.md for what we reproduce).
"""

from __future__ import annotations

import csv
import io as _io
import math
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from .. import config, files, io
from ..errors import InputError, Interrupted, TrainingDiverged
from . import make

ALGORITHMS = ("rtrl", "snap1", "uoro", "kf-rtrl", "artbp")
THEORY = {"rtrl": 4, "snap1": 2, "uoro": 2, "kf-rtrl": 3, "artbp": 2, "bptt": 2}
TIME_COLUMNS = ["algorithm", "hidden", "seconds_per_step", "exponent", "exponent_top", "theory"]
# loss: the held-out loss (MSE for squared-error tasks; bits per character for text); baseline: the
# task's baseline on the same scale (always-1 MSE for adding; unigram bits per character for text)
TRAIN_COLUMNS = ["task", "length", "algorithm", "hidden", "steps", "status", "solved", "loss", "baseline",
                 "train_seconds", "run"]


@dataclass(frozen=True)
class Plan:
    algorithms: tuple = ALGORITHMS
    hidden_sizes: tuple = (16, 32, 64, 128)  # timing
    timing_steps: int = 30
    tasks: tuple = (("adding", 20), ("copy", 5), ("text", 20))  # (task, length)
    tbptt: int = 5  # the truncated-BPTT baseline, BPTT(K, K)
    hidden: int = 16  # training
    steps: int = 8000  # stream steps (one update per loss step, or per K steps)
    batch: int = 16
    heldout: int = 256


FULL = Plan()
QUICK = Plan(hidden_sizes=(8, 16, 32), timing_steps=20, tasks=(("adding", 10),), hidden=8, steps=600, batch=8,
             heldout=128)


# ---- cost ------------------------------------------------------------------------------------------------
def time_per_step(alg_name: str, H: int, steps: int, seed: int = 0) -> float:
    """Fastest wall seconds of one ``alg.step`` over ``steps`` steps (after two warm-up steps; the minimum,
    as ``timeit`` advises, is the least disturbed by other processes) on an Elman net with H units, one
    stream, I = O = 1, a loss at every step. 'bptt': the fastest of 3 ``net.gradients`` over ``steps``
    steps, divided by ``steps``."""
    from ..network import Elman

    net = Elman(1, H, 1, seed=seed)
    rng = np.random.default_rng([seed, 2])
    X, D = rng.standard_normal((steps + 2, 1, 1)), rng.standard_normal((steps + 2, 1, 1))
    if alg_name == "bptt":
        best = math.inf
        for _ in range(3):
            t0 = time.perf_counter()
            net.gradients(X[2:], D[2:])
            best = min(best, time.perf_counter() - t0)
        return best / steps
    alg = make(alg_name, rng=np.random.default_rng([seed, 3]))
    state = alg.init(net, 1)
    times = []
    for t in range(steps + 2):
        t0 = time.perf_counter()
        _, _, state = alg.step(net, state, X[t], D[t])
        times.append(time.perf_counter() - t0)
    return float(np.min(times[2:]))


def fit_exponent(Hs, secs) -> float:
    """k of the least-squares line log secs = c + k log H."""
    if len(Hs) < 2:
        return math.nan
    return float(np.polyfit(np.log(Hs), np.log(secs), 1)[0])


def timing(plan: Plan, log=None) -> list[dict]:
    rows = []
    for alg in plan.algorithms + ("bptt",):
        secs = [time_per_step(alg, H, plan.timing_steps) for H in plan.hidden_sizes]
        k = fit_exponent(plan.hidden_sizes, secs)
        top = fit_exponent(plan.hidden_sizes[-2:], secs[-2:])  # the two largest sizes: least overhead
        for H, s in zip(plan.hidden_sizes, secs):
            rows.append({"algorithm": alg, "hidden": H, "seconds_per_step": s, "exponent": k, "exponent_top": top,
                         "theory": THEORY.get(alg)})
        if log:
            log(f"timing {alg}: " + ", ".join(f"H={H} {1e3 * s:.3g} ms" for H, s in zip(plan.hidden_sizes, secs))
                + f"; exponent {k:.2f}, over the two largest H {top:.2f} (theory {THEORY.get(alg)})")
    return rows


# ---- training ---------------------------------------------------------------------------------------------
def run_config(plan: Plan, task: str, length: int, alg: str) -> config.TrainConfig:
    given = {"task": task, "length": length, "hidden": plan.hidden, "steps": plan.steps, "batch": plan.batch,
             "heldout": plan.heldout, "schedule": "constant", "seed": 0, "cell": "elman"}  # every algorithm's cell
    if alg.startswith("tbptt"):
        given["tbptt"] = (plan.tbptt, plan.tbptt)
        given["steps"] = max(1, plan.steps // plan.tbptt)  # one step is K stream positions: the same positions
    else:
        given["online"] = alg
    if task == "text":
        given["lr"] = 0.003
    return config.resolve({}, given)


def run_name(task, length, alg) -> str:
    return f"{task}-T{length}-{alg.replace(':', '')}"


def training(plan: Plan, out: Path, log=None, train_fn=None) -> list[dict]:
    from ..experiment import _check_saved

    if train_fn is None:
        from ..train import train as train_fn
    rows = []
    algs = plan.algorithms + (f"tbptt{plan.tbptt}",)
    for task, length in plan.tasks:
        for alg in algs:
            cfg = run_config(plan, task, length, alg)
            name = run_name(task, length, alg)
            folder = out / "runs" / name
            row = dict.fromkeys(TRAIN_COLUMNS)
            row |= {"task": task, "length": length, "algorithm": alg, "hidden": plan.hidden, "steps": plan.steps,
                    "run": f"runs/{name}"}
            model = folder / "model.npz"
            try:
                if not model.exists():
                    train_fn(cfg, folder, resume=True, quiet=True, log=lambda *a, **k: None)
                net = _check_saved(files.load(model), cfg, folder)  # a run of other settings: InputError
                held = net.meta["heldout"]
                if "bpc" in held:  # a character model: bits per character against the unigram baseline
                    loss, base = held["bpc"], held.get("baseline_bpc")
                else:
                    loss, base = held.get("loss"), held.get("baseline_mse", held.get("baseline_solved"))
                row.update(status="ok", solved=held.get("solved"), loss=loss, baseline=base,
                           train_seconds=net.meta.get("seconds"))
            except TrainingDiverged:
                row.update(status="diverged", solved=0.0)
            except Interrupted as e:
                raise Interrupted(f"{str(e).split(' ')[0]} while training {name}: finished runs are kept in "
                                  f"{str(out)!r}; run the same command again to resume") from None
            rows.append(row)
            if log:
                log(f"{task} T={length} {alg}: {row['status']}, solved {row['solved']}, loss {row['loss']}")
    return rows


# ---- outputs ----------------------------------------------------------------------------------------------
def write_csv(path, rows, columns) -> None:
    buf = _io.StringIO()
    w = csv.DictWriter(buf, columns, lineterminator="\n", restval="")
    w.writeheader()
    w.writerows({k: ("" if v is None else repr(v) if isinstance(v, float) else v) for k, v in r.items()} for r in rows)
    io.atomic_write_bytes(path, buf.getvalue().encode(), what="experiment table")


def table(time_rows, train_rows) -> str:
    lines = ["time per step (ms) against H, fitted exponent (theory):"]
    Hs = sorted({r["hidden"] for r in time_rows})
    lines.append(f"  {'algorithm':<10}" + "".join(f"{'H=' + str(H):>10}" for H in Hs)
                 + f"{'exponent':>10}{'top two':>9}{'theory':>8}")
    for alg in dict.fromkeys(r["algorithm"] for r in time_rows):
        rs = {r["hidden"]: r for r in time_rows if r["algorithm"] == alg}
        first = next(iter(rs.values()))
        lines.append(f"  {alg:<10}" + "".join(f"{1e3 * rs[H]['seconds_per_step']:>10.3g}" for H in Hs)
                     + f"{first['exponent']:>10.2f}{first['exponent_top']:>9.2f}"
                     + f"{first['theory'] if first['theory'] is not None else '':>8}")
    if train_rows:
        lines.append("held-out result of online training (solved fraction; loss, bits per character for text; "
                     "baseline):")
        for r in train_rows:
            solved = "" if r["solved"] is None else f"{r['solved']:.3f}"
            loss = "" if r["loss"] is None else f"{r['loss']:.4g}"
            base = "" if r["baseline"] is None else f"{r['baseline']:.4g}"
            lines.append(f"  {r['task']:<7} T={r['length']:<4} {r['algorithm']:<9} {r['status']:<9} solved {solved:<6} "
                         f"loss {loss:<9} baseline {base}")
    return "\n".join(lines) + "\n"


def write_png(path, time_rows, train_rows) -> bool:
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        return False
    fig = Figure(figsize=(11, 4))
    FigureCanvasAgg(fig)
    a, b = fig.subplots(1, 2)
    for alg in dict.fromkeys(r["algorithm"] for r in time_rows):
        rs = [r for r in time_rows if r["algorithm"] == alg]
        a.plot([r["hidden"] for r in rs], [r["seconds_per_step"] * 1e3 for r in rs], "o-",
               label=f"{alg}: H^{rs[0]['exponent']:.2f} (theory {rs[0]['theory']})")
    a.set_xscale("log")
    a.set_yscale("log")
    a.set_xlabel("hidden units H")
    a.set_ylabel("ms per step (one stream)")
    a.set_title("cost of one online step (Elman)", fontsize=9)
    a.legend(fontsize=7)
    a.grid(True, alpha=0.3)
    tasks = list(dict.fromkeys((r["task"], r["length"]) for r in train_rows))
    algs = list(dict.fromkeys(r["algorithm"] for r in train_rows))
    width = 0.8 / max(len(tasks), 1)
    for j, (task, length) in enumerate(tasks):
        vals = []
        for alg in algs:
            r = next((r for r in train_rows if (r["task"], r["length"], r["algorithm"]) == (task, length, alg)), None)
            vals.append(np.nan if r is None or r["loss"] is None or not r["baseline"] else r["loss"] / r["baseline"])
        b.bar(np.arange(len(algs)) + j * width, vals, width, label=f"{task} T={length}")
    b.axhline(1.0, color="gray", lw=0.8, ls=":")
    b.set_xticks(np.arange(len(algs)) + width * (len(tasks) - 1) / 2, algs, fontsize=8)
    b.set_ylabel("held-out loss / baseline (lower is better)")
    b.set_title("online training", fontsize=9)
    b.legend(fontsize=7)
    fig.tight_layout()
    with io.atomic_path(path, what="plot") as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    return True


def run(plan: Plan, out, log=None) -> tuple[list, list]:
    """Both parts into ``out`` (online-timing.csv, online-training.csv, online.png). Returns (time, train) rows."""
    out = Path(out)
    try:
        (out / "runs").mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise InputError(f"--out: cannot create folder {str(out)!r}: {e.strerror or e}") from None
    from ..experiment import _one_blas_thread

    with _one_blas_thread():
        time_rows = timing(plan, log)
        write_csv(out / "online-timing.csv", time_rows, TIME_COLUMNS)
        train_rows = training(plan, out, log)
        write_csv(out / "online-training.csv", train_rows, TRAIN_COLUMNS)
    return time_rows, train_rows


def parse_tasks(items) -> tuple:
    """('adding:20', 'text') -> (('adding', 20), ('text', 20)); the length defaults to 20."""
    out = []
    for item in items:
        name, _, length = item.partition(":")
        if name not in config.TASKS or name == "series":
            raise InputError(f"--tasks: unknown task {name!r} in {item!r}; expected TASK:LENGTH with TASK one of "
                             "adding, sine, copy, order, text")
        try:
            n = int(length) if length else 20
        except ValueError:
            n = 0
        if n < 2:
            raise InputError(f"--tasks: got {item!r}, expected TASK:LENGTH with an integer LENGTH >= 2")
        out.append((name, n))
    return tuple(out)


def check_plan(plan: Plan) -> Plan:
    """Validate the options (InputError naming the option)."""
    if not plan.algorithms:
        raise InputError("--algorithms: got an empty list, expected some of " + ", ".join(ALGORITHMS))
    for a in plan.algorithms:
        try:
            make(a, rng=np.random.default_rng(0))
        except InputError as e:
            raise InputError(f"--algorithms: {e}") from None
    for name in ("steps", "hidden"):
        v = getattr(plan, name)
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise InputError(f"--{name}: got {v!r}, expected an integer >= 1")
    return plan


def with_options(plan: Plan, **given) -> Plan:
    return replace(plan, **{k: v for k, v in given.items() if v is not None})
