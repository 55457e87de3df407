"""First-order optimizers as pure functions of (params, grads, state), matching ``torch.optim``.

``params`` and ``grads`` are dicts ``name -> floating ndarray`` (any shapes, the same per name).
``opt.init(params)`` gives the state; ``opt.update(params, grads, state)`` returns
``(new_params, new_state)`` made of new arrays: neither the input params nor the input state
are modified, so a caller may keep them (e.g. to roll back a diverged step).

The state is a flat ``dict[str, np.ndarray]`` that ``np.savez`` stores without pickle:

* ``"step"``: 0-d int64, the number of updates made so far;
* ``"<slot>/<param name>"``: one array per parameter and slot, shaped like the parameter,
  where the slots are ``buf`` (momentum, nesterov), ``sum`` (adagrad), ``sq`` (rmsprop),
  ``m`` and ``v`` (adam, adamw); sgd has none.

The update at ``state["step"] == t`` uses learning rate ``lr`` (a float) or ``lr(t)`` (a schedule).
The formulas, with ``g`` the gradient and ``k = t + 1``, are torch's (``dampening=0``,
``weight_decay=0`` unless AdamW, ``initial_accumulator_value=0``, ``lr_decay=0``,
``centered=False``, ``amsgrad=False``)::

    sgd        p -= lr * g
    momentum   buf = beta * buf + g;   p -= lr * buf
    nesterov   buf = beta * buf + g;   p -= lr * (g + beta * buf)
    adagrad    sum += g * g;           p -= lr * g / (sqrt(sum) + eps)
    rmsprop    sq = alpha * sq + (1 - alpha) * g * g;   p -= lr * g / (sqrt(sq) + eps)
    adam       m += (1 - b1) * (g - m);  v = b2 * v + (1 - b2) * g * g
               p -= lr / (1 - b1**k) * m / (sqrt(v) / sqrt(1 - b2**k) + eps)
    adamw      p *= 1 - lr * weight_decay, then the adam step
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from bptt.errors import InputError
from bptt.optim import _checks
from bptt.optim.schedules import Schedule, schedule_from_config

State = dict[str, np.ndarray]
Params = dict[str, np.ndarray]

# name -> the state slots kept per parameter.
_SLOTS = {"sgd": (), "momentum": ("buf",), "nesterov": ("buf",), "adagrad": ("sum",),
          "rmsprop": ("sq",), "adam": ("m", "v"), "adamw": ("m", "v")}
OPTIMIZERS = tuple(_SLOTS)


def _step(name: str, hp: dict, p: np.ndarray, g: np.ndarray, slots: tuple, lr: float,
          k: int) -> tuple[np.ndarray, tuple]:
    """One parameter's update: ``k`` is the 1-based update number; returns new arrays only."""
    if name == "sgd":
        return p - lr * g, ()
    if name in ("momentum", "nesterov"):
        buf = hp["beta"] * slots[0] + g
        d = g + hp["beta"] * buf if name == "nesterov" else buf
        return p - lr * d, (buf,)
    if name == "adagrad":
        acc = slots[0] + g * g
        return p + (-lr * g) / (np.sqrt(acc) + hp["eps"]), (acc,)
    if name == "rmsprop":
        a = hp["alpha"]
        sq = a * slots[0] + (1.0 - a) * g * g
        return p + (-lr * g) / (np.sqrt(sq) + hp["eps"]), (sq,)
    # adam / adamw, in torch's order of operations (single-tensor, non-capturable path).
    b1, b2 = hp["betas"]
    if name == "adamw":
        p = p * (1.0 - lr * hp["weight_decay"])  # decoupled decay, before the step
    # the same operations as m = m0 + (1 - b1) (g - m0); v = b2 v0 + (1 - b2) g g; p + (-s m) / denom,
    # in place on the new arrays (bitwise the same results, half the temporaries: 0.4 -> 0.25 ms per
    # Adam step of the text LSTM's 132k parameters)
    m = np.subtract(g, slots[0])
    m *= 1.0 - b1
    m += slots[0]  # torch's lerp for weight < 0.5
    v = np.multiply(g, 1.0 - b2)
    v *= g
    v += np.multiply(slots[1], b2)
    step_size = lr / (1.0 - b1 ** k)
    denom = np.sqrt(v)
    denom /= (1.0 - b2 ** k) ** 0.5
    denom += hp["eps"]
    new = np.multiply(m, -step_size)
    new /= denom
    new += p
    return new, (m, v)


@dataclass(frozen=True)
class Optimizer:
    """An update rule; build it with ``sgd``, ``adam``, ... or ``get``.

    Attributes:
        name: one of ``OPTIMIZERS``.
        lr: float > 0, or a schedule (``bptt.optim`` Schedule or any callable step -> lr).
        hparams: the rule's other hyperparameters as ``((keyword, value), ...)``.
    """

    name: str
    lr: float | Callable[[int], float]
    hparams: tuple = ()

    @property
    def slots(self) -> tuple[str, ...]:
        """The per-parameter state arrays this rule keeps."""
        return _SLOTS[self.name]

    def lr_at(self, step: int) -> float:
        """The learning rate of the update made when ``state["step"] == step``."""
        if not callable(self.lr):
            return self.lr
        return _checks.nonnegative(f"lr schedule value at step {step}", self.lr(step))

    def init(self, params: Mapping[str, np.ndarray]) -> State:
        """Zero state for ``params`` (dict name -> floating array)."""
        params = _checks.array_dict("params", params)
        state: State = {"step": np.array(0, dtype=np.int64)}
        for slot in self.slots:
            for key, p in params.items():
                state[f"{slot}/{key}"] = np.zeros_like(p)
        return state

    def update(self, params: Mapping[str, np.ndarray], grads: Mapping[str, np.ndarray],
               state: Mapping[str, np.ndarray]) -> tuple[Params, State]:
        """One step. ``grads[name]`` has ``params[name]``'s shape; returns new params and state.

        ``grads`` may be ``net.gradients(...)``'s output as it is, for every cell: its ``s0`` entry (dE/ds0,
        the gradient of the initial state, which is not a parameter) is ignored unless ``params`` has an
        ``s0`` (as by ``bptt.optim``'s clipping functions). Every other name must be a parameter's."""
        params = _checks.array_dict("params", params)
        grads = _checks.parameter_grads(grads, params)
        grads = _checks.array_dict("grads", grads)
        _checks.same_layout(params, grads)
        self._check_state(params, state)
        t = int(state["step"])
        lr = self.lr_at(t)
        hp = dict(self.hparams)
        new_params: Params = {}
        new_state: State = {"step": np.array(t + 1, dtype=np.int64)}
        for key, p in params.items():
            old = tuple(state[f"{slot}/{key}"] for slot in self.slots)
            new_params[key], new = _step(self.name, hp, p, grads[key], old, lr, t + 1)
            for slot, arr in zip(self.slots, new):
                new_state[f"{slot}/{key}"] = arr
        return new_params, new_state

    def _check_state(self, params: Params, state: Mapping[str, np.ndarray]) -> None:
        if not hasattr(state, "keys"):
            raise InputError(f"state must be the dict returned by init/update, got "
                             f"{type(state).__name__}")
        want = {"step"} | {f"{s}/{k}" for s in self.slots for k in params}
        if set(state.keys()) != want:
            missing = sorted(want - set(state.keys()))
            extra = sorted(set(state.keys()) - want)
            raise InputError(f"state does not fit optimizer {self.name!r} and these params: "
                             f"missing {missing}, unexpected {extra}; create it with "
                             f"optimizer.init(params) or load one saved by the same optimizer")
        _check_step(state["step"])
        for slot in self.slots:
            for key, p in params.items():
                arr = state[f"{slot}/{key}"]
                if not isinstance(arr, np.ndarray) or arr.shape != p.shape:
                    got = arr.shape if isinstance(arr, np.ndarray) else type(arr).__name__
                    raise InputError(f"state[{slot + '/' + key!r}] must be an array of shape "
                                     f"{p.shape} like params[{key!r}], got {got}")

    def config(self) -> dict:
        """JSON-able description; ``optimizer_from_config(opt.config()) == opt``."""
        if isinstance(self.lr, Schedule):
            lr = self.lr.config()
        elif callable(self.lr):
            raise InputError("lr is a plain callable, which cannot be described in JSON; use a "
                             "bptt.optim schedule (constant, step_decay, cosine, warmup)")
        else:
            lr = self.lr
        out = {"name": self.name, "lr": lr}
        for key, value in self.hparams:
            out[key] = list(value) if isinstance(value, tuple) else value
        return out


def _check_step(step: object) -> int:
    arr = np.asarray(step)
    if arr.shape != () or not np.issubdtype(arr.dtype, np.integer) or int(arr) < 0:
        raise InputError(f"state['step'] must be a 0-d integer array >= 0, got {step!r}")
    return int(arr)


def _lr(lr: object) -> float | Callable[[int], float]:
    return lr if callable(lr) else _checks.positive("lr", lr)


def _betas(betas: object) -> tuple[float, float]:
    if not isinstance(betas, (tuple, list)) or len(betas) != 2:
        raise InputError(f"betas must be a pair (beta1, beta2), got {betas!r}; e.g. (0.9, 0.999)")
    return (_checks.unit("betas[0]", betas[0]), _checks.unit("betas[1]", betas[1]))


def sgd(lr) -> Optimizer:
    """Plain gradient descent ``p -= lr * g``; ``lr`` float > 0 or schedule."""
    return Optimizer("sgd", _lr(lr))


def momentum(lr, beta: float = 0.9) -> Optimizer:
    """Heavy-ball momentum (``torch.optim.SGD(momentum=beta)``); ``beta`` in [0, 1)."""
    return Optimizer("momentum", _lr(lr), (("beta", _checks.unit("beta", beta)),))


def nesterov(lr, beta: float = 0.9) -> Optimizer:
    """Nesterov momentum (``torch.optim.SGD(momentum=beta, nesterov=True)``); ``beta`` in (0, 1)."""
    beta = _checks.unit("beta", beta)
    if beta == 0.0:
        raise InputError("beta must be > 0 for nesterov (0 is plain sgd), got 0.0")
    return Optimizer("nesterov", _lr(lr), (("beta", beta),))


def adagrad(lr, eps: float = 1e-10) -> Optimizer:
    """Adagrad (``torch.optim.Adagrad``; the rule of Karpathy's min-char-rnn); ``eps`` > 0."""
    return Optimizer("adagrad", _lr(lr), (("eps", _checks.positive("eps", eps)),))


def rmsprop(lr, alpha: float = 0.99, eps: float = 1e-8) -> Optimizer:
    """RMSprop, not centered (``torch.optim.RMSprop``); ``alpha`` in [0, 1), ``eps`` > 0."""
    return Optimizer("rmsprop", _lr(lr), (("alpha", _checks.unit("alpha", alpha)),
                                          ("eps", _checks.positive("eps", eps))))


def adam(lr, betas=(0.9, 0.999), eps: float = 1e-8) -> Optimizer:
    """Adam (``torch.optim.Adam``); ``betas`` each in [0, 1), ``eps`` > 0."""
    return Optimizer("adam", _lr(lr), (("betas", _betas(betas)),
                                       ("eps", _checks.positive("eps", eps))))


def adamw(lr, betas=(0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.01) -> Optimizer:
    """AdamW (``torch.optim.AdamW``): decoupled ``p *= 1 - lr * weight_decay`` then Adam."""
    return Optimizer("adamw", _lr(lr), (("betas", _betas(betas)),
                                        ("eps", _checks.positive("eps", eps)),
                                        ("weight_decay",
                                         _checks.nonnegative("weight_decay", weight_decay))))


_BUILDERS = {"sgd": sgd, "momentum": momentum, "nesterov": nesterov, "adagrad": adagrad,
             "rmsprop": rmsprop, "adam": adam, "adamw": adamw}


def get(name: str, lr, **kw) -> Optimizer:
    """The optimizer ``name`` (one of ``OPTIMIZERS``) with learning rate ``lr`` and options."""
    if name not in _BUILDERS:
        raise InputError(f"optimizer name must be one of {', '.join(OPTIMIZERS)}; got {name!r}")
    try:
        return _BUILDERS[name](lr, **kw)
    except TypeError as exc:  # an unknown keyword
        raise InputError(f"optimizer {name!r} does not take these options: {exc}") from None


def optimizer_from_config(config: dict) -> Optimizer:
    """Rebuild an optimizer from ``Optimizer.config()`` output."""
    if not isinstance(config, dict) or "name" not in config or "lr" not in config:
        raise InputError(f"optimizer config must be a dict with 'name' and 'lr', got {config!r}")
    cfg = dict(config)
    name, lr = cfg.pop("name"), cfg.pop("lr")
    if isinstance(lr, dict):
        lr = schedule_from_config(lr)
    return get(name, lr, **cfg)


def state_to_arrays(state: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The state as ``{key: ndarray}`` for ``np.savez`` (it already is; arrays are not copied)."""
    if not hasattr(state, "items") or "step" not in state:
        raise InputError(f"state must be the dict returned by init/update, got "
                         f"{type(state).__name__}")
    return {key: np.asarray(value) for key, value in state.items()}


def state_from_arrays(arrays: Mapping[str, np.ndarray]) -> State:
    """A state from ``state_to_arrays`` output or an open ``np.load`` file (arrays are copied).

    Checks the layout (``step`` plus ``slot/name`` float arrays); ``Optimizer.update`` checks that
    it fits the optimizer and params.
    """
    if not hasattr(arrays, "keys") or "step" not in arrays.keys():
        raise InputError("optimizer state arrays must be a mapping with a 'step' entry; this is "
                         "not a state saved from state_to_arrays")
    state: State = {"step": np.array(_check_step(arrays["step"]), dtype=np.int64)}
    for key in arrays.keys():
        if key == "step":
            continue
        arr = np.array(arrays[key])
        if "/" not in key or not np.issubdtype(arr.dtype, np.floating):
            raise InputError(f"optimizer state entry {key!r} must be named 'slot/param' and hold "
                             f"a float array, got dtype {arr.dtype}")
        state[key] = arr
    return state

