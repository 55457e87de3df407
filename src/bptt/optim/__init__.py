"""Optimizers, learning-rate schedules and gradient clipping, as pure NumPy functions.

Usage::

    opt = bptt.optim.adam(bptt.optim.cosine(1e-3, total_steps=1000))
    state = opt.init(params)                       # params: dict name -> ndarray
    grads, norm = bptt.optim.clip_by_global_norm(grads, 5.0)
    params, state = opt.update(params, grads, state)
    np.savez(path, **bptt.optim.state_to_arrays(state))   # no pickle needed

See ``optimizers`` for the update formulas and the state layout, ``schedules`` for the
schedules and their CLI names. Everything matches ``torch.optim`` in float64.
"""

from bptt.optim.clipping import clip_by_global_norm, clip_by_value, global_norm
from bptt.optim.optimizers import (
    OPTIMIZERS,
    Optimizer,
    adagrad,
    adam,
    adamw,
    get,
    momentum,
    nesterov,
    optimizer_from_config,
    rmsprop,
    sgd,
    state_from_arrays,
    state_to_arrays,
)
from bptt.optim.schedules import (
    SCHEDULES,
    Constant,
    Cosine,
    Schedule,
    StepDecay,
    Warmup,
    constant,
    cosine,
    schedule,
    schedule_from_config,
    step_decay,
    warmup,
)

__all__ = [
    "OPTIMIZERS", "Optimizer", "sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam",
    "adamw", "get", "optimizer_from_config", "state_to_arrays", "state_from_arrays",
    "SCHEDULES", "Schedule", "Constant", "StepDecay", "Cosine", "Warmup", "constant",
    "step_decay", "cosine", "warmup", "schedule", "schedule_from_config",
    "global_norm", "clip_by_global_norm", "clip_by_value",
]
