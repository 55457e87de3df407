"""bptt evaluate DIR [--data FILE] [--column C] [--json]: held-out loss and the task's metric."""

from __future__ import annotations

import json


def add_parser(sub):
    p = sub.add_parser("evaluate", help="loss and the task's metric on held-out data", description=__doc__)
    p.add_argument("dir", help="run folder (or model .npz file)")
    p.add_argument("--data", help="evaluate on this file instead (text and series models), or on shipped data by "
                   "name: airline (series), docs (text)")
    p.add_argument("--column", help="series models: the column to evaluate on (name or 0-based index; default: the "
                   "one the model was trained on)")
    p.add_argument("--heldout", type=int, default=512, help="held-out sequences (default 512)")
    p.add_argument("--seed", type=int, default=0, help="seed of the held-out draw (default 0)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(run=run)


def run(args) -> int:
    from ..errors import InputError
    from ..evaluate import evaluate, verdict
    from ..train import check_sizes
    from ._load import load_model, task_for

    if args.heldout < 1:
        raise InputError(f"--heldout: got {args.heldout}, expected a positive number of sequences")
    if args.seed < 0:
        raise InputError(f"--seed: got {args.seed}, expected an integer >= 0")
    net = load_model(args.dir)
    task = task_for(net, args.data, args.column, model=args.dir)
    check_sizes(task, heldout=args.heldout)
    result = evaluate(net, task, n=args.heldout, seed=args.seed)
    if args.json:
        print(json.dumps(result, sort_keys=True))
    else:
        width = max(map(len, result))
        for k, v in result.items():  # names left, values right-aligned in one column
            print(f"{k + ':':<{width + 1}}  {v:>12.6g}" if isinstance(v, float) else f"{k + ':':<{width + 1}}  {v:>12}")
        for line in verdict(task.describe(), result):
            print(line)
    return 0
