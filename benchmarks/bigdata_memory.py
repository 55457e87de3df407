"""Peak RSS of `bptt train text` and `bptt evaluate` on a big text file (issue 9: goal <= 3x its size).

    python benchmarks/bigdata_memory.py [--mb 200] [--keep DIR]

Writes an ASCII text of --mb megabytes (words drawn from a seeded generator), trains a small character
model on it for a few steps and evaluates it, each command in its own process measured by /usr/bin/time -v
("Maximum resident set size"; without /usr/bin/time: resource.getrusage of a wrapper process). Prints one
line per command: peak RSS, its ratio to the file size, wall time. Time is reported, never asserted.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

WORDS = ("the of and to in is that for it as with was on be by this are or from at an which not have "
         "but all they one had were can there been if more when will would so no what up out about into "
         "than them only other new some could time these two may first then do any like my now over such "
         "our man me even most made after also did many before must through back years where much your way "
         "well down should because each just those people how too little state good very make world still "
         "own see men work long get here between both life being under never day same another know while "
         "last might us great old year off come since against go came right used take three").split()


def write_text(path: Path, mb: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    vocab = np.array([w + " " for w in WORDS] + [w + ". " for w in WORDS[:20]] + [w + ",\n" for w in WORDS[:10]])
    target = mb * 10**6
    with open(path, "w", encoding="ascii") as f:
        written = 0
        while written < target:
            chunk = "".join(vocab[rng.integers(0, len(vocab), 200_000)])
            f.write(chunk[: target - written])
            written += min(len(chunk), target - written)


def peak_rss(argv: list[str]) -> tuple[int, float]:
    """(peak RSS in bytes, wall seconds) of argv run in a fresh process."""
    t0 = time.perf_counter()
    if shutil.which("time") or os.path.exists("/usr/bin/time"):
        r = subprocess.run(["/usr/bin/time", "-v", *argv], capture_output=True, text=True)
        wall = time.perf_counter() - t0
        if r.returncode != 0:
            sys.exit(f"failed: {' '.join(argv)}\n{r.stderr[-2000:]}")
        kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", r.stderr).group(1))
        return kb * 1024, wall
    code = ("import resource, subprocess, sys; r = subprocess.run(sys.argv[1:]); "
            "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); sys.exit(r.returncode)")
    r = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if r.returncode != 0:
        sys.exit(f"failed: {' '.join(argv)}\n{r.stderr[-2000:]}")
    return int(r.stdout.split()[-1]) * 1024, wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=int, default=200, help="size of the text in MB (default 200)")
    ap.add_argument("--keep", help="work in this folder and keep it (default: a temporary one)")
    args = ap.parse_args()
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bptt-bigdata-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        text = work / "big.txt"
        if not text.exists() or text.stat().st_size != args.mb * 10**6:
            write_text(text, args.mb)
        size = text.stat().st_size
        run = work / "run"
        py = [sys.executable, "-m", "bptt"]
        cmds = {
            "train text": py + ["train", "text", "--data", str(text), "--out", str(run), "--force", "--steps", "20",
                                "--hidden", "32", "--length", "50", "--batch", "16", "--heldout", "64", "--quiet"],
            "evaluate": py + ["evaluate", str(run), "--heldout", "64", "--json"],
        }
        print(f"text: {size / 1e6:.0f} MB ({size} bytes), python {sys.version.split()[0]}, numpy {np.__version__}")
        for name, argv in cmds.items():
            rss, wall = peak_rss(argv)
            print(f"{name:>12}: peak RSS {rss / 2**20:8.1f} MiB = {rss / size:.2f} x the file; {wall:.1f} s wall")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
