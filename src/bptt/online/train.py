"""Online training on streams: ``bptt train TASK --online ALG [--online-every K]``.

Each training step moves K positions on along the task's streams (``bptt.data.streams``: B parallel
streams, reset where a sequence starts), feeds them one by one to the online algorithm (``alg.step``:
the net's carry and the algorithm's influence matrix / factors / segment move with them) and sums the K
per-step gradient estimates; the training loop then updates the weights with that sum (any optimiser,
clipping), and the next K positions run with the new weights while the algorithm keeps its state, as
online RTRL does (Williams & Zipser 1989). A window with nothing to learn from (no loss step reached, or an
ARTBP segment still open) makes no update; its losses are reported with the next update's row.

The algorithm's state (carry, influence, random-key, step counter, the open ARTBP segment, the losses
not yet reported) is a dict of arrays: the training loop stores it in the checkpoint under ``online/``, so
a resumed run continues bit for bit. The algorithm's random draws come from ``[seed, 13]``.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..gradients import Gradients
from . import make


class Window(NamedTuple):
    """The fields of ``bptt.train.Window``, and the number of loss steps in E."""

    X: np.ndarray  # (K, B, I) the window's inputs
    D: np.ndarray  # its targets
    at: list  # window positions that carry a loss
    s0: object  # the net's state at the window's start, user-facing ((B, H) or (h, c))
    E: float | None  # summed loss of the steps since the last update (None: no update this window)
    grads: object  # Gradients summed over the window, or None
    next_carry: object  # the algorithm's state after the window (a dict of arrays)
    n_loss: int  # loss steps summed in E


class OnlineStream:
    """The online algorithm of a run and the stream it reads."""

    def __init__(self, cfg, task, net):
        from ..data.streams import stream_for

        self.alg = make(cfg.online, rng=np.random.default_rng([cfg.seed, 13]))
        self.every = cfg.online_every or 1
        self.loss = task.loss
        self.stream = stream_for(task, cfg.batch, cfg.seed)
        self.B = cfg.batch
        self.alg.init(net, self.B)  # checks the net (cell, layers) before anything is written

    def init(self, net) -> dict:
        state = self.alg.init(net, self.B)
        state["pending/E"] = np.zeros((), np.float64)  # losses since the last update
        state["pending/n"] = np.zeros((), np.int64)
        return state

    def window(self, net, step: int, state: dict) -> Window:
        K = self.every
        X, D, R, lmask = self.stream.window(step * K, K + 1)  # one more position: where the next reset is
        state = dict(state)
        E, n = float(state.pop("pending/E")), int(state.pop("pending/n"))
        carry = self.alg.carry(state)
        s0 = carry[0] if len(carry) == 1 else carry
        total = None
        at = []
        for t in range(K):
            d = (D[t].astype(net.dtype) if D.dtype.kind == "f" else D[t]) if lmask[t] else None
            e, g, state = self.alg.step(net, state, X[t].astype(net.dtype), d, loss=self.loss, reset=R[t],
                                        last=bool(R[t + 1].all()))
            if lmask[t]:
                E += e
                n += 1
                at.append(t)
            total = g if total is None else Gradients({k: total[k] + g[k] for k in g})
        learn = any(np.any(v) for v in total.values())
        state["pending/E"] = np.asarray(0.0 if learn else E, np.float64)
        state["pending/n"] = np.asarray(0 if learn else n, np.int64)
        if not learn:
            return Window(X[:K], D[:K], at, s0, None, None, state, 0)
        return Window(X[:K], D[:K], at, s0, E, total, state, n)


def check_config(cfg) -> None:
    """The --online options of a TrainConfig (InputError naming the option)."""
    import numbers

    from ..errors import InputError

    k = cfg.online_every
    if k is not None and (isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 1):
        raise InputError(f"--online-every: got {k!r}, expected an integer >= 1 (stream steps per update)")
    if cfg.online is None:
        raise InputError(f"--online-every: got {k!r} without --online ALG; expected --online rtrl|snap1|snap2|"
                         "uoro|kf-rtrl|artbp as well")
    try:
        alg = make(cfg.online, rng=np.random.default_rng(0))
    except InputError as e:
        raise InputError(f"--online: {e}") from None
    if cfg.cell not in alg.cells:
        raise InputError(f"--online: {alg.label} is not defined for the {cfg.cell} cell; it supports "
                         f"{', '.join(alg.cells)} (use --cell {alg.cells[0]} or another algorithm: rtrl, snap1, uoro)")
    if cfg.layers != 1:
        raise InputError(f"--online: online algorithms need one layer; got --layers {cfg.layers} (use --layers 1)")
    for name, v in (("tbptt", cfg.tbptt), ("truncate", cfg.truncate)):
        if v is not None:
            raise InputError(f"--online and --{name}: choose one (--online trains on streams with the online "
                             f"gradient; --{name} is a BPTT mode)")
    if cfg.omega:
        raise InputError("--online and --omega: the Pascanu et al. regulariser needs whole BPTT windows; "
                         "leave --omega out with --online")
