"""One optimiser step of ``bptt train``, shared by the training loop and ``bptt bench --train``.

``batch_data`` draws step k's batch (from ``default_rng([seed, 1, k])``, as integer codes when the task
can give them and the net is fed by them), ``update`` turns a gradient into new parameters (one global
norm per step, reused by the clipping), and ``batch_step`` is the two with ``Network.gradients`` between.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from . import optim
from .errors import TrainingDiverged


class StepResult(NamedTuple):
    X: np.ndarray  # (T, B, I) floats or (T, B) integer codes: the batch's inputs
    D: np.ndarray  # its targets
    E: float  # the batch loss (sum over loss steps, mean over the batch)
    norm: float  # global gradient norm before clipping
    lr: float  # learning rate of this update
    opt_state: dict  # the optimiser state after the update
    loss: float  # E per loss step: the metrics' loss


def uses_codes(task, cfg) -> bool:
    """Whether the batches go to the net as integer codes (a row lookup of the input weight) instead of
    one-hot vectors: when the task offers them (``batch_codes``) and nothing downstream needs the one-hot
    X (the gradient tracker and the omega regulariser take float inputs)."""
    return hasattr(task, "batch_codes") and not cfg.track_gradients and not cfg.omega


def batch_data(task, cfg, step: int, codes: bool):
    """Step ``step``'s batch (X, D); X as (T, B) codes when ``codes``, else as the task's float inputs."""
    rng = np.random.default_rng([cfg.seed, 1, step])
    return task.batch_codes(rng, cfg.batch) if codes else task.batch(rng, cfg.batch)


def n_loss_steps(task) -> int:
    """Loss steps per sequence (the divisor of the metrics' loss)."""
    from .validate import loss_mask

    return int(loss_mask(task.at, task.length, 1, None, bool).sum())


def _kept(last_good: int | None, ckpt) -> str:
    """What a diverged run leaves: the last good checkpoint, or none (``last_good`` None: none written yet)."""
    if last_good is None:
        return "no checkpoint was written yet, so there is nothing to resume: start over with --force"
    return f"the last good checkpoint (step {last_good}) is kept in {str(ckpt)!r}"


def update(net, g, E: float, opt, opt_state, clip, *, step: int, lr_flag, last_good: int | None, ckpt) -> tuple:
    """Clip (by the global norm, computed once) and apply one optimiser step to ``net.params``.
    Returns (opt_state, norm, lr). Raises TrainingDiverged on a non-finite loss, norm or parameter
    (``last_good``: the step of the last checkpoint written, None when there is none)."""
    norm = optim.global_norm(g)
    if not (math.isfinite(E) and math.isfinite(norm)):
        raise TrainingDiverged(
            f"the loss became {E} (gradient norm {norm}) at step {step}: lower --lr (now {lr_flag}) or "
            f"use --clip; {_kept(last_good, ckpt)}")
    if clip:
        g, _ = optim.clip_by_global_norm(g, clip, norm=norm)
    lr = opt.lr_at(int(opt_state["step"]))
    params, opt_state = opt.update(net.params, g, opt_state)
    if not all(np.isfinite(a).all() for a in params.values()):
        raise TrainingDiverged(
            f"the parameters became NaN/inf at step {step}: lower --lr (now {lr_flag}) or use --clip; "
            f"{_kept(last_good, ckpt)}")
    net.params = params
    return opt_state, norm, lr


def batch_step(net, task, opt, opt_state, cfg, step: int, *, codes: bool | None = None, last_good: int = 0,
               ckpt="checkpoint.npz", n_loss: int | None = None) -> StepResult:
    """Batch-mode step ``step`` (0-based): data, gradients, clipping, update. ``net.params`` is replaced."""
    codes = uses_codes(task, cfg) if codes is None else codes
    X, D = batch_data(task, cfg, step, codes)
    E, g = net.gradients(X, D, loss=task.loss, at=task.at, truncate=cfg.truncate)
    g.pop("s0", None)
    opt_state, norm, lr = update(net, g, E, opt, opt_state, cfg.clip, step=step + 1, lr_flag=cfg.lr,
                                 last_good=last_good, ckpt=ckpt)
    n = n_loss_steps(task) if n_loss is None else n_loss
    return StepResult(X, D, E, norm, lr, opt_state, E / max(n, 1))


__all__ = ["StepResult", "batch_data", "batch_step", "n_loss_steps", "update", "uses_codes"]
