"""Test helper: run `bptt ...` and SIGKILL this very process at a chosen moment.

usage: python _killer.py MODE N bptt-args...
  fsync   N: inside the N-th os.fsync (a checkpoint/model/metrics write half done: temp file written,
             not yet renamed into place)
  replace N: just before the N-th os.replace (temp file complete and synced, not yet visible)
  step    N: inside the N-th optimiser update (between two checkpoints)
  none    0: no kill
Under mpiexec, KILL_RANK=r kills rank r alone (the others run on).
"""

import os
import signal
import sys

mode, n, argv = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
if os.environ.get("KILL_RANK", os.environ.get("PMI_RANK", "")) != os.environ.get("PMI_RANK", ""):
    mode = "none"
count = [0]


def dying(orig):
    def wrapper(*a, **k):
        count[0] += 1
        if count[0] == n:
            os.kill(os.getpid(), signal.SIGKILL)
        return orig(*a, **k)

    return wrapper


if mode == "fsync":
    os.fsync = dying(os.fsync)
elif mode == "replace":
    os.replace = dying(os.replace)
elif mode == "step":
    from bptt.optim import optimizers

    optimizers.Optimizer.update = dying(optimizers.Optimizer.update)

from bptt.cli import main  # noqa: E402

sys.exit(main(argv))
