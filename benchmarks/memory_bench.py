"""Peak memory and time of full BPTT against memory-budgeted BPTT (``max_states``), issue 6's setting.

    python benchmarks/memory_bench.py                       # T=10000, H=256, B=1, float64, M=100, Elman
    python benchmarks/memory_bench.py --cell lstm --max-states 50 --T 5000

Peak memory is tracemalloc's peak over one call (NumPy reports its buffers to tracemalloc), measured
after a warm-up call so that lazy imports do not count. Times: min over rounds that alternate the two
orders, with a short pause before each call. The gradients of the two are compared too.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from bptt import GRU, LSTM, Elman
from bptt.bench import peak_bytes


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--cell", default="elman", choices=("elman", "lstm", "gru"))
    p.add_argument("--T", type=int, default=10_000)
    p.add_argument("--H", type=int, default=256)
    p.add_argument("--B", type=int, default=1)
    p.add_argument("--max-states", type=int, default=100)
    p.add_argument("--rounds", type=int, default=7)
    a = p.parse_args(argv)
    net = {"elman": Elman, "lstm": LSTM, "gru": GRU}[a.cell](1, a.H, 1, seed=0)
    rng = np.random.default_rng(0)
    X, D = rng.standard_normal((a.T, a.B, 1)), rng.standard_normal((a.T, a.B, 1))
    full = lambda: net.gradients(X, D)  # noqa: E731
    budget = lambda: net.gradients(X, D, max_states=a.max_states)  # noqa: E731
    (E, g), (E2, g2) = full(), budget()  # warm-up, and the comparison
    err = max(float(np.max(np.abs(g[k] - g2[k])) / np.max(np.abs(g[k]))) for k in g if k != "s0")
    pf, pb = peak_bytes(full), peak_bytes(budget)
    best = {"full": np.inf, "budget": np.inf}
    for r in range(a.rounds):
        for name, fn in ((("full", full), ("budget", budget)) if r % 2 else (("budget", budget), ("full", full))):
            time.sleep(0.2)
            t = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - t)
    print(f"{a.cell}, T={a.T}, H={a.H}, B={a.B}, float64, max_states={a.max_states} "
          f"(segments of {-(-a.T // a.max_states)} steps)")
    print(f"peak memory: full {pf / 2**20:.1f} MiB, budgeted {pb / 2**20:.2f} MiB: {pf / pb:.1f}x less")
    print(f"time (min of {a.rounds}): full {best['full'] * 1e3:.0f} ms, budgeted {best['budget'] * 1e3:.0f} ms: "
          f"{best['budget'] / best['full']:.2f}x")
    print(f"gradients: max relative difference {err:.1e}; E {E!r} vs {E2!r}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
