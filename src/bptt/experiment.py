"""``bptt experiment memory``: how long a dependency can each recurrent net learn, and how far back does
its gradient reach once trained?

The classic comparison, from one command: five cells/inits

    elman-uniform     Elman, tanh, uniform init (the seed tutorial's net)
    elman-orthogonal  Elman, tanh, orthogonal Ws
    irnn              Elman, relu, Ws = I, bias 0, input weights N(0, 0.001^2) (Le, Jaitly & Hinton 2015)
    lstm              LSTM, forget-gate bias 1 (Hochreiter & Schmidhuber 1997; Jozefowicz et al. 2015)
    gru               GRU (Cho et al. 2014)

x sequence lengths x seeds, on two long-lag tasks of :mod:`bptt.data`: ``adding`` (H&S 1997 experiment 4 in
Le et al.'s form; a sequence counts as solved when |error| < 0.04) and ``order`` (temporal order, H&S 1997
experiment 6a, 4 classes; solved = classified correctly). Every run is an ordinary ``bptt train`` run folder
(``OUT/runs/<task>-T<length>-<cell>-seed<seed>``) trained by :func:`bptt.train.train` with the task's
defaults (Adam, lr 0.01, cosine schedule, gradient clipping at 1) and the grid's steps and hidden size.
For each run it records the held-out success rate (the task's ``solved``: the fraction of 512 held-out
sequences meeting the criterion), the held-out loss, and the *effective memory* of the trained net and of
the same net at initialisation (:func:`bptt.diagnostics.gradient_by_lag` on 64 held-out sequences of its
task, the loss term at the task's last step followed back: the largest lag whose ||dE_N/dS_(N-k)|| is still
>= 1 % of the largest; for the LSTM also ``memory_cell``, the same on its cell state c). Runs whose
``model.npz`` exists are not trained again (after checking they were made with the same configuration),
and a run cut short resumes from its checkpoint: an interrupted experiment resumes where it stopped.

Published results it relates to
-------------------------------
- S. Hochreiter, J. Schmidhuber, "Long Short-Term Memory", Neural Computation 9(8):1735-1780, 1997:
  LSTM solves the adding problem (exp. 4; minimal lags 50, 250, 500 at T = 100, 500, 1000) and the
  temporal-order problems (exp. 6a/6b, T = 100-110), where BPTT and RTRL on conventional recurrent nets
  fail (they compare LSTM with RTRL, BPTT, Elman nets and others: "many more successful runs").
- Q. V. Le, N. Jaitly, G. E. Hinton, "A Simple Way to Initialize Recurrent Networks of Rectified Linear
  Units", arXiv:1504.00941, 2015: on the adding problem with T = 150 to 400 the IRNN (relu, Ws = I)
  roughly matches LSTM and does better than a tanh RNN.

What we measured (docs/gradient-lab.md has the tables and times; one seed each, so single entries are
noisy): agreeing with H&S, our LSTM solves adding at T = 50 and 100 (99 %, with a criterion 4 times
stricter than theirs) where the tanh Elman nets stay near the 7.8 % baseline, the seed's net with a
trained effective memory of 5-7 steps (the seed's "8-10 steps"); disagreeing, no net (LSTM included, also
with 6000 steps) left chance on temporal order at T = 100 within our budget (3000 Adam steps of 32
sequences; H&S updated online, once per sequence, with their own LSTM variant). Agreeing with Le et al.
in kind, the IRNN's gradient reaches the whole sequence and it is the only Elman net to learn adding at
T = 50 (77 %); disagreeing at our budget, it stays at the baseline at T = 100 where LSTM and GRU solve it. T >= 150 was not run at the full settings. The GRU (in neither
paper) is the best or tied-best net everywhere we ran.

Shapes: none of the arrays here leave this module; the rows are plain dicts of numbers and strings.
"""

from __future__ import annotations

import contextlib
import csv
import io as _io
import time
from dataclasses import dataclass, replace
from pathlib import Path

from . import config, diagnostics, files, io
from .data import at_steps, get_task
from .errors import InputError, Interrupted, TrainingDiverged

# name -> TrainConfig fields; the order is the order of the table and the plot's legend
CELLS = {
    "elman-uniform": {"cell": "elman", "g1": "tanh", "init": "uniform"},
    "elman-orthogonal": {"cell": "elman", "g1": "tanh", "init": "orthogonal"},
    "irnn": {"cell": "elman", "g1": "relu", "init": "identity"},
    "lstm": {"cell": "lstm", "forget_bias": 1.0},
    "gru": {"cell": "gru"},
}
TASKS = ("adding", "order")
MEMORY_SEQUENCES = 64  # held-out sequences for the effective-memory measurement
FRACTION = 1e-2  # effective memory: last lag whose gradient is >= this fraction of the largest
COLUMNS = ["task", "cell", "length", "seed", "hidden", "steps", "status", "solved", "loss", "effective_memory",
           "memory_censored", "memory_cell", "decay_rate", "half_life", "memory_at_init", "train_seconds", "run"]


@dataclass(frozen=True)
class Grid:
    """What to run: every task x cell x length x seed (seeds 0 .. seeds-1), each trained for ``steps``
    optimiser steps with ``hidden`` units, evaluated on ``heldout`` held-out sequences."""

    tasks: tuple = TASKS
    cells: tuple = tuple(CELLS)
    lengths: tuple = (5, 10, 20, 50, 100, 200)
    seeds: int = 3
    steps: int = 3000
    hidden: int = 32
    heldout: int = 512


FULL = Grid()
# measured: 55 s wall on 2 cores shared with other jobs (load 3-5); 1000 steps took 100 s (docs/gradient-lab.md)
QUICK = Grid(lengths=(10, 20, 50), seeds=1, steps=600, hidden=16)


def check_grid(grid: Grid) -> Grid:
    """Validate every field; returns the grid or raises InputError naming the option."""
    for name, known in (("tasks", TASKS), ("cells", tuple(CELLS))):
        items = getattr(grid, name)
        if not items:
            raise InputError(f"--{name}: got an empty list, expected one or more of {', '.join(known)}")
        bad = [x for x in items if x not in known]
        if bad:
            raise InputError(f"--{name}: unknown {bad[0]!r}; expected comma-separated names from {', '.join(known)}")
    if not grid.lengths or not all(isinstance(n, int) and n >= 2 for n in grid.lengths):
        raise InputError(f"--lengths: got {grid.lengths!r}, expected sequence lengths >= 2, comma-separated")
    for name, low in (("seeds", 1), ("steps", 1), ("hidden", 1), ("heldout", 1)):
        v = getattr(grid, name)
        if isinstance(v, bool) or not isinstance(v, int) or v < low:
            raise InputError(f"--{name}: got {v!r}, expected an integer >= {low}")
    return grid


def run_name(task: str, cell: str, length: int, seed: int) -> str:
    return f"{task}-T{length}-{cell}-seed{seed}"


def run_config(grid: Grid, task: str, cell: str, length: int, seed: int) -> config.TrainConfig:
    """The run's TrainConfig: bptt train's defaults for the task, the cell's fields, the grid's sizes."""
    return config.resolve({}, {"task": task, "length": length, "seed": seed, "steps": grid.steps,
                               "hidden": grid.hidden, "heldout": grid.heldout, "eval_every": 0, **CELLS[cell]})


def plan(grid: Grid) -> tuple[list[tuple], list[str]]:
    """([(task, cell, length, seed)] to run, in order; [notes on (task, length) pairs the task refuses])."""
    runs, notes = [], []
    for task in grid.tasks:
        for length in grid.lengths:
            try:
                get_task(task, length=length)
            except InputError as e:
                notes.append(f"{task} T={length}: skipped ({e})")
                continue
            runs += [(task, cell, length, seed) for cell in grid.cells for seed in range(grid.seeds)]
    return runs, notes


def measure_memory(net, task, seed: int) -> diagnostics.LagProfile:
    """Effective memory of ``net`` on MEMORY_SEQUENCES held-out sequences of ``task`` (held-out seed
    ``seed``), following back the loss term at the task's last loss step."""
    X, D = task.heldout(MEMORY_SEQUENCES, seed)  # X (T, B, I)
    at = int(at_steps(task.at, X.shape[0])[-1])
    return diagnostics.gradient_by_lag(net, X, D, loss=task.loss, at=at, fraction=FRACTION)


@contextlib.contextmanager
def _one_blas_thread():
    """The nets here are small (H <= a few dozen): one BLAS thread is faster than several fighting over
    2 cores (LSTM step 4.7 ms against 16 ms measured). Uses threadpoolctl when it is installed."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        yield
        return
    with threadpool_limits(1, user_api="blas"):
        yield


def run_one(grid: Grid, out: Path, task: str, cell: str, length: int, seed: int, train_fn=None) -> dict:
    """Train one run (unless its model.npz exists) and measure it. Returns its CSV row (a dict); the
    extra key ``wall_seconds`` is the time spent training now (None: finished before)."""
    from .train import build_net, build_task

    cfg = run_config(grid, task, cell, length, seed)
    name = run_name(task, cell, length, seed)
    folder = out / "runs" / name
    model, diverged = folder / "model.npz", folder / "diverged.txt"
    row = dict.fromkeys(COLUMNS)  # None: does not apply (a diverged run has no loss, no trained net)
    row |= {"task": task, "cell": cell, "length": length, "seed": seed, "hidden": grid.hidden,
           "steps": grid.steps, "run": f"runs/{name}"}
    wall = None  # seconds spent here training (None: done before)
    if model.exists():
        net = _check_saved(files.load(model), cfg, folder)
    elif diverged.exists():
        net = None
    else:
        if train_fn is None:  # one run trains in this process alone, also when the grid spans MPI ranks
            from functools import partial

            from .comm import single
            from .train import train
            train_fn = partial(train, comm=single())
        t0 = time.perf_counter()
        try:
            train_fn(cfg, folder, resume=True, quiet=True, log=lambda *a, **k: None)
            net = files.load(model)
        except Interrupted as e:  # Ctrl-C / SIGTERM: the run checkpointed; say how to resume the experiment
            signal = str(e).split(" ")[0]
            raise Interrupted(f"{signal} while training {name}: its checkpoint and the finished runs are kept in "
                              f"{str(out)!r}; run the same bptt experiment command again to resume") from None
        except TrainingDiverged as e:
            folder.mkdir(parents=True, exist_ok=True)
            io.atomic_write_bytes(diverged, f"{e}\n".encode(), what="divergence note")
            net = None
        wall = time.perf_counter() - t0
    task_obj = build_task(cfg)
    row["memory_at_init"] = measure_memory(build_net(cfg, task_obj), task_obj, seed).effective_memory
    if net is None:  # diverged: counts as not solved
        row.update(status="diverged", solved=0.0)
    else:
        prof = measure_memory(net, task_obj, seed)
        held = net.meta["heldout"]
        row.update(status="ok", solved=held["solved"], loss=held["loss"], effective_memory=prof.effective_memory,
                   memory_censored=int(prof.censored), decay_rate=prof.decay_rate, half_life=prof.half_life)
        if prof.cell_norm is not None:  # LSTM: the same measure on ||dE_N/dc_(N-k)||, the cell state's path
            row["memory_cell"] = diagnostics.effective_memory(prof.cell_norm, FRACTION)[0]
        row["train_seconds"] = net.meta.get("seconds")  # the training loop's own time, as bptt train records it
    return {**row, "wall_seconds": wall}


def _check_saved(net, cfg, folder):
    """The saved run must have been made with this configuration (a folder of another grid is an error)."""
    from .train import build_task, resolve_for_task

    saved, want = net.meta.get("train") or {}, resolve_for_task(cfg, build_task(cfg)).to_dict()
    if saved != want:
        diff = sorted(k for k in want if saved.get(k) != want[k])
        k = diff[0] if diff else "train"
        raise InputError(f"--out: {str(folder)!r} holds a run made with other settings ({', '.join(diff) or 'unknown'} "
                         f"differ, e.g. {k} {saved.get(k)!r} there, {want.get(k)!r} now); use another --out for "
                         "another grid, or the same options as before to resume")
    return net


def check_existing(grid: Grid, out) -> int:
    """Before training anything: every finished run already in ``out`` must match ``grid`` (InputError
    otherwise). Returns how many runs are finished."""
    done = 0
    for task, cell, length, seed in plan(grid)[0]:
        folder = Path(out) / "runs" / run_name(task, cell, length, seed)
        if (folder / "model.npz").exists():
            _check_saved(files.load(folder / "model.npz"), run_config(grid, task, cell, length, seed), folder)
            done += 1
        elif (folder / "diverged.txt").exists():
            done += 1
    return done


# relative cost of a step per sequence position, for spreading runs over MPI ranks (measured order of magnitude)
_CELL_COST = {"lstm": 4.0, "gru": 3.0}


def share(runs, done, size: int) -> list[list[int]]:
    """Indices of ``runs`` for each of ``size`` ranks: longest first, each to the least loaded rank
    (cost ~ length x cell; finished runs, ``done[i]``, only measure). The same on every rank."""
    cost = [length * _CELL_COST.get(cell, 1.0) * (0.05 if done[i] else 1.0)
            for i, (task, cell, length, seed) in enumerate(runs)]
    load, parts = [0.0] * size, [[] for _ in range(size)]
    for i in sorted(range(len(runs)), key=lambda i: (-cost[i], i)):
        r = min(range(size), key=lambda r: (load[r], r))
        parts[r].append(i)
        load[r] += cost[i]
    return [sorted(p) for p in parts]


def run_grid(grid: Grid, out, *, train_fn=None, log=None, comm=None) -> list[dict]:
    """Every run of ``grid`` into the folder ``out``; writes ``out/memory.csv`` (atomically, after every run,
    so a partial experiment leaves its rows) and returns the rows. ``log(str)``: one line per run.

    ``comm`` (default :func:`bptt.comm.world`): under ``mpiexec -n R`` the runs are spread over the R ranks
    (each run trains on one rank, as an ordinary resumable run folder); rank 0 logs its own runs, gathers
    every rank's rows and writes memory.csv once at the end; every rank returns all the rows."""
    from .comm import world

    comm = comm or world()
    grid = check_grid(grid)
    out = Path(out)
    log = comm.root_only(log) if log else None

    def make_folder():
        try:
            (out / "runs").mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise InputError(f"--out: cannot create folder {str(out)!r}: {e.strerror or e}") from None

    comm.on_root(make_folder)
    runs, notes = plan(grid)
    if not runs:
        raise InputError(f"--lengths: no run left to do: {'; '.join(notes)}")
    for note in notes:
        log and log(note)
    done = check_existing(grid, out)
    if log and done:
        log(f"{done} of {len(runs)} runs are finished already (not trained again)")
    finished = [any((out / "runs" / run_name(*r) / f).exists() for f in ("model.npz", "diverged.txt")) for r in runs]
    mine = share(runs, finished, comm.size)[comm.rank]
    rows = {}
    with _one_blas_thread():
        for n, i in enumerate(mine, 1):
            task, cell, length, seed = runs[i]
            row = run_one(grid, out, task, cell, length, seed, train_fn=train_fn)
            rows[i] = row
            if comm.size == 1:
                write_csv(out / "memory.csv", list(rows.values()))
            if log:
                wall = row["wall_seconds"]
                how = "done before" if wall is None else f"{wall:.1f} s"
                res = ("diverged" if row["status"] == "diverged" else
                       f"solved {row['solved']:.3f}, loss {row['loss']:.4g}, memory {row['effective_memory']}"
                       f"{'+' if row['memory_censored'] else ''} (at init {row['memory_at_init']})")
                where = f"rank 0: {n}/{len(mine)} of its runs, " if comm.size > 1 else ""
                log(f"[{where}{i + 1}/{len(runs)}] {task} T={length} {cell} seed {seed}: {res}; {how}")
    if comm.size == 1:
        return list(rows.values())
    everyone = comm.gather(rows)  # the root's list of every rank's {index: row}
    comm.on_root(lambda: write_csv(out / "memory.csv", _in_order(everyone)))
    return comm.bcast(_in_order(everyone) if comm.is_root else None)


def _in_order(parts) -> list[dict]:
    merged = {i: row for part in parts for i, row in part.items()}
    return [merged[i] for i in sorted(merged)]


# ---- outputs ------------------------------------------------------------------------------------------
def _cell(v) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return repr(v)  # the shortest text that reads back as the same float ('nan', 'inf' too)
    return str(v)


def write_csv(path, rows) -> None:
    """rows -> CSV with COLUMNS (empty where a value does not apply), written atomically."""
    buf = _io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(COLUMNS)
    w.writerows([_cell(r.get(c)) for c in COLUMNS] for r in rows)
    io.atomic_write_bytes(path, buf.getvalue().encode(), what="experiment table")


def read_csv(path) -> list[dict]:
    """memory.csv back into rows (numbers as int / float, empty as None)."""
    ints = {"length", "seed", "hidden", "steps", "effective_memory", "memory_censored", "memory_cell", "memory_at_init"}
    floats = {"solved", "loss", "decay_rate", "half_life", "train_seconds"}
    rows = []
    with open(path, newline="", encoding="utf-8") as fh:
        for r in csv.DictReader(fh):
            rows.append({k: (None if v == "" else int(v) if k in ints else float(v) if k in floats else v)
                         for k, v in r.items()})
    return rows


def aggregate(rows) -> dict:
    """{(task, cell, length): (mean solved over seeds, mean effective memory of the finished runs or None,
    any memory censored, number of runs)}."""
    groups: dict = {}
    for r in rows:
        groups.setdefault((r["task"], r["cell"], r["length"]), []).append(r)
    out = {}
    for key, rs in groups.items():
        mems = [r["effective_memory"] for r in rs if r.get("effective_memory") is not None]
        out[key] = (sum(r["solved"] for r in rs) / len(rs), sum(mems) / len(mems) if mems else None,
                    any(r.get("memory_censored") for r in rs), len(rs))
    return out


def table(rows) -> str:
    """One block per task: a row per cell, a column per length, each entry 'solved/memory' (means over
    the seeds; '+': the memory reached the start of the sequence in some seed, so it may be longer)."""
    agg = aggregate(rows)
    lines = []
    for task in dict.fromkeys(r["task"] for r in rows):
        lengths = sorted({k[2] for k in agg if k[0] == task})
        cells = [c for c in CELLS if any(k[0] == task and k[1] == c for k in agg)]
        seeds = max(v[3] for k, v in agg.items() if k[0] == task)
        lines.append(f"{task}: held-out success rate / effective memory of the trained net (steps), "
                     f"mean over {seeds} seed{'s' if seeds > 1 else ''}")
        head = f"{'cell':<18}" + "".join(f"{'T=' + str(t):>13}" for t in lengths)
        lines += [head, "-" * len(head)]
        for c in cells:
            parts = []
            for t in lengths:
                v = agg.get((task, c, t))
                if v is None:
                    parts.append(f"{'-':>13}")
                    continue
                mem = "div" if v[1] is None else f"{v[1]:.0f}{'+' if v[2] else ''}"
                parts.append(f"{v[0]:>8.2f}/{mem:<4}")
            lines.append(f"{c:<18}" + "".join(parts))
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def write_png(path, rows) -> bool:
    """Success rate (top) and effective memory (bottom) against the length, one line per cell, one
    column per task. False (nothing written) without matplotlib."""
    try:
        import matplotlib
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        return False
    agg = aggregate(rows)
    tasks = list(dict.fromkeys(r["task"] for r in rows))
    colors = matplotlib.rcParams["axes.prop_cycle"].by_key()["color"]
    fig = Figure(figsize=(4.2 * len(tasks) + 0.6, 6.4))
    FigureCanvasAgg(fig)
    axes = fig.subplots(2, len(tasks), squeeze=False)
    for j, task in enumerate(tasks):
        top, bottom = axes[0][j], axes[1][j]
        lengths = sorted({k[2] for k in agg if k[0] == task})
        for n, c in enumerate(CELLS):
            pts = [(t, agg[(task, c, t)]) for t in lengths if (task, c, t) in agg]
            if not pts:
                continue
            col = colors[n % len(colors)]
            top.plot([t for t, _ in pts], [v[0] for _, v in pts], "o-", color=col, label=c, lw=1.5, ms=4)
            mem = [(t, v[1]) for t, v in pts if v[1] is not None]
            bottom.plot([t for t, _ in mem], [m for _, m in mem], "o-", color=col, label=c, lw=1.5, ms=4)
        bottom.plot(lengths, [t - 1 for t in lengths], ":", color="gray", lw=1, label="T-1 (whole sequence)")
        for ax in (top, bottom):
            ax.set_xscale("log")
            ax.set_xticks(lengths, [str(t) for t in lengths])
            ax.minorticks_off()
            ax.grid(True, alpha=0.3)
        base = {"adding": "|error| < 0.04", "order": "class correct; chance 0.25"}.get(task, "solved")
        top.set_title(f"{task}: held-out success rate ({base})", fontsize=9)
        top.set_ylim(-0.03, 1.03)
        bottom.set_title(f"{task}: effective memory of the trained net", fontsize=9)
        bottom.set_xlabel("sequence length T")
        bottom.set_yscale("symlog", linthresh=1, linscale=0.3)  # memory can be 0
        ticks = [m for m in (0, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000) if m <= max(lengths)]
        bottom.set_yticks(ticks, [str(m) for m in ticks])
    axes[0][0].set_ylabel("success rate")
    axes[1][0].set_ylabel("effective memory (steps)")
    handles, labels = axes[1][-1].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    with io.atomic_path(path, what="plot") as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    return True


def with_options(grid: Grid, **given) -> Grid:
    """grid with the options that were given (None = not given) replaced."""
    return replace(grid, **{k: v for k, v in given.items() if v is not None})


__all__ = ["CELLS", "TASKS", "COLUMNS", "Grid", "FULL", "QUICK", "check_grid", "run_config", "run_name", "plan",
           "measure_memory", "run_one", "share", "run_grid", "write_csv", "read_csv", "aggregate", "table", "write_png",
           "with_options"]
