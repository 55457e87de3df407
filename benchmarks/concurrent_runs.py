"""Concurrent-run trials on one run folder (issue 9): a second writer must be refused while the first
runs, and after the first is kill -9'd at a random moment the folder must resume to a whole run.

    python benchmarks/concurrent_runs.py [--trials 10] [--seed 0]

Each trial: start `bptt train` (A) into a fresh folder; at a random moment while it holds the lock, start a
second writer (B: plain, --resume or --force, chosen at random) and check that B exits 2 naming A's PID and
that A's temp files survive; kill -9 A at a random moment; then `bptt train --resume` must finish with exit 0
and a model.npz that loads, a metrics.csv with one row per step 1..N, and no temp file left. Prints one
line per trial and a summary.
"""

from __future__ import annotations

import argparse
import csv
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ARGS = ["train", "adding", "--length", "6", "--batch", "8", "--hidden", "8", "--heldout", "16", "--quiet",
        "--checkpoint-every", "7"]


def bptt(*argv, **kw):
    return [sys.executable, "-m", "bptt", *argv]


def trial(root: Path, rng: random.Random, steps: int) -> str:
    from bptt import files, rundir

    out = root / "run"
    a = subprocess.Popen(bptt(*ARGS, "--steps", str(steps), "--out", str(out)), stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE)
    t0 = time.monotonic()
    while rundir.holder(out) != a.pid:
        if a.poll() is not None or time.monotonic() - t0 > 60:
            return f"FAIL: A never held the lock (exit {a.poll()})"
        time.sleep(0.01)
    time.sleep(rng.uniform(0, 1.0))
    mode = rng.choice([[], ["--resume"], ["--force"]])
    b = subprocess.run(bptt(*ARGS, "--steps", str(steps), "--out", str(out), *mode), capture_output=True, text=True)
    still = a.poll() is None
    if still:
        if b.returncode != 2 or len(b.stderr.splitlines()) != 1:
            return f"FAIL: B {mode} exit {b.returncode}: {b.stderr.strip()[:200]}"
        if not mode and "already holds a run" not in b.stderr and f"PID {a.pid}" not in b.stderr:
            return f"FAIL: B {mode} message {b.stderr.strip()[:200]}"
        if mode and f"PID {a.pid}" not in b.stderr:
            return f"FAIL: B {mode} does not name A's PID: {b.stderr.strip()[:200]}"
    time.sleep(rng.uniform(0, 1.5))
    killed = a.poll() is None
    if killed:
        a.send_signal(signal.SIGKILL)
    a.wait()
    if rundir.holder(out) is not None:
        return "FAIL: the lock outlived A"
    r = subprocess.run(bptt(*ARGS, "--steps", str(steps), "--out", str(out), "--resume"), capture_output=True,
                       text=True)
    if r.returncode != 0:
        return f"FAIL: resume exit {r.returncode}: {r.stderr.strip()[:200]}"
    net = files.load(out / "model.npz")
    rows = [int(row["step"]) for row in csv.DictReader(open(out / "metrics.csv"))]
    if rows != list(range(1, steps + 1)) or net.meta["steps"] != steps:
        return f"FAIL: metrics steps {rows[:3]}...{rows[-3:]} / model steps {net.meta['steps']}"
    if list(out.glob(".*.tmp-*")):
        return "FAIL: temp files left"
    return f"ok (B {' '.join(mode) or 'plain'} {'refused' if still else 'after A ended'}, A {'killed' if killed else 'finished'})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--steps", type=int, default=400)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    results = []
    for i in range(args.trials):
        with tempfile.TemporaryDirectory(prefix="bptt-conc-") as d:
            res = trial(Path(d), rng, args.steps)
        results.append(res)
        print(f"trial {i + 1}: {res}", flush=True)
    bad = [r for r in results if r.startswith("FAIL")]
    print(f"{len(results)} trials, {len(results) - len(bad)} held, {len(bad)} failed")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
