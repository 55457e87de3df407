"""Benchmark of one forward + backward pass: bptt's backends against PyTorch autograd, a naive NumPy
transcription of the seed, and the GEMM floor. Shared by ``bptt bench`` and ``benchmarks/bench.py``.

Every contender gets the same net (weights copied into torch), inputs and loss (squared error on a
linear output, averaged over the batch, at every step). Contenders run interleaved, one call each per
round, and each keeps the minimum over rounds: background load then hits all of them alike and the
minimum is the least disturbed run. In a round each contender gets a pause (``--pause``, default
0.25 s) and then a burst of back-to-back calls lasting about ``BURST`` seconds (at least one call):
OpenBLAS's and OpenMP's worker threads keep spinning for a while after a call returns, and on a 2-core
machine the spinning threads of the previous contender slowed torch by up to 1.8x in our measurements
(config D: 135 ms without a pause, 75 ms with 0.3 s, 74 ms timed alone), while the first call after a
pause finds cold caches and sleeping threads (config A: up to 5x slower), which the burst absorbs.
Nothing here asserts a time.

Contenders (a row per config x cell x dtype):
- ``numpy``: ``Network.gradients(backend="numpy")`` (the generic loop), ``numba``: ``backend="numba"``
  (the compiled loops, when numba is installed; ``backend="auto"``, the default, runs them), ``torch``: nn.RNN/LSTM/GRU + nn.Linear + autograd (when torch is installed;
  its intra-op threads set to BLAS's), ``naive``: the seed transcribed step by step in NumPy (Elman
  only; ``benchmarks/naive_seed.py``, found when running from a source checkout).
- ``floor``: the matrix products BPTT must do, timed alone with NumPy into preallocated outputs: the
  input projection, T recurrent products forward and T backward, the output layer and its backward,
  and the weight-gradient GEMMs. No implementation on this BLAS can beat it by much.
GFLOP/s counts the floor's multiply-adds (x2) over a contender's time; ``peak`` is NumPy's throughput
on one large square product, the machine's practical ceiling.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import platform
import time
from pathlib import Path
from typing import Callable, NamedTuple

import numpy as np

from .errors import InputError

CONFIGS = {  # name: (I, H, O, B, T), the table
    "A": (1, 32, 1, 1, 100),
    "B": (65, 100, 65, 1, 25),
    "C": (32, 128, 32, 32, 100),
    "D": (64, 512, 64, 64, 100),
    "E": (128, 1024, 128, 128, 50),
}
# the goals (issues 6 and 11), float32, per cell: torch time / bptt time at least this; and, for
# Elman, bptt within 1.25x of the floor
GOALS = {"elman": {"A": 10.0, "B": 5.0, "C": 2.0, "D": 1.2, "E": 0.9},
         "lstm": {"A": 3.0, "B": 3.0, "C": 1.0, "D": 1.0, "E": 1.0},
         "gru": {"A": 3.0, "B": 3.0, "C": 1.0, "D": 1.0, "E": 1.0}}
FLOOR_GOAL = {"elman": {"C": 1.25, "D": 1.25, "E": 1.25}}
CELLS = ("elman", "lstm", "gru")
GATES = {"elman": 1, "lstm": 4, "gru": 3}
BURST = 0.05  # seconds of back-to-back calls per contender and round


class Config(NamedTuple):
    name: str
    I: int
    H: int
    O: int
    B: int
    T: int


def parse_config(text: str) -> list[Config]:
    """'A' / 'A,C,E' (names from CONFIGS) or 'I,H,O,B,T' (five positive integers)."""
    parts = [p.strip() for p in str(text).split(",") if p.strip()]
    if parts and all(p.upper() in CONFIGS for p in parts):
        return [Config(p.upper(), *CONFIGS[p.upper()]) for p in parts]
    try:
        nums = [int(p) for p in parts]
    except ValueError:
        nums = []
    if len(nums) != 5 or min(nums) < 1:
        raise InputError(f"--config: got {text!r}, expected config names from {', '.join(CONFIGS)} "
                         "(e.g. A,C) or five positive integers I,H,O,B,T (e.g. 32,128,32,32,100)")
    return [Config("custom", *nums)]


def gemm_flops(c: Config, cell: str = "elman") -> int:
    """Multiply-adds x 2 of the products one forward + backward pass must do (see ``floor``)."""
    G = GATES[cell] * c.H
    TB = c.T * c.B
    mac = (TB * c.I * G  # input projection
           + TB * c.H * G  # recurrent products, forward
           + TB * c.H * c.O  # output layer
           + TB * c.O * c.H  # dE/dh from the output layer
           + TB * G * c.H  # recurrent products, backward
           + G * TB * c.H  # dW_rec
           + G * TB * c.I  # dW_in
           + c.O * TB * c.H)  # dWy
    return 2 * mac


def floor_fn(c: Config, cell: str, dtype) -> Callable[[], None]:
    """The GEMM floor: every product of ``gemm_flops`` at its real shapes, into preallocated outputs."""
    rng = np.random.default_rng(0)
    G = GATES[cell] * c.H
    TB = c.T * c.B
    r = lambda *s: rng.standard_normal(s).astype(dtype)  # noqa: E731
    X, Hs, dG, dZ = r(TB, c.I), r(TB, c.H), r(TB, G), r(TB, c.O)
    WinT, WrecT, Wrec, WyT, Wy = r(c.I, G), r(c.H, G), r(G, c.H), r(c.H, c.O), r(c.O, c.H)
    h, g = r(c.B, c.H), r(c.B, G)
    o_G, o_H, o_TBG, o_TBO, o_TBH = (np.empty(s, dtype) for s in ((c.B, G), (c.B, c.H), (TB, G), (TB, c.O), (TB, c.H)))
    o_GH, o_GI, o_OH = np.empty((G, c.H), dtype), np.empty((G, c.I), dtype), np.empty((c.O, c.H), dtype)
    mm = np.matmul

    def run():
        mm(X, WinT, out=o_TBG)
        for _ in range(c.T):
            mm(h, WrecT, out=o_G)
        mm(Hs, WyT, out=o_TBO)
        mm(dZ, Wy, out=o_TBH)
        for _ in range(c.T):
            mm(g, Wrec, out=o_H)
        mm(dG.T, Hs, out=o_GH)
        mm(dG.T, X, out=o_GI)
        mm(dZ.T, Hs, out=o_OH)

    return run


def peak_bytes(fn) -> int:
    """Peak bytes that Python and NumPy allocate while ``fn()`` runs (tracemalloc)."""
    import tracemalloc

    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def peak_gflops(n: int, dtype, repeats: int = 3) -> float:
    """NumPy's GFLOP/s on one n x n x n product (the machine's practical ceiling)."""
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((n, n)).astype(dtype), rng.standard_normal((n, n)).astype(dtype)
    out = np.empty((n, n), dtype)
    np.matmul(a, b, out=out)
    best = min(_time(lambda: np.matmul(a, b, out=out)) for _ in range(repeats))
    return 2 * n**3 / best / 1e9


def _time(f) -> float:
    t = time.perf_counter()
    f()
    return time.perf_counter() - t


def make_data(c: Config, dtype, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((c.T, c.B, c.I)).astype(dtype)
    D = rng.standard_normal((c.T, c.B, c.O)).astype(dtype)
    return X, D


def make_net(c: Config, cell: str, dtype):
    from .network import GRU, LSTM, Elman

    cls = {"elman": Elman, "lstm": LSTM, "gru": GRU}[cell]
    return cls(c.I, c.H, c.O, dtype=dtype, seed=0)


def train_step_fn(net, X, D, backend: str):
    """One training step in bptt: gradients, then Adam (lr 1e-3) on every parameter."""
    from .optim import adam

    opt = adam(1e-3)
    state = [opt.init(net.params)]

    def run():
        _, g = net.gradients(X, D, backend=backend)
        del g["s0"]
        net.params, state[0] = opt.update(net.params, g, state[0])

    return run


def torch_fn(net, X, D, threads: int, train_step: bool = False):
    """One forward + backward of the same net in torch (autograd), followed by torch.optim.Adam's step
    when ``train_step``; None without torch."""
    if importlib.util.find_spec("torch") is None:
        return None
    import torch

    torch.set_num_threads(threads)
    from .interop import to_torch

    rnn, lin = to_torch(net)
    params = list(rnn.parameters()) + list(lin.parameters())
    Xt, Dt = torch.from_numpy(X), torch.from_numpy(D)
    B = X.shape[1]
    opt = torch.optim.Adam(params, lr=1e-3) if train_step else None

    def run():
        for q in params:
            q.grad = None
        out, _ = rnn(Xt)
        E = ((lin(out) - Dt) ** 2).sum() / B
        E.backward()
        if opt is not None:
            opt.step()

    return run


def find_naive():
    """benchmarks/naive_seed.py of a source checkout, imported by path; None when absent."""
    path = Path(__file__).resolve().parents[2] / "benchmarks" / "naive_seed.py"
    if not path.is_file():
        return None
    spec = importlib.util.spec_from_file_location("bptt_naive_seed", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def blas_info() -> list[dict]:
    """threadpoolctl's view of the BLAS / OpenMP libraries loaded (empty without threadpoolctl)."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return []
    keep = ("internal_api", "version", "num_threads", "architecture", "threading_layer", "prefix")
    return [{k: d.get(k) for k in keep} for d in threadpool_info()]


def blas_threads() -> int:
    for d in blas_info():
        if d.get("internal_api") in ("openblas", "mkl", "blis") and d.get("num_threads"):
            return int(d["num_threads"])
    return os.cpu_count() or 1


def machine_info() -> dict:
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info = {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(), "numpy": np.__version__,
            "blas": blas_info(), "env": {k: os.environ[k] for k in sorted(os.environ)
                                         if k.startswith(("OPENBLAS", "OMP_", "MKL_"))}}
    for mod in ("torch", "numba"):
        if importlib.util.find_spec(mod) is not None:
            info[mod] = importlib.import_module(mod).__version__
    return info


def blas_env_note(m: dict) -> str | None:
    """A line for the tables when the environment overrides OpenBLAS's kernel choice (OPENBLAS_CORETYPE):
    every NumPy product then runs that kernel whatever the CPU (on the AVX-512 machine of our figures,
    Haswell's AVX2 kernels ran float32 GEMMs at about half the speed of OpenBLAS's own choice, SkylakeX),
    while torch's oneDNN kernels are not affected: the ratios then say more about the override than
    about bptt."""
    core = m.get("env", {}).get("OPENBLAS_CORETYPE")
    if not core:
        return None
    return (f"note: OPENBLAS_CORETYPE={core} is set, so OpenBLAS runs its {core} kernels on this CPU (torch's are not "
            "affected); for the kernel OpenBLAS picks itself run: env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE bptt bench ...")


def bench_case(c: Config, cell: str, dtype, repeats: int, threads: int, naive=None, contenders=None,
               pause: float = 0.0, train_step: bool = False) -> dict:
    """Time every available contender on one case, interleaved; returns a row (times in seconds).
    ``train_step``: bptt and torch also apply an Adam step (naive and floor stay forward + backward)."""
    dtype = np.dtype(dtype)
    net = make_net(c, cell, dtype)
    X, D = make_data(c, dtype)
    grad = (lambda backend: train_step_fn(net, X, D, backend)) if train_step else \
        (lambda backend: lambda: net.gradients(X, D, backend=backend))
    fns: dict[str, Callable] = {"numpy": grad("numpy")}
    from . import fast

    if fast.numba_available():
        # without NumPy's BLAS the compiled loops fall back to triple loops: far above auto's threshold
        # they only lose and take seconds per call, so they are timed there only when asked for (--only)
        big = not fast.blas_available() and fast.work_per_step(net, c.B) > 10 * fast.AUTO_MAX_WORK
        if not big or (contenders and "numba" in contenders):
            fns["numba"] = grad("numba")
    tf = torch_fn(net, X, D, threads, train_step)
    if tf is not None:
        fns["torch"] = tf
    if naive is not None and cell == "elman":
        fns["naive"] = lambda: naive.forward_backward(net.params, X, D, g1="tanh")
    fns["floor"] = floor_fn(c, cell, dtype)
    if contenders is not None:
        fns = {k: f for k, f in fns.items() if k in contenders or k == "floor"}
    calls = {}
    for k, f in fns.items():  # warm up (compile, allocate, load), and size the bursts
        f()
        calls[k] = max(1, min(1000, int(BURST / max(_time(f), 1e-6))))
    best = {k: math.inf for k in fns}
    for _ in range(repeats):
        for k, f in fns.items():
            if pause:
                time.sleep(pause)  # let the previous contender's worker threads go idle
            for _ in range(calls[k]):
                best[k] = min(best[k], _time(f))
    flops = gemm_flops(c, cell)
    row = {"config": c.name, "I": c.I, "H": c.H, "O": c.O, "B": c.B, "T": c.T, "cell": cell,
           "dtype": dtype.name, "mode": "train step" if train_step else "forward+backward", "times": best,
           "gemm_flops": flops,
           "gflops": {k: flops / v / 1e9 for k, v in best.items()}}
    bptt = {k: best[k] for k in ("numpy", "numba") if k in best}
    row["bptt_best"] = min(bptt, key=bptt.get)
    tb = bptt[row["bptt_best"]]
    row["vs_floor"] = tb / best["floor"]
    if "torch" in best:
        row["torch_ratio"] = best["torch"] / tb
    if "naive" in best:
        row["naive_ratio"] = best["naive"] / tb
    goal, floor_goal = GOALS[cell].get(c.name), FLOOR_GOAL.get(cell, {}).get(c.name)
    if dtype == np.float32 and goal is not None and "torch_ratio" in row and not train_step:
        row["goal"] = goal
        row["goal_met"] = row["torch_ratio"] >= goal
    if dtype == np.float32 and floor_goal is not None and not train_step:
        row["floor_goal"] = floor_goal
        row["floor_goal_met"] = row["vs_floor"] <= floor_goal
    return row


def run(configs, cells, dtypes, repeats, naive=None, quick=False, progress=None, contenders=None,
        pause: float = 0.0, train_step: bool = False) -> dict:
    """All rows plus machine info and NumPy's peak GFLOP/s per dtype."""
    threads = blas_threads()
    result = {"machine": machine_info(), "threads": threads, "repeats": repeats, "pause": pause,
              "peak_gflops": {}, "rows": []}
    for dt in dtypes:
        n = 256 if quick else 2048
        result["peak_gflops"][np.dtype(dt).name] = {"n": n, "gflops": peak_gflops(n, dt, 2 if quick else 3)}
    for c in configs:
        for cell in cells:
            for dt in dtypes:
                row = bench_case(c, cell, dt, repeats, threads, naive, contenders, pause, train_step)
                result["rows"].append(row)
                if progress is not None:
                    progress(row)
    return result


def _ms(t):
    return "-" if t is None else f"{t * 1e3:.3f}" if t < 0.01 else f"{t * 1e3:.2f}" if t < 1 else f"{t * 1e3:.0f}"


def format_table(result: dict) -> str:
    m = result["machine"]
    blas = ", ".join(f"{d.get('internal_api')} {d.get('version')} ({d.get('architecture')}, "
                     f"{d.get('num_threads')} threads)" for d in m["blas"] if d.get("internal_api")) \
        or "unknown (threadpoolctl not installed)"
    lines = [f"machine: {m['cpu']}, {m['cores']} cores; numpy {m['numpy']}; BLAS: {blas}; "
             f"torch {m.get('torch', 'not installed')}; numba {m.get('numba', 'not installed')}",
             "peak matmul: " + ", ".join(f"{k} {v['gflops']:.0f} GFLOP/s at {v['n']}^3"
                                         for k, v in result["peak_gflops"].items()),
             f"times in ms, min over {result['repeats']} interleaved rounds (each: {result['pause']:g} s pause, then "
             f"{BURST:g} s of calls); "
             "ratio = torch / best bptt; floor = the GEMMs alone (NumPy)"] + \
        [n for n in (blas_env_note(m),) if n] + [""]
    head = ["cfg", "I,H,O,B,T", "cell", "dtype", "mode", "numpy", "numba", "torch", "naive", "floor", "GF/s",
            "torch/bptt", "goal", "bptt/floor", "naive/bptt"]
    rows = []
    for r in result["rows"]:
        t = r["times"]
        goal = "-" if "goal" not in r else f">={r['goal']:g} {'met' if r['goal_met'] else 'NOT met'}"
        fl = f"{r['vs_floor']:.2f}" + ("" if "floor_goal" not in r else " ok" if r["floor_goal_met"] else " over")
        rows.append([r["config"], f"{r['I']},{r['H']},{r['O']},{r['B']},{r['T']}", r["cell"], r["dtype"],
                     "train" if r["mode"] == "train step" else "fwd+bwd",
                     _ms(t.get("numpy")), _ms(t.get("numba")), _ms(t.get("torch")), _ms(t.get("naive")),
                     _ms(t.get("floor")), f"{r['gflops'][r['bptt_best']]:.1f}",
                     f"{r['torch_ratio']:.2f}" if "torch_ratio" in r else "-", goal, fl,
                     f"{r['naive_ratio']:.1f}" if "naive_ratio" in r else "-"])
    if not any("goal" in r for r in result["rows"]):  # goals are set for float32 fwd+bwd against torch only
        i = head.index("goal")
        head, rows = head[:i] + head[i + 1:], [r[:i] + r[i + 1:] for r in rows]
    else:
        lines.insert(-1, "goal: the torch/bptt ratio bptt aims for (float32, fwd+bwd, standard sizes A-E)")
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows)]
    fmt = lambda cells: "  ".join(str(x).rjust(w) for x, w in zip(cells, widths))  # noqa: E731
    lines += [fmt(head)] + [fmt(r) for r in rows]
    return "\n".join(lines)


def to_json(result: dict) -> str:
    def clean(v):
        if isinstance(v, float) and not math.isfinite(v):
            return None
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items()}
        if isinstance(v, list):
            return [clean(x) for x in v]
        if isinstance(v, (np.floating, np.integer, np.bool_)):
            return v.item()
        return v
    return json.dumps(clean(result), indent=2)


def add_arguments(p) -> None:
    """The options of ``bptt bench`` and ``benchmarks/bench.py``."""
    p.add_argument("--config", action="append", metavar="SPEC",
                   help="config names A-E (comma-separated, e.g. A,C) or I,H,O,B,T; repeatable. Default: A-E")
    p.add_argument("--cell", default="elman", help="comma-separated cells: elman, lstm, gru (default elman)")
    p.add_argument("--dtype", default="float32", help="float32, float64 or float32,float64 (default float32)")
    p.add_argument("--repeats", type=int, default=None, help="interleaved rounds per case (default 10, 3 with --quick)")
    p.add_argument("--threads", type=int, default=None,
                   help="BLAS and torch threads (default: BLAS's current setting; needs threadpoolctl to change)")
    p.add_argument("--only", default=None, help="comma-separated contenders to time: numpy,numba,torch,naive")
    p.add_argument("--pause", type=float, default=None,
                   help="seconds of sleep before each timed call, so that worker threads of the previous "
                        "contender stop spinning (default 0.25, 0 with --quick)")
    p.add_argument("--train-step", action="store_true",
                   help="time a full training step (bptt: gradients + Adam; torch: backward + torch.optim.Adam)")
    p.add_argument("--quick", action="store_true", help="small configs, few repeats: finishes in seconds")
    p.add_argument("--json", action="store_true", help="print the results as JSON instead of a table")


def main_args(args, naive=None, out=print) -> int:
    if args.quick and not args.config:
        configs = [Config("quick-a", 1, 8, 1, 1, 10), Config("quick-b", 4, 16, 3, 2, 8)]
    else:
        configs = [c for spec in (args.config or ["A,B,C,D,E"]) for c in parse_config(spec)]
    cells = [c.strip() for c in args.cell.split(",") if c.strip()]
    bad = [c for c in cells if c not in CELLS]
    if bad or not cells:
        raise InputError(f"--cell: got {args.cell!r}, expected a comma-separated subset of {', '.join(CELLS)}")
    dtypes = [d.strip() for d in args.dtype.split(",") if d.strip()]
    if not dtypes or any(d not in ("float32", "float64") for d in dtypes):
        raise InputError(f"--dtype: got {args.dtype!r}, expected float32, float64 or float32,float64")
    repeats = args.repeats if args.repeats is not None else (3 if args.quick else 10)
    if repeats < 1:
        raise InputError(f"--repeats: got {repeats}, expected an integer >= 1")
    pause = args.pause if args.pause is not None else (0.0 if args.quick else 0.25)
    if not 0 <= pause <= 10:
        raise InputError(f"--pause: got {pause}, expected seconds between 0 and 10")
    contenders = None
    if args.only:
        contenders = {c.strip() for c in args.only.split(",") if c.strip()}
        if not contenders <= {"numpy", "numba", "torch", "naive"}:
            raise InputError(f"--only: got {args.only!r}, expected a subset of numpy,numba,torch,naive")
        contenders.add("numpy")  # ratios are against bptt
    limiter = thread_limiter(args.threads)
    try:
        result = run(configs, cells, dtypes, repeats, naive=naive, quick=args.quick, contenders=contenders,
                     pause=pause, train_step=args.train_step)
    finally:
        if limiter is not None:
            limiter.unregister()
    out(to_json(result) if args.json else format_table(result))
    return 0


def thread_limiter(threads: int | None):
    """``--threads N``: a threadpoolctl limit on BLAS's threads (None: leave them), for ``bptt bench``
    and ``bptt bench --train``; call ``.unregister()`` on it when done."""
    if threads is None:
        return None
    if threads < 1:
        raise InputError(f"--threads: got {threads}, expected an integer >= 1")
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        raise InputError("--threads needs threadpoolctl: pip install threadpoolctl "
                         "(or set OPENBLAS_NUM_THREADS before starting)") from None
    return threadpool_limits(threads)
