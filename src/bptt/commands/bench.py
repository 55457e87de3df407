"""bptt bench: time one forward + backward pass against PyTorch autograd, a naive NumPy transcription of the
tutorial's equations and the GEMM floor (see bptt.bench); with --train, one whole training step of
bptt train text against the same loop in PyTorch (see bptt.bench_train)."""

from __future__ import annotations

from .. import bench


def add_parser(subparsers):
    p = subparsers.add_parser(
        "bench", help="time forward+backward (or a training step) against PyTorch",
        description="Time one forward + backward pass of bptt (NumPy loop and numba kernel) against PyTorch "
                    "autograd, a naive step-by-step NumPy transcription of the tutorial's equations (from a source "
                    "checkout) and the GEMM floor, for five standard sizes A-E (see --config) or any I,H,O,B,T. "
                    "Interleaved repeats, min of repeats. "
                    "With --train: one step of bptt train text (batch, forward, backward, clipping, Adam, "
                    "metrics) against the same loop in PyTorch, H=128, B=32, T=50 (uses --cell, --dtype, "
                    "--repeats, --pause, --threads, --only torch,torch-embed, --json, --data, --clock).")
    bench.add_arguments(p)
    p.add_argument("--train", action="store_true",
                   help="time a whole bptt train text step against the same loop in PyTorch")
    p.add_argument("--data", default=None, help="with --train: the text file (default: the built-in text)")
    p.add_argument("--clock", default="wall", choices=("wall", "cpu"),
                   help="with --train: wall (default) or cpu (the process's CPU time; for busy machines, "
                        "with --threads 1)")
    p.set_defaults(run=run)
    return p


def run(args) -> int:
    if args.train:
        from .. import bench_train

        args.repeats = 8 if args.repeats is None else args.repeats
        return bench_train.main_args(args)
    return bench.main_args(args, naive=bench.find_naive())
