"""Benchmark of one whole training step of ``bptt train text`` against the same loop written the usual
way in PyTorch. Shared by ``bptt bench --train`` and ``benchmarks/train_bench.py``.

A step, on both sides: draw a batch of B windows of T characters (the same windows: both use the text
task's draw from ``default_rng([seed, 1, step])``), forward, backward, the global gradient norm, clipping
to ``clip``, an Adam step, and the metrics row (loss and norm as Python floats, written and flushed to a
CSV file, as ``bptt train`` does every step).

- ``bptt``: the very function ``bptt train`` calls per step (``bptt.train_step.batch_step``), with the
  net, optimiser and task that ``bptt train text`` builds from the same options.
- ``torch`` (one-hot): ``nn.RNN/LSTM/GRU(V, H)`` + ``nn.Linear(H, V)`` in float32 with the same initial
  weights, input ``F.one_hot(codes, V).float()``, ``F.cross_entropy(reduction="sum") / B``,
  ``clip_grad_norm_``, ``torch.optim.Adam``: the same model and the same arithmetic.
- ``torch-embed``: the other usual way, ``nn.Embedding(V, H)`` in front of ``nn.RNN/LSTM/GRU(H, H)``
  (a slightly larger model: an H x H product more per step). The ratio is taken against the faster of
  the two torch variants.

Contenders run interleaved (each round: a pause for the previous contender's BLAS/OpenMP threads to go
idle, then a burst of consecutive steps), and each keeps its minimum step time over the rounds. The
learning-rate schedule is constant on both sides (a schedule is one Python call per step). Nothing here
asserts a time.
"""

from __future__ import annotations

import importlib.util
import math
import os
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np

from .errors import InputError

CELLS = ("elman", "lstm", "gru")
GOALS = {"elman": 1.5, "lstm": 1.0, "gru": 1.0}  # issue 11: torch / bptt at least this, float32
BURST = 0.15  # seconds of consecutive steps per contender and round


def _config(cell: str, dtype: str, data: str | None, hidden: int, batch: int, length: int):
    from .config import resolve

    flags = {"task": "text", "cell": cell, "dtype": dtype, "hidden": hidden, "batch": batch, "length": length,
             "schedule": "constant", "data": data}
    return resolve({}, flags)


def bptt_step_fn(cfg, task, folder: Path):
    """One step of ``bptt train`` (batch mode) per call, on successive step numbers, its metrics row
    going through the run's sink (``bptt.watch.Watch``: metrics.csv written and flushed) into ``folder``.
    Returns (the step function, the sink to close)."""
    from . import train, watch
    from .train_step import batch_step

    net = train.build_net(cfg, task)
    opt = train.build_optimizer(cfg)
    state = {"opt": opt.init(net.params), "step": 0}
    folder.mkdir()
    sink = watch.Watch(folder, train._metrics_columns(cfg), total=10**9, quiet=True).open(None)
    t0 = time.perf_counter()
    split = train.steps_split(net, cfg, task, cfg.batch)  # as bptt train: OpenBLAS on one thread then

    def run():
        with train.one_blas_thread(split):
            r = batch_step(net, task, opt, state["opt"], cfg, state["step"])
        state["opt"] = r.opt_state
        state["step"] += 1
        sink.row({"step": state["step"], "loss": r.loss, "grad_norm": r.norm, "lr": r.lr,
                  "seconds": round(time.perf_counter() - t0, 3)})

    return run, sink


def _codes(task, rng: np.random.Generator, B: int):
    """The task's windows as integer codes (T, B) and targets (T, B), the draw ``task.batch`` makes."""
    return task.batch_codes(rng, B)


def torch_step_fn(cfg, task, threads: int, metrics_file, variant: str = "onehot") -> Callable[[], None] | None:
    """The same step in PyTorch, float32; None without torch."""
    if importlib.util.find_spec("torch") is None:
        return None
    import torch
    import torch.nn.functional as F

    from . import train
    from .interop import to_torch

    torch.set_num_threads(threads)
    torch.manual_seed(cfg.seed)
    net32 = train.build_net(_replace(cfg, dtype="float32"), task)  # the same initial weights, float32
    rnn, lin = to_torch(net32)
    V, H, B = task.n_in, cfg.hidden, cfg.batch
    mods = [rnn, lin]
    emb = None
    if variant == "embed":
        kind = {"elman": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[cfg.cell]
        rnn = kind(H, H)
        emb = torch.nn.Embedding(V, H)
        mods = [emb, rnn, lin]
    params = [p for m in mods for p in m.parameters()]
    opt = torch.optim.Adam(params, lr=cfg.lr)
    state = {"step": 0}
    t0 = time.perf_counter()

    def run():
        codes, D = _codes(task, np.random.default_rng([cfg.seed, 1, state["step"]]), B)
        x, d = torch.from_numpy(codes), torch.from_numpy(D)
        xin = emb(x) if emb is not None else F.one_hot(x, V).to(torch.float32)
        out, _ = rnn(xin)
        z = lin(out)
        loss = F.cross_entropy(z.reshape(-1, V), d.reshape(-1), reduction="sum") / B
        opt.zero_grad(set_to_none=True)
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(params, cfg.clip) if cfg.clip else None
        opt.step()
        state["step"] += 1
        E = loss.item() / codes.shape[0]
        n = norm.item() if norm is not None else 0.0
        metrics_file.write(f"{state['step']},{E:.9g},{n:.9g},{cfg.lr:.9g},{time.perf_counter() - t0:.3f}\n")
        metrics_file.flush()

    return run


def _replace(cfg, **kw):
    import dataclasses

    return dataclasses.replace(cfg, **kw)


CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


def _time(f, clock=time.perf_counter) -> float:
    t = clock()
    f()
    return clock() - t


def bench_cell(cell: str, dtype: str, repeats: int, pause: float, threads: int, data=None, hidden=128,
               batch=32, length=50, contenders=None, clock: str = "wall") -> dict:
    """Interleaved step times of every contender for one cell; returns a row (times in seconds)."""
    from .train import build_task

    clk = CLOCKS[clock]
    cfg = _config(cell, dtype, data, hidden, batch, length)
    task = build_task(cfg)
    with tempfile.TemporaryDirectory() as tmp:
        files = {k: open(Path(tmp) / f"{k}.csv", "w") for k in ("torch", "torch-embed")}
        fn, sink = bptt_step_fn(cfg, task, Path(tmp) / "bptt")
        files["bptt"] = sink.mf
        try:
            fns: dict[str, Callable] = {"bptt": fn}
            for name, variant in (("torch", "onehot"), ("torch-embed", "embed")):
                f = torch_step_fn(cfg, task, threads, files[name], variant)
                if f is not None:
                    fns[name] = f
            if contenders is not None:
                fns = {k: f for k, f in fns.items() if k in contenders or k == "bptt"}
            calls = {}
            for k, f in fns.items():  # warm up (lazy imports, first allocations) and size the bursts
                f()
                f()
                calls[k] = max(1, min(200, int(BURST / max(_time(f), 1e-6))))
            best = {k: math.inf for k in fns}
            for _ in range(repeats):
                for k, f in fns.items():
                    if pause:
                        time.sleep(pause)
                    for _ in range(calls[k]):
                        best[k] = min(best[k], _time(f, clk))
        finally:
            for f in files.values():
                f.close()
    row = {"cell": cell, "dtype": cfg.dtype, "V": task.n_in, "H": cfg.hidden, "B": cfg.batch, "T": task.length,
           "times": best}
    torches = [best[k] for k in ("torch", "torch-embed") if k in best]
    if torches:
        row["torch_ratio"] = min(torches) / best["bptt"]
        if cfg.dtype == "float32":
            row["goal"] = GOALS[cell]
            row["goal_met"] = row["torch_ratio"] >= GOALS[cell]
    return row


def run(cells, dtypes, repeats, pause, data=None, hidden=128, batch=32, length=50, contenders=None,
        progress=None, clock: str = "wall") -> dict:
    from .bench import blas_threads, machine_info

    threads = blas_threads()
    result = {"machine": machine_info(), "threads": threads, "repeats": repeats, "pause": pause, "clock": clock,
              "load": os.getloadavg() if hasattr(os, "getloadavg") else None, "rows": []}
    for cell in cells:
        for dt in dtypes:
            row = bench_cell(cell, dt, repeats, pause, threads, data, hidden, batch, length, contenders, clock)
            result["rows"].append(row)
            if progress is not None:
                progress(row)
    return result


def _ms(t):
    return "-" if t is None or not math.isfinite(t) else f"{t * 1e3:.2f}"


def format_table(result: dict) -> str:
    from .bench import blas_env_note

    m = result["machine"]
    blas = ", ".join(f"{d.get('internal_api')} {d.get('version')} ({d.get('architecture')}, {d.get('num_threads')} threads)"
                     for d in m["blas"] if d.get("internal_api")) or "unknown"
    lines = [f"machine: {m['cpu']}, {m['cores']} cores; numpy {m['numpy']}; BLAS: {blas}; "
             f"torch {m.get('torch', 'not installed')}; {result['threads']} BLAS/torch threads; load average "
             + ("?" if not result.get("load") else " ".join(f"{x:.1f}" for x in result["load"])),
             f"clock: {result['clock']} ({'CPU time of the process, all threads' if result['clock'] == 'cpu' else 'wall'})",
             f"one training step of `bptt train text` (batch, forward, backward, clip, Adam, metrics row), ms; "
             f"min over {result['repeats']} interleaved rounds ({result['pause']:g} s pause, then "
             f"{BURST:g} s of steps); ratio = faster torch / bptt (torch always float32)"] + \
        [n for n in (blas_env_note(m),) if n] + [""]
    head = ["cell", "dtype", "V,H,B,T", "bptt", "torch one-hot", "torch embed", "torch/bptt", "goal"]
    rows = []
    for r in result["rows"]:
        t = r["times"]
        goal = "" if "goal" not in r else f">={r['goal']:g} {'met' if r['goal_met'] else 'NOT met'}"
        rows.append([r["cell"], r["dtype"], f"{r['V']},{r['H']},{r['B']},{r['T']}", _ms(t.get("bptt")),
                     _ms(t.get("torch")), _ms(t.get("torch-embed")),
                     f"{r['torch_ratio']:.2f}" if "torch_ratio" in r else "-", goal])
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows)]
    fmt = lambda cells: "  ".join(str(x).rjust(w) for x, w in zip(cells, widths))  # noqa: E731
    return "\n".join(lines + [fmt(head)] + [fmt(r) for r in rows])


def add_arguments(p) -> None:
    """Options of ``benchmarks/train_bench.py`` (``bptt bench --train`` maps its own onto these)."""
    p.add_argument("--cell", default="elman,lstm,gru", help="comma-separated cells (default elman,lstm,gru)")
    p.add_argument("--dtype", default="float32", help="bptt's dtype: float32, float64 or both (default float32)")
    p.add_argument("--data", default=None, help="text file (default: the built-in text)")
    p.add_argument("--repeats", type=int, default=8, help="interleaved rounds (default 8)")
    p.add_argument("--pause", type=float, default=0.25, help="seconds of sleep before each burst (default 0.25)")
    p.add_argument("--only", default=None, help="contenders besides bptt: torch,torch-embed")
    p.add_argument("--threads", type=int, default=None,
                   help="BLAS and torch threads (default: BLAS's current setting; needs threadpoolctl)")
    p.add_argument("--clock", default="wall", choices=tuple(CLOCKS),
                   help="wall (default) or cpu: the process's CPU time, robust on a busy machine when "
                        "--threads 1")
    p.add_argument("--json", action="store_true", help="print the results as JSON")


def main_args(args, out=print) -> int:
    from .bench import to_json

    cells = [c.strip() for c in args.cell.split(",") if c.strip()]
    if not cells or any(c not in CELLS for c in cells):
        raise InputError(f"--cell: got {args.cell!r}, expected a comma-separated subset of {', '.join(CELLS)}")
    dtypes = [d.strip() for d in args.dtype.split(",") if d.strip()]
    if not dtypes or any(d not in ("float32", "float64") for d in dtypes):
        raise InputError(f"--dtype: got {args.dtype!r}, expected float32, float64 or float32,float64")
    if args.repeats is None or args.repeats < 1:
        raise InputError(f"--repeats: got {args.repeats}, expected an integer >= 1")
    pause = 0.25 if args.pause is None else args.pause
    if not 0 <= pause <= 10:
        raise InputError(f"--pause: got {pause}, expected seconds between 0 and 10")
    contenders = None
    if args.only:
        contenders = {c.strip() for c in args.only.split(",") if c.strip()}
        if not contenders <= {"torch", "torch-embed"}:
            raise InputError(f"--only: got {args.only!r}, expected a subset of torch,torch-embed")
    from .bench import thread_limiter

    limiter = thread_limiter(args.threads)
    try:
        result = run(cells, dtypes, args.repeats, pause, data=args.data, contenders=contenders, clock=args.clock)
    finally:
        if limiter is not None:
            limiter.unregister()
    out(to_json(result) if args.json else format_table(result))
    return 0


__all__ = ["bench_cell", "bptt_step_fn", "format_table", "run", "torch_step_fn"]
