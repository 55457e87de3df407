"""Benchmark bptt against PyTorch autograd, a naive NumPy transcription of the seed, and the GEMM floor.

    python benchmarks/bench.py                      # configs A-E, Elman, float32 (the issue's table)
    python benchmarks/bench.py --config 32,128,32,32,100 --cell elman,lstm,gru --dtype float32,float64
    python benchmarks/bench.py --quick --json

The same code as ``bptt bench`` (``bptt.bench``); this script passes it ``naive_seed.py`` from this
folder. Times are the minimum over interleaved repeats, so background load affects every contender alike;
close other programs for stable numbers. For OpenBLAS's best kernel, run without OPENBLAS_CORETYPE /
OPENBLAS_L2_SIZE overrides (``env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench.py``)
and check the "BLAS" line of the output (threadpoolctl shows the kernel in use).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import naive_seed  # noqa: E402

from bptt import bench  # noqa: E402
from bptt.errors import BPTTError  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    bench.add_arguments(p)
    args = p.parse_args(argv)
    try:
        return bench.main_args(args, naive=naive_seed)
    except BPTTError as e:
        print(f"bench: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
