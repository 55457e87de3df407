"""bptt experiment memory: success rate and effective memory of five recurrent nets against the
sequence length, on the adding and temporal-order tasks (see docs/gradient-lab.md).

    bptt experiment memory --quick                      about 1 minute on 2 cores: lengths 10,20,50, 1 seed
    bptt experiment memory --out runs/memory            the full grid: lengths 5..200, 3 seeds (about 2 hours)

Writes OUT/memory.csv, OUT/memory.png (with matplotlib) and one run folder per run under OUT/runs/; prints
a table. Run it again with the same options to resume: finished runs are not trained again.
"""

from __future__ import annotations

import argparse
import sys
import time


def _names(text):
    """'a,b' -> ('a', 'b'); argparse reports a ValueError as 'invalid comma-separated names value'."""
    items = [s.strip() for s in text.split(",")]
    if not all(items):
        raise ValueError(text)
    return tuple(dict.fromkeys(items))


def _ints(text):
    """'5,10' -> (5, 10)."""
    return tuple(dict.fromkeys(int(s) for s in text.split(",")))


_names.__name__ = "comma-separated names"
_ints.__name__ = "comma-separated integers"


def add_parser(sub):
    p = sub.add_parser("experiment", help="reproducible experiments: memory (success and effective memory vs "
                       "length), online (online gradient algorithms)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("which", choices=["memory", "online"],
                   help="the experiment: memory, or online (online gradient algorithms: cost vs H and training)")
    p.add_argument("--algorithms", type=_names, help="online: comma-separated rtrl, snap1, uoro, kf-rtrl, artbp "
                   "(default all)")
    p.add_argument("--quick", action="store_true",
                   help="the small grid: lengths 10,20,50, 1 seed, 600 steps, H=16 (other options still override)")
    p.add_argument("--tasks", type=_names, help="comma-separated: adding, order (default both); online: TASK:LENGTH "
                   "items, e.g. adding:20,copy:5,text:20 (the default; --quick adding:10)")
    p.add_argument("--cells", type=_names,
                   help="comma-separated: elman-uniform, elman-orthogonal, irnn, lstm, gru (default all)")
    p.add_argument("--lengths", type=_ints, help="sequence lengths, comma-separated (default 5,10,20,50,100,200)")
    p.add_argument("--seeds", type=int, help="seeds per configuration: 0 .. N-1 (default 3; --quick 1)")
    p.add_argument("--steps", type=int, help="optimiser steps per run (default 3000; --quick 600)")
    p.add_argument("--hidden", type=int, help="hidden units H (default 32; --quick 16)")
    p.add_argument("--out", help="output folder (default runs/memory, --quick runs/memory-quick)")
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    p.set_defaults(run=run)


def run(args) -> int:
    from pathlib import Path

    from .. import comm

    if args.which == "online":
        if comm.world().size > 1:
            from ..errors import InputError
            raise InputError(f"bptt experiment online runs in one process; got {comm.world().size} MPI ranks: run it "
                             "without mpiexec (bptt experiment memory spreads its runs over MPI ranks)")
        return _online(args)
    if args.algorithms is not None:
        from ..errors import InputError
        raise InputError("--algorithms: only for bptt experiment online")

    from .. import experiment as X

    grid = X.with_options(X.QUICK if args.quick else X.FULL, tasks=args.tasks, cells=args.cells,
                          lengths=args.lengths, seeds=args.seeds, steps=args.steps, hidden=args.hidden)
    out = Path(args.out or ("runs/memory-quick" if args.quick else "runs/memory"))
    world = comm.world()
    say = (lambda line: None) if args.quiet else world.root_only(lambda line: print(line, file=sys.stderr, flush=True))
    X.check_grid(grid)
    runs, _ = X.plan(grid)
    say(f"experiment memory: {len(runs)} runs ({', '.join(grid.tasks)} x {len(grid.cells)} cells x lengths "
        f"{','.join(map(str, grid.lengths))} x {grid.seeds} seed{'s' if grid.seeds > 1 else ''}; {grid.steps} steps, "
        f"H={grid.hidden}) into {out}/" + (f" over {world.size} MPI ranks" if world.size > 1 else ""))
    t0 = time.perf_counter()
    rows = X.run_grid(grid, out, log=say, comm=world)
    world.on_root(_report, X, out, rows)  # under mpiexec: rank 0 draws and prints
    say(f"experiment memory: {time.perf_counter() - t0:.1f} s")
    return 0


def _report(X, out, rows) -> None:
    print(X.table(rows), end="")
    print(f"wrote {out / 'memory.csv'}")
    if X.write_png(out / "memory.png", rows):
        print(f"wrote {out / 'memory.png'}")
    else:
        print("matplotlib is not installed: no plot (pip install 'bptt[plot]')")


def _online(args) -> int:
    """bptt experiment online [--quick]: see ``bptt.online.experiment``."""
    from pathlib import Path

    from ..errors import InputError
    from ..online import experiment as O

    for o in ("cells", "lengths", "seeds"):
        if getattr(args, o) is not None:
            raise InputError(f"--{o}: only for bptt experiment memory (online takes --tasks TASK:LENGTH,...)")
    plan = O.with_options(O.QUICK if args.quick else O.FULL, algorithms=args.algorithms, steps=args.steps,
                          hidden=args.hidden, tasks=None if args.tasks is None else O.parse_tasks(args.tasks))
    O.check_plan(plan)
    out = Path(args.out or ("runs/online-quick" if args.quick else "runs/online"))
    say = (lambda line: None) if args.quiet else (lambda line: print(line, file=sys.stderr, flush=True))
    t0 = time.perf_counter()
    time_rows, train_rows = O.run(plan, out, log=say)
    print(O.table(time_rows, train_rows), end="")
    print(f"wrote {out / 'online-timing.csv'} and {out / 'online-training.csv'}")
    if O.write_png(out / "online.png", time_rows, train_rows):
        print(f"wrote {out / 'online.png'}")
    else:
        print("matplotlib is not installed: no plot (pip install 'bptt[plot]')")
    say(f"experiment online: {time.perf_counter() - t0:.1f} s")
    return 0
