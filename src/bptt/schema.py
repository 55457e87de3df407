"""What the JSON metadata of a model or checkpoint file may say, checked field by field.

``bptt.files`` calls these after a file's metadata is parsed and before any array in it is read: the
network configuration gives the exact names, shapes and dtype of the parameters (compared with the
file's manifest; no network is built, no initialiser runs), the task description is checked against
its task's schema and against the network (a text model's ``n_out`` is its vocabulary size), and a
checkpoint's training fields (``step``, ``elapsed``, ``train``, the optimiser's and the carried state's
arrays) against the training configuration. Each problem is one :class:`~bptt.errors.InputError` naming
the field; the loaders turn it into a ``ModelFileError`` naming the file. ``bptt.save`` uses the same
checks on what it is asked to write (an ``InputError`` there: nothing is written).
"""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np

from .errors import InputError

#: Most stacked layers a stored network may declare (each layer is at least one array of the file).
MAX_LAYERS = 1024
#: Largest unit count (n_in, n_hidden, n_out) a stored network may declare; the manifest bounds it further.
MAX_UNITS = 2**31 - 1
#: Longest sequence a stored task may declare: evaluating a hostile ``length=10**7`` would need gigabytes.
MAX_TASK_LENGTH = 100_000
#: Keys of a model file's metadata that bptt owns: ``save(meta=...)`` may not set them.
RESERVED_MODEL_KEYS = ("network",)
#: Keys of a checkpoint's metadata that bptt owns.
RESERVED_CHECKPOINT_KEYS = ("network",)

# the training options every checkpoint has recorded since the first bptt (later ones take their default)
_TRAIN_CORE = {"task", "cell", "hidden", "layers", "steps", "batch", "optimizer", "lr", "seed", "dtype", "tbptt"}
_HEX64 = re.compile(r"[0-9a-f]{64}")
_INITS = ("uniform", "orthogonal", "identity")


def _bad(field: str, got: Any, expected: str) -> InputError:
    shown = repr(got)
    if len(shown) > 80:
        shown = shown[:77] + "..."
    return InputError(f"{field}: got {shown}, expected {expected}")


def _int(field, v, lo, hi) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        raise _bad(field, v, f"an integer in [{lo}, {hi}]")
    return v


def _num(field, v, lo=-math.inf, hi=math.inf, *, lo_open=False, hi_open=False) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise _bad(field, v, "a finite number")
    if v < lo or v > hi or (lo_open and v == lo) or (hi_open and v == hi):
        raise _bad(field, v, f"a number in {'(' if lo_open else '['}{lo}, {hi}{')' if hi_open else ']'}")
    return float(v)


def _str(field, v, choices=None) -> str:
    if not isinstance(v, str) or (choices is not None and v not in choices):
        raise _bad(field, v, f"one of {', '.join(choices)}" if choices else "a string")
    return v


def _dict(field, v) -> dict:
    if not isinstance(v, dict):
        raise _bad(field, v, "an object (JSON dict)")
    return v


def _keys(field, d: dict, required: set, optional: set = frozenset()) -> None:
    missing = sorted(required - set(d))
    extra = sorted(set(d) - required - set(optional))
    if missing:
        raise InputError(f"{field}: the key {missing[0]!r} is missing (expected keys: {', '.join(sorted(required))})")
    if extra:
        raise InputError(f"{field}: unexpected key {extra[0]!r} (expected keys: "
                         f"{', '.join(sorted(required | set(optional)))})")


# ---- the network -------------------------------------------------------------------------------------
def network_skeleton(cfg: Any):
    """The network that ``cfg`` (``Network.config()``) describes, without parameters (no initialiser runs,
    nothing of the sizes it declares is allocated). InputError naming the ``network.*`` field."""
    from . import network
    from .activations import ACTIVATIONS

    kinds = {"elman": network.Elman, "lstm": network.LSTM, "gru": network.GRU}
    cfg = _dict("network", cfg)
    cell = _str("network.cell", cfg.get("cell"), tuple(kinds))
    own = {"elman": {"g1"}, "lstm": {"forget_bias"}, "gru": set()}[cell]
    _keys("network", cfg, {"cell", "n_in", "n_hidden", "n_out", "g2", "layers", "bidirectional", "init", "dtype"}
          | own)
    kw = {k: _int(f"network.{k}", cfg[k], 1, MAX_UNITS) for k in ("n_in", "n_hidden", "n_out")}
    kw["layers"] = _int("network.layers", cfg["layers"], 1, MAX_LAYERS)
    if not isinstance(cfg["bidirectional"], bool):
        raise _bad("network.bidirectional", cfg["bidirectional"], "true or false")
    kw["bidirectional"] = cfg["bidirectional"]
    kw["g2"] = _str("network.g2", cfg["g2"], tuple(ACTIVATIONS))
    kw["init"] = _str("network.init", cfg["init"], _INITS)
    kw["dtype"] = _str("network.dtype", cfg["dtype"], ("float32", "float64"))
    if "g1" in own:
        kw["g1"] = _str("network.g1", cfg["g1"])
    if "forget_bias" in own:
        kw["forget_bias"] = _num("network.forget_bias", cfg["forget_bias"])
    try:
        return kinds[cell](**kw, seed=network.NO_INIT)
    except InputError as e:
        raise InputError(f"network: {e}") from None


# ---- tasks -------------------------------------------------------------------------------------------
def _synthetic(desc: dict):
    from .data import get_task

    rest = {k: v for k, v in desc.items() if k != "name"}
    for k, v in rest.items():  # sizes first: a task object is never built from a hostile size
        if isinstance(v, int) and not isinstance(v, bool) and not 0 <= v <= MAX_TASK_LENGTH:
            raise _bad(f"task.{k}", v, f"an integer in [0, {MAX_TASK_LENGTH}]")
    try:
        return get_task(desc["name"], **rest)
    except (InputError, TypeError, ValueError) as e:
        raise InputError(f"task: {e}") from None


def check_task(desc: Any, net=None) -> None:
    """A stored task description (``task.describe()``) against its schema and, with ``net``, against the
    network's inputs, outputs and output activation."""
    from .data.tasks import PATH_FROM_RUN, TASKS

    desc = _dict("task", desc)
    name = _str("task.name", desc.get("name"), TASKS)
    if name in ("text", "series"):
        req = {"name", "path", "length", "val_fraction", "sha256"} | ({"vocab"} if name == "text" else
                                                                     {"column", "burn_in", "mean", "std"})
        _keys("task", desc, req, {PATH_FROM_RUN} | ({"transform"} if name == "series" else set()))
        if "transform" in desc:
            from .data.series import TRANSFORMS
            _str("task.transform", desc["transform"], TRANSFORMS)
        _str("task.path", desc["path"])
        if PATH_FROM_RUN in desc:
            _str(f"task.{PATH_FROM_RUN}", desc[PATH_FROM_RUN])
        length = _int("task.length", desc["length"], 1 if name == "text" else 2, MAX_TASK_LENGTH)
        _num("task.val_fraction", desc["val_fraction"], 0.0, 1.0, lo_open=True, hi_open=True)
        if not isinstance(desc["sha256"], str) or not _HEX64.fullmatch(desc["sha256"]):
            raise _bad("task.sha256", desc["sha256"], "64 hexadecimal digits")
        if name == "text":
            vocab = _str("task.vocab", desc["vocab"])
            if len(vocab) < 2 or any(a >= b for a, b in zip(vocab, vocab[1:])):
                raise _bad("task.vocab", vocab, "at least 2 distinct characters in sorted order")
            n_in = n_out = len(vocab)
            loss = "cross_entropy"
        else:
            c = desc["column"]
            if c is not None and (isinstance(c, bool) or not isinstance(c, (str, int))):
                raise _bad("task.column", c, "a column name, a 0-based index or null")
            _int("task.burn_in", desc["burn_in"], 1, length - 1)
            _num("task.mean", desc["mean"])
            _num("task.std", desc["std"], 0.0, lo_open=True)
            n_in = n_out = 1
            loss = "squared"
    else:
        task = _synthetic(desc)
        if task.length > MAX_TASK_LENGTH:
            raise _bad("task.length", task.length, f"at most {MAX_TASK_LENGTH} steps")
        n_in, n_out, loss = task.n_in, task.n_out, task.loss
    if net is None:
        return
    if (net.n_in, net.n_out) != (n_in, n_out):
        raise InputError(f"task: the {name} task has {n_in} inputs and {n_out} outputs"
                         + (f" (its vocabulary has {n_in} characters)" if name == "text" else "")
                         + f" but the network has n_in={net.n_in}, n_out={net.n_out}")
    if (loss == "cross_entropy") != (net.g2.name == "softmax"):
        raise InputError(f"task: the {name} task's loss is {loss} but the network's g2 is {net.g2.name!r}"
                         + ("; expected 'softmax'" if loss == "cross_entropy" else ""))


# ---- training fields of a checkpoint -----------------------------------------------------------------
def check_train(train: Any):
    """A stored training configuration -> TrainConfig (InputError naming ``train.*``)."""
    from .config import FIELDS, TrainConfig, check

    train = _dict("train", train)
    _keys("train", train, _TRAIN_CORE, set(FIELDS))  # an option added by a later bptt takes its default
    values = dict(train)
    if isinstance(values.get("tbptt"), list):
        values["tbptt"] = tuple(values["tbptt"])
    for k in ("steps", "batch", "length", "hidden", "heldout", "checkpoint_every"):
        v = values.get(k)
        if isinstance(v, int) and not isinstance(v, bool) and v > 2**40:
            raise _bad(f"train.{k}", v, "a smaller integer")
    try:
        return check(TrainConfig(**values))
    except InputError as e:
        raise InputError(f"train: {e}") from None


def checkpoint_arrays(meta: dict, net) -> dict | None:
    """Check a checkpoint's fields and return ``{name: (shape, dtype)}`` of every array it must hold
    (``param/*``, ``opt/*``, ``carry/k``), or None when it has no ``train`` (a checkpoint written
    through the API with its own arrays: only the parameters are known then)."""
    from . import optim

    if "step" in meta:
        _int("step", meta["step"], 0, 2**53)
    if "elapsed" in meta:
        _num("elapsed", meta["elapsed"], 0.0)
    if "task" in meta:
        check_task(meta["task"], net)
    want = {f"param/{n}": (s, net.dtype) for n, s in net.param_shapes().items()}
    if "train" not in meta:
        return None
    cfg = check_train(meta["train"])
    if (cfg.cell, cfg.layers, cfg.dtype) != (net.cell_name, net.layers, net.dtype.name) or \
            cfg.hidden != net.n_hidden:
        raise InputError(f"train: cell {cfg.cell!r}, hidden {cfg.hidden}, layers {cfg.layers}, dtype {cfg.dtype} "
                         f"do not describe the stored network ({net.cell_name!r}, {net.n_hidden}, {net.layers}, "
                         f"{net.dtype.name})")
    want["opt/step"] = ((), np.dtype(np.int64))
    for slot in optim.get(cfg.optimizer, cfg.lr).slots:
        for n, s in net.param_shapes().items():
            want[f"opt/{slot}/{n}"] = (s, net.dtype)
    if cfg.tbptt is not None:
        L = net.layers * net.directions
        shape = (cfg.batch, net.n_hidden) if L == 1 else (L, cfg.batch, net.n_hidden)
        for k in range(net.cell.n_carry):
            want[f"carry/{k}"] = (shape, net.dtype)
    return want


def training_state(meta: dict, arrays: dict) -> tuple[int, float]:
    """(step, elapsed) of a training checkpoint; InputError naming a missing or bad field."""
    for k in ("step", "elapsed", "train", "task"):
        if k not in meta:
            raise InputError(f"{k}: the field is missing (a checkpoint written by bptt train has step, elapsed, "
                             "train and task)")
    step = _int("step", meta["step"], 0, 2**53)
    elapsed = _num("elapsed", meta["elapsed"], 0.0)
    t = arrays.get("opt/step")
    if t is not None and not 0 <= int(t) <= step:
        raise _bad("opt/step", int(t), f"an update count in [0, step={step}]")
    return step, elapsed


# ---- what save() may be asked to write ------------------------------------------------------------------
def check_user_meta(meta: Any, reserved: tuple, what: str = "meta") -> dict:
    """``save(meta=...)``: a dict of JSON data (checked by ``bptt.io`` too), without bptt's own keys, with
    a ``task`` that loads back. InputError otherwise."""
    if meta is None:
        return {}
    if not isinstance(meta, dict):
        raise _bad(what, meta, "a dict")
    for k in reserved:
        if k in meta:
            raise InputError(f"{what}[{k!r}]: {k!r} is written by bptt itself (the stored network's configuration); "
                             "use another key for your own information")
    return meta

