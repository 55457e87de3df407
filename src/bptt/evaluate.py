"""Held-out evaluation: the loss and the task's own metric on data the training never saw."""

from __future__ import annotations

import numpy as np

from .validate import loss_mask


def evaluate(net, task, n: int = 512, seed: int = 0, chunk: int = 256) -> dict:
    """Loss per loss step and ``task.metric`` on ``n`` held-out sequences (forward in chunks of
    ``chunk`` sequences to bound memory). Returns a JSON-able dict of floats."""
    X, D = task.heldout(n, seed)
    B = X.shape[1]
    Ys, E = [], 0.0
    for b0 in range(0, B, chunk):
        xb, db = X[:, b0 : b0 + chunk], D[:, b0 : b0 + chunk]
        Ys.append(net.forward(xb).Y)
        E += net.loss(xb, db, loss=task.loss, at=task.at) * xb.shape[1]
    Y = np.concatenate(Ys, axis=1)
    n_loss = loss_mask(task.at, X.shape[0], 1, None, np.float64).sum()
    out = {"loss": float(E / B / n_loss), "sequences": int(B)}
    out.update({k: float(v) for k, v in task.metric(Y, D).items()})
    return out
