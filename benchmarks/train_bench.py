"""One training step of ``bptt train text`` (data batch, forward, backward, clipping, Adam, metrics row)
against the same loop written the usual way in PyTorch, H=128, B=32, T=50, from the same run.

    python benchmarks/train_bench.py                         # elman, lstm, gru; float32; wall clock
    python benchmarks/train_bench.py --dtype float32,float64 --threads 1 --clock cpu   # on a busy machine

The same code as ``bptt bench --train`` (module ``bptt.bench_train``; see its docstring for the rules).
"""

from __future__ import annotations

import argparse
import sys

from bptt import bench_train
from bptt.errors import InputError


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    bench_train.add_arguments(p)
    try:
        return bench_train.main_args(p.parse_args(argv))
    except InputError as e:
        print(f"train_bench: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
