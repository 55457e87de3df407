"""Recompute the figures quoted in README.md, docs/ and benchmarks/README.md from today's code; report drift.

    python benchmarks/check_figures.py                      # the quick groups (diagnose, baseline, help, explain)
    python benchmarks/check_figures.py --group memory,quick # chosen groups (see --list)
    python benchmarks/check_figures.py --all                # every group (memory, quick, speed, train: ~15 min)

Every figure is one line: status, file:line where it is quoted, the quoted text, the quoted value and
today's value. Status: ``ok`` (today's value, written with the quote's precision, is the quoted one; or,
for times, within the stated tolerance), ``DRIFT`` (change the figure or the code), ``QUOTE?`` (the quoted
text is no longer in the file: update this script), ``not run`` (the figure needs a computation that this
script does not run, with why). Exit status 1 when anything drifted or a quote is missing.

A figure is (group, file, snippet, quoted value, how to get today's value). The snippet is the exact text of
the file that holds the figure, so an edit of the docs shows up here as ``QUOTE?`` rather than passing
silently. Run from a source checkout (``pip install -e .`` or ``PYTHONPATH=src``).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
README, LAB, BENCH = "README.md", "docs/gradient-lab.md", "benchmarks/README.md"


@dataclass
class Fig:
    group: str
    file: str
    snippet: str        # exact text in the file around the figure
    quoted: str         # the figure as written there
    today: Callable[[dict], object] | None  # computed values -> today's figure (formatted like the quote)
    tol: float = 0.0    # relative tolerance (times only); 0: the formatted values must be equal
    why_not: str = ""   # for figures this script does not recompute


def bptt(*args, timeout=3600) -> str:
    r = subprocess.run([sys.executable, "-m", "bptt", *args], capture_output=True, text=True, timeout=timeout,
                       cwd=ROOT)
    if r.returncode != 0:
        raise RuntimeError(f"bptt {' '.join(args)}: exit {r.returncode}: {r.stderr.strip()[-500:]}")
    return r.stdout + r.stderr


# ---- computations (one per group; each returns a dict of named values) ------------------------------------
def diagnose_group() -> dict:
    """`bptt diagnose` as docs/gradient-lab.md runs it, at T = 50 and 200, read back from its CSV."""
    from bptt import diagnostics as dg

    out = {}
    nets = "elman:tanh:uniform,elman:tanh:orthogonal,elman:relu:identity,lstm,gru,elman:tanh:identity"
    with tempfile.TemporaryDirectory() as tmp:
        for T in (50, 200):
            text = bptt("diagnose", "--nets", nets, "--hidden", "32", "--length", str(T), "--seed", "0",
                        "--out", f"{tmp}/d{T}")
            rows: dict[str, list] = {}
            with open(f"{tmp}/d{T}.csv", newline="") as f:
                for r in csv.DictReader(f):
                    rows.setdefault(r["config"], []).append(r)
            for cfg, rs in rows.items():
                g = np.array([float(r["grad_norm_dS"]) for r in rs])
                rate, *_ = dg.fit_decay(g)
                mem, _, cens = dg.effective_memory(g)
                key = cfg.split("/")[0] if cfg.startswith(("lstm", "gru")) else cfg
                out[(key, T, "rate")] = rate
                out[(key, T, "half")] = dg.half_life(rate)
                out[(key, T, "mem")] = f"{mem}+" if cens else str(mem)
                out[(key, T, "norms")] = g / g[0]
                if rs[0].get("grad_norm_dC"):
                    c = np.array([float(r["grad_norm_dC"]) for r in rs])
                    out[(key, T, "cmem")] = dg.effective_memory(c)[0]
                    out[(key, T, "mem0.1")] = dg.effective_memory(g, 1e-3)[0]
                out[(key, T, "mem0.1")] = dg.effective_memory(g, 1e-3)[0]
            m = re.search(r"elman/tanh/uniform: .*?largest singular value of Ws ([0-9.]+)", text)
            out[("sv", T)] = m.group(1)
    from bptt import Elman

    out["radius"] = dg.recurrent_spectrum(Elman(1, 32, 1, seed=0))
    return out


def baseline_group() -> dict:
    """The adding task's always-1 baseline (|error| < 0.04): the fraction of 2,000,000 held-out sequences (ten
    seeds, T = 4; the target's law does not depend on T) that answering 1 solves (exactly 1 - 0.96^2 = 7.84 %
    for a sum of two U(0, 1) values; standard error here 0.02 %)."""
    from bptt.data import get_task

    task = get_task("adding", length=4)
    hits = [np.mean(np.abs(1.0 - task.heldout(200_000, seed=s)[1][-1, :, 0]) < 0.04) for s in range(10)]
    return {"always1": float(np.mean(hits))}


def explain_group() -> dict:
    """The seed's example of `bptt explain` (default seed): the norms of the three terms of dE_3/dWs."""
    from bptt.explain.example import seed_example
    from bptt.explain.figures import weight_paths

    paths = {p.step: p.norm for p in weight_paths(seed_example(), "Ws")}
    return {"newest": paths[3], "oldest": paths[1]}


def help_group() -> dict:
    """Defaults quoted in the README against the configuration's tables."""
    from bptt import config as C

    cfg = C.resolve({}, {"task": "adding"})
    return {"adding_steps": cfg.steps, "adding_length": cfg.length}


def memory_group() -> dict:
    """benchmarks/memory_bench.py (T = 10,000, H = 256, B = 1, M = 100) for each cell, and the unit test's
    setting (T = 2000, H = 32, M = 40)."""
    out = {}
    for cell in ("elman", "lstm", "gru"):
        r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "memory_bench.py"), "--cell", cell],
                           capture_output=True, text=True, check=True, cwd=ROOT, timeout=3600).stdout
        pf, pb, less = re.search(r"full ([0-9.]+) MiB, budgeted ([0-9.]+) MiB: ([0-9.]+)x", r).groups()
        tf, tb, ratio = re.search(r"full ([0-9]+) ms, budgeted ([0-9]+) ms:? \(?([0-9.]+)x", r).groups()
        err = re.search(r"max relative difference ([0-9.e+-]+)", r).group(1)
        out[cell] = {"full": float(pf), "budget": float(pb), "less": float(less), "tfull": float(tf),
                     "tbudget": float(tb), "ratio": float(ratio), "err": float(err)}
    from bptt import GRU, LSTM, Elman
    from bptt.bench import peak_bytes

    rng = np.random.default_rng(0)
    X, D = rng.standard_normal((2000, 1, 1)), rng.standard_normal((2000, 1, 1))
    for name, cls in (("elman", Elman), ("lstm", LSTM), ("gru", GRU)):
        net = cls(1, 32, 1)
        net.gradients(X, D, max_states=40)
        out[f"test_{name}"] = peak_bytes(lambda: net.gradients(X, D, backend="numpy")) / peak_bytes(
            lambda: net.gradients(X, D, max_states=40))
    return out


def quick_group() -> dict:
    """`bptt experiment memory --quick`: success rate / effective memory of every run, and its wall time."""
    from bptt import experiment

    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        bptt("experiment", "memory", "--quick", "--out", tmp)
        wall = time.perf_counter() - t
        rows = experiment.read_csv(Path(tmp) / "memory.csv")
    out = {"wall": wall}
    for r in rows:
        mem = f"{r['effective_memory']}" + ("+" if r["memory_censored"] else "")
        out[(r["task"], r["cell"], r["length"])] = f"{r['solved']:.2f}/{mem}"
    return out


def quick1000_group() -> dict:
    """`bptt experiment memory --quick --steps 1000` on the configurations the gradient lab quotes from it."""
    from bptt import experiment

    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for task, cells, lengths in (("order", "lstm", "50"), ("adding", "elman-uniform,elman-orthogonal", "10")):
            bptt("experiment", "memory", "--quick", "--steps", "1000", "--tasks", task, "--cells", cells,
                 "--lengths", lengths, "--out", f"{tmp}/{task}")
            for r in experiment.read_csv(Path(tmp) / task / "memory.csv"):
                out[(r["task"], r["cell"], r["length"])] = f"{r['solved']:.2f}"
    return out


def speed_group() -> dict:
    """benchmarks/bench.py --json (float32 Elman, configs A-E): torch time / best bptt time, with OpenBLAS's own
    kernel choice (OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE removed for that command, as the README measured)."""
    env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench.py"), "--json"], capture_output=True,
                       text=True, check=True, cwd=ROOT, timeout=3600, env=env).stdout
    rows = json.loads(r)["rows"]
    return {row["config"]: (row["torch_ratio"], row["bptt_best"]) for row in rows if "torch_ratio" in row}


def train_group() -> dict:
    """`bptt train` with every default (adding, length 10): wall time and the held-out success rate."""
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        bptt("train", "--out", tmp, "--quiet")
        wall = time.perf_counter() - t
        meta = json.loads(json.dumps(__import__("bptt").files.load(Path(tmp) / "model.npz").meta))
    return {"wall": wall, "solved": meta["heldout"]["solved"]}


GROUPS = {"diagnose": diagnose_group, "baseline": baseline_group, "help": help_group, "explain": explain_group,
          "memory": memory_group,
          "quick": quick_group, "quick1000": quick1000_group, "speed": speed_group, "train": train_group}
QUICK_GROUPS = ("diagnose", "baseline", "help", "explain")


# ---- the figures ------------------------------------------------------------------------------------------
def f1(x):
    return f"{x:.1f}"


def f2(x):
    return f"{x:.2f}"


def figures() -> list[Fig]:
    F = []
    d = lambda key: (lambda v: v["diagnose"][key])  # noqa: E731
    # README: the tutorial's "8-10 steps", measured
    F += [Fig("diagnose", README, "keeps its terms above 1% of the largest for 7 steps", "7",
              lambda v: v["diagnose"][("elman/tanh/uniform", 200, "mem")]),
          Fig("diagnose", README, "the same net with an orthogonal Ws for 52 (T = 200)", "52",
              lambda v: v["diagnose"][("elman/tanh/orthogonal", 200, "mem")]),
          Fig("diagnose", README, "an IRNN (relu, Ws = I) for the whole sequence", "whole sequence",
              lambda v: "whole sequence" if v["diagnose"][("elman/relu/identity", 200, "mem")].endswith("+")
              else v["diagnose"][("elman/relu/identity", 200, "mem")]),
          Fig("diagnose", README, "it falls by a factor 0.53 per step", "0.53",
              lambda v: f2(v["diagnose"][("elman/tanh/uniform", 50, "rate")])),
          Fig("diagnose", README, "the gradient halves every 1.1 steps", "1.1",
              lambda v: f1(v["diagnose"][("elman/tanh/uniform", 50, "half")])),
          Fig("diagnose", README, "after 7 steps the terms are below 1% of the first one", "7",
              lambda v: v["diagnose"][("elman/tanh/uniform", 50, "mem")]),
          Fig("diagnose", README, "after 10\nbelow 0.14%", "0.14",
              lambda v: f2(100 * v["diagnose"][("elman/tanh/uniform", 50, "norms")][10])),
          Fig("diagnose", README, "An orthogonal Ws (rate 0.92)", "0.92",
              lambda v: f2(v["diagnose"][("elman/tanh/orthogonal", 50, "rate")])),
          Fig("diagnose", README, "the IRNN (0.97)", "0.97",
              lambda v: f2(v["diagnose"][("elman/relu/identity", 50, "rate")]))]
    # docs/gradient-lab.md: the table of fresh nets
    table = [("elman/tanh/uniform", "| Elman tanh, uniform init (the seed) | 0.53 | 1.1 steps | 7 | 7 |",
              "0.53", "1.1", "7", "7"),
             ("elman/tanh/orthogonal", "| Elman tanh, orthogonal Ws | 0.92 | 7.9 | 49+ | 52 |",
              "0.92", "7.9", "49+", "52"),
             ("elman/relu/identity", "| IRNN: Elman relu, Ws = I | 0.97 | 24 | 49+ | 199+ |",
              "0.97", "24", "49+", "199+"),
             ("lstm", "| LSTM, forget bias 1 | 0.82 | 3.5 | 10 (cell state c: 22) | 10 (c: 21) |",
              "0.82", "3.5", "10 (cell state c: 22)", "10 (c: 21)"),
             ("gru", "| GRU | 0.66 | 1.7 | 9 | 9 |",
              "0.66", "1.7", "9", "9")]
    for key, row, rate, half, m50, m200 in table:
        F.append(Fig("diagnose", LAB, row, rate, lambda v, k=key: f2(v["diagnose"][(k, 50, "rate")])))
        F.append(Fig("diagnose", LAB, row, half, lambda v, k=key, q=half: (
            f"{v['diagnose'][(k, 50, 'half')]:.0f}" if "." not in q else f1(v["diagnose"][(k, 50, "half")]))))
        if key == "lstm":
            F.append(Fig("diagnose", LAB, row, m50, lambda v: "{} (cell state c: {})".format(
                v["diagnose"][("lstm", 50, "mem")], v["diagnose"][("lstm", 50, "cmem")])))
            F.append(Fig("diagnose", LAB, row, m200, lambda v: "{} (c: {})".format(
                v["diagnose"][("lstm", 200, "mem")], v["diagnose"][("lstm", 200, "cmem")])))
        else:
            F.append(Fig("diagnose", LAB, row, m50, lambda v, k=key: v["diagnose"][(k, 50, "mem")]))
            F.append(Fig("diagnose", LAB, row, m200, lambda v, k=key: v["diagnose"][(k, 200, "mem")]))
    F += [Fig("diagnose", LAB, "decays even less in a fresh net: rate 0.9998", "0.9998",
              lambda v: f"{v['diagnose'][('elman/tanh/identity', 200, 'rate')]:.4f}"),
          Fig("diagnose", LAB, "memory 199+ at\nT = 200", "199+",
              lambda v: v["diagnose"][("elman/tanh/identity", 200, "mem")]),
          Fig("diagnose", LAB, "Each step back multiplies the term by about 0.53", "0.53",
              lambda v: f2(v["diagnose"][("elman/tanh/uniform", 50, "rate")])),
          Fig("diagnose", LAB, "the terms halve every 1.1 steps", "1.1",
              lambda v: f1(v["diagnose"][("elman/tanh/uniform", 50, "half")])),
          Fig("diagnose", LAB, "are down to 1 % of the first one at lag 7", "7",
              lambda v: v["diagnose"][("elman/tanh/uniform", 50, "mem")]),
          Fig("diagnose", LAB, "to 0.14 % at lag 10", "0.14",
              lambda v: f2(100 * v["diagnose"][("elman/tanh/uniform", 50, "norms")][10])),
          Fig("diagnose", LAB, "to 2e-6 at\n  lag 20 (the T = 200 run)", "2e-6",
              lambda v: f"{v['diagnose'][('elman/tanh/uniform', 200, 'norms')][20]:.0e}".replace("e-0", "e-")),
          Fig("diagnose", LAB, "10 steps at 0.1 %", "10",
              lambda v: v["diagnose"][("elman/tanh/uniform", 50, "mem0.1")]),
          Fig("diagnose", LAB, "uniform Ws has spectral radius about 1/sqrt(3) = 0.58 (measured 0.55)", "0.55",
              lambda v: f2(v["diagnose"]["radius"]["spectral_radius"])),
          Fig("diagnose", LAB, "Its largest\n  singular value is 1.02", "1.02", lambda v: v["diagnose"][("sv", 50)]),
          Fig("diagnose", LAB, "keeps 1 % of the gradient for 52 steps", "52",
              lambda v: v["diagnose"][("elman/tanh/orthogonal", 200, "mem")]),
          Fig("diagnose", LAB, "close to the seed's net on h (9-10 steps)", "9-10",
              lambda v: "{}-{}".format(*sorted([int(v["diagnose"][("gru", 50, "mem")]),
                                                 int(v["diagnose"][("lstm", 50, "mem")])]))),
          Fig("diagnose", LAB, "keeps 21-22", "21-22",
              lambda v: "{}-{}".format(*sorted([v["diagnose"][("lstm", 200, "cmem")],
                                                 v["diagnose"][("lstm", 50, "cmem")]])))]
    F += [Fig("baseline", LAB, "Always answering 1\n  solves 7.8 % (the baseline)", "7.8",
              lambda v: f1(100 * v["baseline"]["always1"]))]
    F += [Fig("help", README, "trains the seed's Elman RNN on the adding problem (length 10)", "10",
              lambda v: str(v["help"]["adding_length"]))]
    snippet = "through two step Jacobians is 7.9 % of the newest one (2.20e-02 against 2.79e-01)"
    F += [Fig("explain", README, snippet, "7.9", lambda v: f1(100 * v["explain"]["oldest"] / v["explain"]["newest"])),
          Fig("explain", README, snippet, "2.20e-02", lambda v: f"{v['explain']['oldest']:.2e}"),
          Fig("explain", README, snippet, "2.79e-01", lambda v: f"{v['explain']['newest']:.2e}")]
    # memory-budgeted BPTT
    mem = lambda c, k, fmt: (lambda v: fmt(v["memory"][c][k]))  # noqa: E731
    F += [Fig("memory", README, "| Elman | 61.8 MiB | 2.65 MiB (23x less)", "61.8", mem("elman", "full", f1)),
          Fig("memory", README, "| Elman | 61.8 MiB | 2.65 MiB (23x less)", "2.65", mem("elman", "budget", f2)),
          Fig("memory", README, "| LSTM | 264 MiB | 7.22 MiB (37x)", "264", mem("lstm", "full", lambda x: f"{x:.0f}")),
          Fig("memory", README, "| LSTM | 264 MiB | 7.22 MiB (37x)", "7.22", mem("lstm", "budget", f2)),
          Fig("memory", README, "| GRU | 302 MiB | 6.38 MiB (47x)", "6.38", mem("gru", "budget", f2)),
          Fig("memory", README, "gradients\nequal full BPTT's to ~1e-14", "1e-14",
              lambda v: "1e-14" if max(v["memory"][c]["err"] for c in v["memory"] if not c.startswith("test_"))
              < 5e-14 else "larger")]
    bench_rows = [("elman", "| Elman | 61.8 MiB | 2.65 MiB | 23.3x | 170 ms | 211 ms | 1.24x | 9.4e-15 |"),
                  ("lstm", "| LSTM | 264.3 MiB | 7.22 MiB | 36.6x | 1021 ms | 1476 ms | 1.45x | 5.8e-15 |"),
                  ("gru", "| GRU | 302.0 MiB | 6.38 MiB | 47.4x | 801 ms | 1124 ms | 1.40x | 5.5e-15 |")]
    for cell, row in bench_rows:
        q = [c.strip().strip("()").split()[0].rstrip("x") for c in row.strip("|").split("|")]
        F += [Fig("memory", BENCH, row, q[1], mem(cell, "full", f1)),
              Fig("memory", BENCH, row, q[2], mem(cell, "budget", f2)),
              Fig("memory", BENCH, row, q[3], mem(cell, "less", f1)),
              Fig("memory", BENCH, row, q[4], mem(cell, "tfull", lambda x: f"{x:.0f}"), tol=0.25),
              Fig("memory", BENCH, row, q[5], mem(cell, "tbudget", lambda x: f"{x:.0f}"), tol=0.25),
              Fig("memory", BENCH, row, q[6], mem(cell, "ratio", f2), tol=0.15),
              Fig("memory", BENCH, row, q[7], mem(cell, "err", lambda x: f"{x:.1e}"))]
    snippet = "(measured: 16x less for Elman, 20x for LSTM, 24x for GRU)"
    F += [Fig("memory", "tests/test_memory.py", snippet, q, lambda v, c=c: f"{v['memory'][f'test_{c}']:.0f}")
          for c, q in (("elman", "16"), ("lstm", "20"), ("gru", "24"))]
    # bptt experiment memory --quick
    quick = {"adding": ["0.15/9+      0.08/19+     0.07/5", "0.25/9+      0.14/19+     0.06/11",
                        "0.11/9+      0.09/19+     0.08/49+", "0.51/9+      0.21/19+     0.07/2",
                        "0.92/9+      0.85/19+     0.72/49+"],
             "order": ["1.00/9+      0.93/19+     0.24/7", "1.00/9+      1.00/19+     0.23/8",
                       "1.00/9+      1.00/19+     1.00/49+", "1.00/9+      1.00/19+     1.00/26",
                       "1.00/9+      1.00/19+     1.00/49+"]}
    cells = ["elman-uniform", "elman-orthogonal", "irnn", "lstm", "gru"]
    for task, lines in quick.items():
        for cell, line in zip(cells, lines):
            for T, q in zip((10, 20, 50), line.split()):
                F.append(Fig("quick", LAB, f"{cell:<22} {line}", q, lambda v, k=(task, cell, T): v["quick"][k]))
    F += [Fig("quick", LAB, "`--quick` (30 runs): **19 s** wall", "19", lambda v: f"{v['quick']['wall']:.0f}",
              tol=0.3)]
    F += [Fig("quick", LAB, "the GRU is the best or tied-best net in every configuration we ran (adding 92 % at",
              "92", lambda v: f"{100 * float(v['quick'][('adding', 'gru', 10)].split('/')[0]):.0f}"),
          Fig("quick1000", LAB, "the LSTM *fails* order at T = 50 (0.23)", "0.23",
              lambda v: v["quick1000"][("order", "lstm", 50)]),
          Fig("quick1000", LAB, "the tanh nets do better on adding at T = 10 (0.39 and 0.30)", "0.39",
              lambda v: v["quick1000"][("adding", "elman-uniform", 10)]),
          Fig("quick1000", LAB, "the tanh nets do better on adding at T = 10 (0.39 and 0.30)", "0.30",
              lambda v: v["quick1000"][("adding", "elman-orthogonal", 10)])]
    # speed (float32 Elman, torch / best bptt)
    for cfg, q in zip("ABCDE", ("31.2", "9.96", "4.19", "2.96", "2.24")):
        F.append(Fig("speed", README, "| Elman | 31.2 | 9.96 | 4.19 | 2.96 | 2.24 |", q,
                     lambda v, c=cfg, q=q: f"{v['speed'][c][0]:.{len(q.split('.')[1])}f}", tol=0.15))
    F += [Fig("train", README, "in about 4 seconds on 2 idle cores", "4", lambda v: f"{v['train']['wall']:.0f}",
              tol=0.3)]
    # figures of trained nets that need the full grid (hours on 2 cores): listed, not recomputed
    grid = "needs the full experiment grid's runs (3000 steps, H = 32; about 2 hours on 2 cores)"
    for snippet, q in [("the gradient halves every 1.2 steps; effective memory 7 steps", "1.2"),
                       ("singular value of Ws 2.60", "2.60"), ("The tanh net (unsolved, 9.6 %)", "9.6"),
                       ("The LSTM (98.6 % solved)", "98.6"), ("the gradient halves every 171.7 steps", "171.7"),
                       ("our LSTM solves adding at T = 50 (99.2 %) and T = 100 (98.6 %)", "99.2"),
                       ("only Elman variant that learns adding at T = 50 (77 %)", "77"),
                       ("stays at the baseline (7.4 %)", "7.4")]:
        F.append(Fig("grid", LAB, snippet, q, None, why_not=grid))
    return F


def locate(fig: Fig) -> int | None:
    """1-based line of the file where the snippet starts (0 if found only across lines), None when it is gone."""
    text = (ROOT / fig.file).read_text(encoding="utf-8")
    norm = lambda s: " ".join(s.split())  # noqa: E731  (a quote may wrap across lines)
    if norm(fig.snippet) not in norm(text) or fig.quoted not in norm(fig.snippet):
        return None
    head = " ".join(fig.snippet.split("\n")[0].split()[:4])
    return next((i for i, ln in enumerate(text.splitlines(), 1) if head in norm(ln)), 0)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--group", default=",".join(QUICK_GROUPS), help=f"comma-separated, of: {', '.join(GROUPS)}")
    p.add_argument("--all", action="store_true", help="every group (takes about 15 minutes on 2 cores)")
    p.add_argument("--list", action="store_true", help="list the figures and their groups without computing")
    a = p.parse_args(argv)
    groups = list(GROUPS) if a.all else [g for g in a.group.split(",") if g]
    unknown = set(groups) - set(GROUPS)
    if unknown:
        p.error(f"--group: unknown {sorted(unknown)}; expected some of {', '.join(GROUPS)}")
    sys.path.insert(0, str(ROOT / "src"))
    values = {}
    if not a.list:
        for g in groups:
            t = time.perf_counter()
            values[g] = GROUPS[g]()
            print(f"# computed {g} in {time.perf_counter() - t:.0f} s", file=sys.stderr)
    bad = 0
    for fig in figures():
        line = locate(fig)
        where = f"{fig.file}:{line if line else '?'}"
        quote = re.sub(r"\s+", " ", fig.snippet)[:90]
        if line is None:
            status, today = "QUOTE?", "-"
            bad += 1
        elif fig.today is None:
            status, today = "not run", fig.why_not
        elif a.list or fig.group not in values:
            status, today = "skipped", f"(group {fig.group})"
        else:
            today = str(fig.today(values))
            if today == fig.quoted:
                status = "ok"
            elif fig.tol and _close(today, fig.quoted, fig.tol):
                status = f"ok (within {fig.tol:.0%})"
            else:
                status = "DRIFT"
                bad += 1
        print(f"{status:<15} {where:<28} quoted {fig.quoted:<22} today {today:<22} \"{quote}\"")
    return 1 if bad else 0


def _close(a: str, b: str, tol: float) -> bool:
    try:
        x, y = float(a), float(b)
    except ValueError:
        return False
    return math.isfinite(x) and abs(x - y) <= tol * abs(y)


if __name__ == "__main__":
    raise SystemExit(main())
