"""Does `bptt train TASK` with its defaults solve the task, and how long does it take?

Runs each task's defaults in a fresh folder (one at a time, so the timings are not shared), reads the
held-out result that train stores in model.npz, and prints a table: the task, the resolved cell, H and
steps, wall time, solved, and the task's figure against its baseline. The issue's goal: every
synthetic task solved (solved >= 0.9 here) within about two minutes on 2 cores, and the series
default beating the last-value forecast on the shipped airline series.

    python benchmarks/task_defaults.py                 # adding, sine, copy, order, series (airline)
    python benchmarks/task_defaults.py --tasks copy --json
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TASKS = ("adding", "sine", "copy", "order", "series")
SOLVED = 0.9  # what counts as "solved by the defaults" in this table


def run_task(task: str, root: Path) -> dict:
    from bptt import files
    from bptt.evaluate import VERDICTS

    out = root / task
    argv = [sys.executable, "-m", "bptt", "train", task, "--out", str(out), "--quiet"]
    if task == "series":
        from bptt.data import builtin_series
        argv += ["--data", str(builtin_series("airline"))]
    t0, c0 = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
    r = subprocess.run(argv, capture_output=True, text=True)
    wall, c1 = time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (c1.ru_utime - c0.ru_utime) + (c1.ru_stime - c0.ru_stime)  # all threads: >= wall on a quiet machine
    if r.returncode != 0:
        return {"task": task, "error": r.stderr.strip().splitlines()[-1] if r.stderr.strip() else r.returncode}
    meta = files.load(out / "model.npz").meta
    res, cfg = meta["heldout"], meta["train"]
    key, base_key, _ = VERDICTS[task][1]
    return {"task": task, "cell": cfg["cell"], "hidden": cfg["hidden"], "steps": cfg["steps"],
            "length": meta["task"].get("length", meta["task"].get("delay")), "wall_s": round(wall, 1), "cpu_s": round(cpu, 1),
            "solved": res["solved"], "metric": key, "value": res[key], "baseline": res[base_key],
            "ok": (res[key] < res[base_key]) if task == "series" else res["solved"] >= SOLVED}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tasks", default=",".join(TASKS), help="comma-separated (default: all five)")
    ap.add_argument("--json", action="store_true", help="one JSON object per task")
    args = ap.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for task in args.tasks.split(","):
            rows.append(run_task(task.strip(), Path(tmp)))
            if args.json:
                print(json.dumps(rows[-1]), flush=True)
    if not args.json:
        print("| task | cell | H | length | steps | wall s | CPU s | solved | figure vs baseline | goal met |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        for r in rows:
            if "error" in r:
                print(f"| {r['task']} | error: {r['error']} |")
                continue
            print(f"| {r['task']} | {r['cell']} | {r['hidden']} | {r['length']} | {r['steps']} | {r['wall_s']} | {r['cpu_s']} | "
                  f"{r['solved']:.3f} | {r['metric']} {r['value']:.4g} vs {r['baseline']:.4g} | "
                  f"{'yes' if r['ok'] else 'no'} |")
    return 0 if all(r.get("ok") for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
