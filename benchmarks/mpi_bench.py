"""Data-parallel training throughput over MPI ranks on one machine, and the allreduce's share of a step.

    python benchmarks/mpi_bench.py                       # text, Elman H=256, B=128, T=50, float64; R = 1 and 2
    python benchmarks/mpi_bench.py --ranks 1,2,4 --cell lstm --hidden 128 --steps 10

Each R runs the training step of ``bptt train`` (``bptt.parallel.DataParallel``: this rank's columns of
the step's batch, forward + backward with the ordinary time loop, THE allreduce of the flat gradient
buffer, clipping and Adam) with one BLAS thread per rank (OPENBLAS_NUM_THREADS=1 and friends), R = 1 as
one plain process, R > 1 under ``mpiexec -n R``. Per step it times: compute (batch + forward + backward),
wait (a barrier before the allreduce: the slowest rank's lead, i.e. load imbalance and machine noise),
allreduce (the collective itself) and update. Reported: median step time, sequences/s, speed-up over
R = 1, and the allreduce's share of the step. Needs the [mpi] extra for R > 1.

The machine's load average is printed before and after: on a shared machine other processes take cores
from the ranks, and the figures say so.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time

THREADS = {k: "1" for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")}


def worker(args) -> None:
    import numpy as np

    from bptt import train_step
    from bptt.comm import world
    from bptt.config import resolve
    from bptt.parallel import DataParallel
    from bptt.train import build_net, build_optimizer, build_task

    comm = world()
    fields = {"task": "text", "cell": args.cell, "hidden": args.hidden, "batch": args.batch, "dtype": args.dtype}
    if args.length:
        fields["length"] = args.length
    cfg = resolve({}, fields)
    task = build_task(cfg)
    net = build_net(cfg, task)
    opt = build_optimizer(cfg)
    state = opt.init(net.params)
    dp = DataParallel(comm, cfg.batch)
    codes = train_step.uses_codes(task, cfg)  # as bptt train feeds the net
    times = []
    for step in range(args.warmup + args.steps):
        t0 = time.perf_counter()
        X, D = dp.columns(*train_step.batch_data(task, cfg, step, codes))
        E, g = net.gradients(X, D, loss=task.loss, at=task.at)
        g.pop("s0", None)
        t1 = time.perf_counter()
        comm.barrier()
        t2 = time.perf_counter()
        E, g, _ = dp.reduce(E, g, False)
        t3 = time.perf_counter()
        state, _, _ = train_step.update(net, g, E, opt, state, cfg.clip, step=step, lr_flag=cfg.lr, last_good=0,
                                        ckpt="-")
        t4 = time.perf_counter()
        if step >= args.warmup:
            times.append((t1 - t0, t2 - t1, t3 - t2, t4 - t3, t4 - t0))
    dp.check_same(net.params, 0, force=True)
    everyone = comm.gather(times)
    if comm.is_root:
        n_floats = sum(a.size for a in net.params.values())
        per_rank = np.array(everyone)  # (R, steps, 5)
        step_t = per_rank[..., 4].max(axis=0)  # a step ends when the slowest rank ends it
        med = {name: float(np.median(per_rank[..., i].mean(axis=0))) for i, name in
               enumerate(("compute", "wait", "allreduce", "update"))}
        print(json.dumps({"R": comm.size, "step": float(np.median(step_t)), **med, "floats": int(n_floats),
                          "T": task.length, "B": cfg.batch, "H": cfg.hidden, "V": task.n_in}))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--ranks", default="1,2", help="comma-separated R (default 1,2)")
    p.add_argument("--cell", default="elman")
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--length", type=int, default=None, help="T (default: the text task's, 50)")
    p.add_argument("--dtype", default="float64")
    p.add_argument("--steps", type=int, default=12, help="timed steps per R (default 12)")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        worker(args)
        return 0
    ranks = [int(r) for r in args.ranks.split(",")]
    mpiexec = shutil.which("mpiexec", path=os.path.dirname(sys.executable)) or shutil.which("mpiexec")
    passed = [a for a in (argv if argv is not None else sys.argv[1:]) if not a.startswith("--ranks")]
    env = {**os.environ, **THREADS}
    print(f"cores: {os.cpu_count()}; load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    rows = []
    for R in ranks:
        cmd = [sys.executable, __file__, "--worker", *passed]
        if R > 1:
            if mpiexec is None:
                print(f"R={R}: skipped (no mpiexec: pip install 'bptt[mpi]')")
                continue
            cmd = [mpiexec, "-n", str(R), *cmd]
        r = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if r.returncode != 0:
            print(f"R={R}: failed: {r.stderr.strip().splitlines()[-1] if r.stderr.strip() else r.returncode}")
            continue
        rows.append(json.loads(r.stdout.strip().splitlines()[-1]))
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if not rows:
        return 1
    first = rows[0]
    print(f"text task, {args.cell} H={first['H']} V={first['V']} B={first['B']} T={first['T']} {args.dtype}, one BLAS "
          f"thread per rank; allreduce of {first['floats']} floats; medians over {args.steps} steps")
    print(f"{'R':>3} {'step ms':>9} {'compute':>9} {'wait':>8} {'allreduce':>10} {'update':>8} {'seq/s':>8} "
          f"{'speed-up':>9} {'allreduce share':>16}")
    base = rows[0]["step"] if rows[0]["R"] == 1 else None
    for row in rows:
        sp = f"{base / row['step']:.2f}x" if base else "-"
        print(f"{row['R']:>3} {1e3 * row['step']:>9.1f} {1e3 * row['compute']:>9.1f} {1e3 * row['wait']:>8.1f} "
              f"{1e3 * row['allreduce']:>10.2f} {1e3 * row['update']:>8.1f} {row['B'] / row['step']:>8.1f} {sp:>9} "
              f"{100 * row['allreduce'] / row['step']:>15.1f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
