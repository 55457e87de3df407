"""Test helper, run under ``mpiexec -n R`` (or alone): train the tiny float64 runs of ``CASES`` with the
public API into OUT/<name>, every rank taking part (bptt.train.train with the default communicator).

usage: python _mpi_train.py OUT TEXTFILE [STEPS] [--resume]
(no loss.png: plotting is not what these runs test, and it would be most of their time)
"""

import sys

from bptt import train as T
from bptt import watch
from bptt.config import resolve


# name -> TrainConfig fields: each cell in batch mode and in BPTT(k1, k2) stream mode; B = 6 splits over 1, 2, 3
CASES = {
    f"{cell}-{mode}": {"cell": cell, "hidden": 5, "batch": 6, "dtype": "float64", "seed": 3, "checkpoint_every": 10,
                       "schedule": "constant", "heldout": 8, **({"task": "adding", "length": 7} if mode == "batch" else
                                        {"task": "text", "tbptt": (3, 5), "hidden": 4, "lr": 0.01})}
    for cell in ("elman", "lstm", "gru") for mode in ("batch", "stream")
}


def main(argv):
    watch.plot_loss = lambda *a, **k: True
    out, data = argv[0], argv[1]
    steps = int(argv[2]) if len(argv) > 2 and argv[2].isdigit() else 20
    for name, fields in CASES.items():
        fields = {**fields, "steps": steps, **({"data": data} if fields["task"] == "text" else {})}
        T.train(resolve({}, fields), f"{out}/{name}", resume="--resume" in argv, quiet=True, log=lambda *a, **k: None)


if __name__ == "__main__":
    main(sys.argv[1:])
