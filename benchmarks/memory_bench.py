"""Peak memory and time of full BPTT against memory-budgeted BPTT (``max_states``), issue 6's setting.

    python benchmarks/memory_bench.py                       # T=10000, H=256, B=1, float64, M=100, Elman
    python benchmarks/memory_bench.py --cell lstm --max-states 50 --T 5000
    python benchmarks/memory_bench.py --bound hard --clock cpu

Peak memory is tracemalloc's peak over one call (NumPy reports its buffers to tracemalloc), measured
after a warm-up call so that lazy imports do not count. Times: min over rounds that rotate the order of
the contenders, with a short pause before each call. The contenders: full BPTT, the budgeted call, and
one forward pass (``net.loss``: input projection, recurrence, output layer and loss, on the NumPy loop: the
pass the budgeted call recomputes), the yardstick of issue 11's goal: budgeted <= full + 1.1 x forward.
Full BPTT runs on the NumPy loop, the loop the budgeted call runs on (the compiled loops, the default for
full BPTT, are faster still, but hold every state, and their buffers are numba's or reused between calls,
which tracemalloc does not see). The gradients of full and budgeted are compared too.
``--clock cpu`` times the process's CPU time instead of the wall clock (for a busy machine, with
OPENBLAS_NUM_THREADS=1).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from bptt import GRU, LSTM, Elman, memory
from bptt.bench import peak_bytes


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--cell", default="elman", choices=("elman", "lstm", "gru"))
    p.add_argument("--T", type=int, default=10_000)
    p.add_argument("--H", type=int, default=256)
    p.add_argument("--B", type=int, default=1)
    p.add_argument("--max-states", type=int, default=100)
    p.add_argument("--bound", default="soft", choices=memory.BOUNDS)
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--clock", default="wall", choices=("wall", "cpu"))
    a = p.parse_args(argv)
    clock = time.perf_counter if a.clock == "wall" else time.process_time
    net = {"elman": Elman, "lstm": LSTM, "gru": GRU}[a.cell](1, a.H, 1, seed=0)
    rng = np.random.default_rng(0)
    X, D = rng.standard_normal((a.T, a.B, 1)), rng.standard_normal((a.T, a.B, 1))
    counter = memory.StateCounter()
    fns = {"full": lambda: net.gradients(X, D, backend="numpy"),
           "budget": lambda: net.gradients(X, D, max_states=a.max_states, bound=a.bound),
           "forward": lambda: net.loss(X, D, backend="numpy")}
    (E, g) = fns["full"]()
    E2, g2 = memory.gradients(net, X, D, max_states=a.max_states, bound=a.bound, counter=counter)
    err = max(float(np.max(np.abs(g[k] - g2[k])) / np.max(np.abs(g[k]))) for k in g if k != "s0")
    pf, pb = peak_bytes(fns["full"]), peak_bytes(fns["budget"])
    best = dict.fromkeys(fns, np.inf)
    names = list(fns)
    for r in range(a.rounds):
        for name in names[r % 3:] + names[: r % 3]:
            time.sleep(0.2)
            t = clock()
            fns[name]()
            best[name] = min(best[name], clock() - t)
    extra = (best["budget"] - best["full"]) / best["forward"]
    plan = (f"segments of {-(-a.T // a.max_states)} steps" if a.bound == "soft" else
            "levels, pieces, bottom steps = {} ".format(memory.hard_plan(a.T, a.max_states)) +
            f"; states held at most {counter.peak} (counted)")
    print(f"{a.cell}, T={a.T}, H={a.H}, B={a.B}, float64, max_states={a.max_states}, bound={a.bound} ({plan})")
    print(f"peak memory: full {pf / 2**20:.1f} MiB, budgeted {pb / 2**20:.2f} MiB: {pf / pb:.1f}x less")
    print(f"time ({a.clock} clock, min of {a.rounds}): full {best['full'] * 1e3:.0f} ms, budgeted "
          f"{best['budget'] * 1e3:.0f} ms ({best['budget'] / best['full']:.2f}x), one forward pass "
          f"{best['forward'] * 1e3:.0f} ms: budgeted = full + {extra:.2f} x forward")
    print(f"gradients: max relative difference {err:.1e}; E {E!r} vs {E2!r}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
