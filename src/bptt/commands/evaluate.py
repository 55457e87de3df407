"""``bptt evaluate DIR [--data FILE] [--json]``: held-out loss and the task's metric."""

from __future__ import annotations

import json


def add_parser(sub):
    p = sub.add_parser("evaluate", help="loss and the task's metric on held-out data", description=__doc__)
    p.add_argument("dir", help="run folder (or model .npz file)")
    p.add_argument("--data", help="evaluate on this file instead (text and series models)")
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
    task = task_for(net, args.data, args.dir)
    check_sizes(task, heldout=args.heldout)
    result = evaluate(net, task, n=args.heldout, seed=args.seed)
    if task.name == "text":
        result["bits_per_char"] = result["bpc"]
    if args.json:
        print(json.dumps(result, sort_keys=True))
    else:
        for k, v in result.items():
            print(f"{k:>16}: {v:.6g}" if isinstance(v, float) else f"{k:>16}: {v}")
        for line in verdict(task.describe(), result):
            print(line)
    return 0
