"""What a finished run shows: the held-out figures and something to look at (a sample, a forecast,
solved examples). Shared by ``train`` and ``evaluate``; not a command itself."""

from __future__ import annotations

import shlex
from pathlib import Path

import numpy as np


def summary(out, result: dict) -> None:
    from ..evaluate import verdict
    from ..files import load

    out = Path(out)
    net = load(out / "model.npz")
    task = net.meta["task"]
    figures = ", ".join(f"{k} {v:.4g}" for k, v in result.items() if k != "sequences")
    print(f"held-out ({result.get('sequences')} sequences): {figures}")
    for line in verdict(task, result):
        print(line)
    name = task["name"]
    if name == "adding":
        _adding_examples(net, task)
    elif name == "text":
        from ..sampling import sample_text

        prime = "The " if set("The ") <= set(task["vocab"]) else ""  # only a prime the model can read
        print("sample:", repr(prime + sample_text(net, length=200, prime=prime, temperature=0.7, seed=0)))
    elif name == "series":  # advice that works as printed: predict reads the model's own series by default
        print(f"forecast the next 12 values with: {shlex.join(['bptt', 'predict', str(out), '--horizon', '12'])}")
    names = ["model.npz", "checkpoint.npz", "metrics.csv", "config.toml", "loss.png"]
    print("files: " + ", ".join(str(out / n) for n in names if (out / n).exists()))


def _adding_examples(net, desc) -> None:
    from ..data import task_from_description

    task = task_from_description(desc)
    X, D = task.heldout(4, seed=12345)
    Y = net.forward(X).Y
    for b in range(X.shape[1]):
        marked = X[:, b, 0][X[:, b, 1] == 1]
        err = abs(Y[-1, b, 0] - D[-1, b, 0])
        print(f"  {marked[0]:.3f} + {marked[1]:.3f} = {D[-1, b, 0]:.3f}; the net says {Y[-1, b, 0]:.3f} "
              f"({'solved' if err < 0.04 else 'not solved'}, |error| {err:.3f})")
