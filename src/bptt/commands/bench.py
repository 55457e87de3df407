"""bptt bench: time one forward + backward pass against PyTorch autograd, a naive NumPy transcription of the
tutorial's equations and the GEMM floor (see bptt.bench)."""

from __future__ import annotations

from .. import bench


def add_parser(subparsers):
    p = subparsers.add_parser(
        "bench", help="time forward+backward against PyTorch and the GEMM floor",
        description="Time one forward + backward pass of bptt (NumPy loop and numba kernel) against PyTorch "
                    "autograd, a naive step-by-step NumPy transcription of the tutorial's equations (from a source "
                    "checkout) and the GEMM floor, for five standard sizes A-E (see --config) or any I,H,O,B,T. "
                    "Interleaved repeats, min of repeats.")
    bench.add_arguments(p)
    p.set_defaults(run=run)
    return p


def run(args) -> int:
    return bench.main_args(args, naive=bench.find_naive())
