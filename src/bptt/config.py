"""The training configuration: one frozen dataclass, filled from defaults < a TOML file < flags.

TOML keys are the long option names (``hidden = 64``, ``checkpoint-every = 200``, ``tbptt = [10, 20]``);
underscores work too. Every value is checked here, with messages that name the option.
"""

from __future__ import annotations

import dataclasses
import numbers
import tomllib
from dataclasses import dataclass

from .activations import ACTIVATIONS, HIDDEN_ACTIVATIONS
from .errors import InputError

CELLS = ("elman", "lstm", "gru")
OPTIMIZERS = ("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "adamw")
SCHEDULES = ("constant", "step", "cosine", "warmup-cosine")


@dataclass(frozen=True)
class TrainConfig:
    task: str = "adding"
    data: str | None = None  # text/series file, or a shipped name (bptt.data.shipped: airline, docs)
    column: str | None = None  # series column (name or 0-based index)
    cell: str = "elman"
    hidden: int = 32
    layers: int = 1
    g1: str = "tanh"  # Elman only
    g2: str | None = None  # default: softmax for cross-entropy tasks, identity otherwise
    init: str = "uniform"
    forget_bias: float = 1.0  # LSTM only (Jozefowicz et al. 2015)
    steps: int = 1000
    batch: int = 32
    length: int | None = None  # task default when None
    tbptt: tuple[int, int] | None = None  # (k1, k2): stream training, Williams & Peng BPTT(k1, k2)
    truncate: int | None = None  # per-term truncation k (batch mode)
    online: str | None = None  # online gradient algorithm on streams (bptt.online): rtrl, snap1, uoro, ...
    online_every: int | None = None  # --online: update every K stream steps (None = 1)
    optimizer: str = "adam"
    lr: float = 0.01
    schedule: str = "constant"
    clip: float | None = 1.0  # global-norm clipping (Pascanu et al. 2013); None or 0 = off
    seed: int = 0
    dtype: str = "float32"  # what PyTorch, Keras and JAX train in; --dtype float64 for exact work
    checkpoint_every: int = 100
    track_gradients: int = 0  # record gradient-flow metrics every N steps (0 = off)
    omega: float = 0.0  # Pascanu et al. 2013 regulariser weight (Elman only)
    heldout: int = 512  # held-out sequences of each evaluation
    eval_every: int | None = None  # held-out evaluation every N steps (None: a tenth of the run; 0: at the end only)
    sample_every: int = 0  # text: a short sample every N steps into the log and samples.txt (0 = off)
    log_every: int = 0  # stderr not a terminal: a log line every N steps (0: every 30 s)
    tensorboard: bool = False  # event files under DIR/tb/ (the [tensorboard] extra)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        if d["tbptt"] is not None:
            d["tbptt"] = list(d["tbptt"])
        return d


FIELDS = {f.name: f for f in dataclasses.fields(TrainConfig)}
INTS = {"hidden": 1, "layers": 1, "steps": 1, "batch": 1, "length": 2, "truncate": 1, "seed": 0,
        "checkpoint_every": 1, "track_gradients": 0, "heldout": 1, "eval_every": 0, "sample_every": 0,
        "log_every": 0}
FLOATS = {"forget_bias": None, "lr": 0.0, "clip": 0.0, "omega": 0.0}
TASKS = ("adding", "sine", "copy", "order", "text", "series")
G1S = HIDDEN_ACTIVATIONS
CHOICES = {"task": TASKS, "cell": CELLS, "optimizer": OPTIMIZERS, "schedule": SCHEDULES,
           "dtype": ("float32", "float64"), "init": ("uniform", "orthogonal", "identity"), "g1": G1S}


def _opt(name: str) -> str:
    return "--" + name.replace("_", "-")


def check(cfg: TrainConfig) -> TrainConfig:
    """Validate every field; returns cfg unchanged or raises InputError naming the option."""
    for name, low in INTS.items():
        v = getattr(cfg, name)
        if v is None and name in ("length", "truncate", "eval_every"):
            continue
        if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < low:
            raise InputError(f"{_opt(name)}: got {v!r}, expected an integer >= {low}")
    for name, low in FLOATS.items():
        v = getattr(cfg, name)
        if v is None and name == "clip":
            continue
        if isinstance(v, bool) or not isinstance(v, numbers.Real) or v != v or abs(v) == float("inf"):
            raise InputError(f"{_opt(name)}: got {v!r}, expected a finite number")
        if low is not None and (v < low or (name == "lr" and v <= 0)):
            raise InputError(f"{_opt(name)}: got {v!r}, expected a number {'>' if name == 'lr' else '>='} {low}")
    for name, choices in CHOICES.items():
        v = getattr(cfg, name)
        if not isinstance(v, str) or v not in choices:
            hint = " (softmax is an output activation: use it as --g2)" if name == "g1" and v == "softmax" else ""
            raise InputError(f"{_opt(name) if name != 'task' else 'task'}: got {v!r}{hint}, "
                             f"expected one of {', '.join(choices)}")
    if not isinstance(cfg.tensorboard, bool):
        raise InputError(f"--tensorboard: got {cfg.tensorboard!r}, expected true or false")
    if cfg.sample_every and cfg.task != "text":
        raise InputError(f"--sample-every: got {cfg.sample_every} for the {cfg.task} task; samples are for the text "
                         "task (leave --sample-every out)")
    if cfg.g2 is not None and (not isinstance(cfg.g2, str) or cfg.g2 not in ACTIVATIONS):
        raise InputError(f"--g2: got {cfg.g2!r}, expected one of {', '.join(ACTIVATIONS)}")
    for name in ("data", "column"):
        v = getattr(cfg, name)
        if v is not None and (not isinstance(v, str) or not v):
            raise InputError(f"{_opt(name)}: got {v!r}, expected "
                             + ("a file name" if name == "data" else "a column name or 0-based index"))
        if v is not None:
            utf8(_opt(name), v)
    if cfg.column is not None and cfg.task != "series":
        raise InputError(f"--column: got {cfg.column!r} for the {cfg.task} task; --column is for the series task")
    if cfg.tbptt is not None:
        t = cfg.tbptt
        if (not isinstance(t, (tuple, list)) or len(t) != 2
                or not all(isinstance(k, numbers.Integral) and not isinstance(k, bool) for k in t)):
            raise InputError(f"--tbptt: got {t!r}, expected two integers K1 K2")
        k1, k2 = t
        if k1 < 1 or k2 < k1:
            raise InputError(f"--tbptt: got K1={k1}, K2={k2}; expected 1 <= K1 <= K2 (the K1 newest losses "
                             "are back-propagated through the K2 newest states)")
        if cfg.truncate is not None:
            raise InputError("--truncate and --tbptt: choose one (--truncate k is per-term truncation on whole "
                             "sequences, --tbptt K1 K2 is stream training)")
    if cfg.online is not None or cfg.online_every is not None:
        from .online.train import check_config
        check_config(cfg)
    if cfg.omega and cfg.cell != "elman":
        raise InputError(f"--omega: the Pascanu et al. regulariser is implemented for the Elman cell; got --cell {cfg.cell}")
    if cfg.task == "series" and not cfg.data:
        raise InputError("--data: the series task needs a CSV or .npy file (or the shipped series: --data airline)")
    return cfg


def utf8(option: str, name: str) -> str:
    """A file or folder name given on the command line must be valid UTF-8: bptt records it in config.toml
    and in the model file (a name that is not arrives as lone surrogates)."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError as e:
        shown = name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        raise InputError(f"{option}: the name '{shown}' is not valid UTF-8 (byte {e.start}); bptt records names "
                         "in config.toml and the model file as UTF-8: rename it with UTF-8 characters") from None
    return name


def read_toml(path) -> dict:
    try:
        with open(path, "rb") as f:
            raw = tomllib.load(f)
    except FileNotFoundError:
        raise InputError(f"--config: file {str(path)!r} does not exist") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise InputError(f"--config: {str(path)!r} is not valid TOML ({e})") from None
    except RecursionError:
        raise InputError(f"--config: {str(path)!r} nests tables or arrays too deeply to read; expected flat "
                         "'key = value' lines") from None
    out = {}
    for key, v in raw.items():
        name = key.replace("-", "_")
        if name not in FIELDS:
            raise InputError(f"--config: unknown key {key!r} in {str(path)!r}; expected long option names such as "
                             + ", ".join(sorted(k.replace('_', '-') for k in FIELDS)))
        out[name] = tuple(v) if name == "tbptt" and isinstance(v, list) else v
    return out


# per-task defaults, between the dataclass defaults and the user's file/flags (measured on 2 cores:
# adding --length 10 reaches solved ~0.98 in ~12 s with these)
TASK_DEFAULTS = {
    "adding": {"length": 10, "steps": 6000, "batch": 64, "schedule": "cosine"},
    "sine": {"steps": 2000, "schedule": "cosine"},
    # copy: a tanh Elman net (H=32, 3000 steps) ended at solved 0; the GRU below reaches ~0.97 (delay 10)
    "copy": {"length": 10, "cell": "gru", "hidden": 96, "steps": 7000, "schedule": "cosine"},
    # order: the tanh Elman net is fragile at T = 30 (float32, seed 0: chance after 3000 steps); the GRU
    # reaches solved 1.0 by step 300
    "order": {"length": 30, "cell": "gru", "steps": 1500, "schedule": "cosine"},
    "text": {"hidden": 128, "length": 50, "steps": 4000, "lr": 0.003, "schedule": "cosine", "clip": 5.0},
    "series": {"length": 24, "steps": 1500, "batch": 16, "lr": 0.003, "schedule": "cosine", "hidden": 16},
}


def resolve(file_values: dict, flag_values: dict) -> TrainConfig:
    """defaults < task defaults < file < flags (flags given as None are 'not given')."""
    given = {**file_values, **{k: v for k, v in flag_values.items() if v is not None}}
    task = given.get("task", TrainConfig.task)
    merged = {**(TASK_DEFAULTS.get(task, {}) if isinstance(task, str) else {}), **given}
    if merged.get("clip") == 0:
        merged["clip"] = None
    if isinstance(merged.get("tbptt"), list):
        merged["tbptt"] = tuple(merged["tbptt"])
    if isinstance(merged.get("column"), int) and not isinstance(merged["column"], bool):
        merged["column"] = str(merged["column"])  # TOML column = 2: the 0-based index
    return check(TrainConfig(**merged))


def to_toml(cfg: TrainConfig) -> str:
    """The resolved configuration as TOML (readable back with --config)."""
    lines = ["# bptt train: resolved configuration (use with: bptt train --config THIS_FILE)"]
    for k, v in cfg.to_dict().items():
        if v is None:
            continue
        key = k.replace("_", "-")
        if isinstance(v, str):
            lines.append(f"{key} = {_toml_str(v)}")
        elif isinstance(v, bool):
            lines.append(f"{key} = {'true' if v else 'false'}")
        elif isinstance(v, list):
            lines.append(f"{key} = [{', '.join(str(x) for x in v)}]")
        else:
            lines.append(f"{key} = {v!r}")
    return "\n".join(lines) + "\n"


def _toml_str(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'




def default_help(name: str) -> str:
    """The "default ..." phrase of ``bptt train --help`` for option ``name``, derived from TrainConfig's default
    and TASK_DEFAULTS (the same table ``resolve`` uses), so the help cannot drift from what a run does.

    "default 32; text 128, series 16" (the tasks that differ listed after the common default), or
    "default by task: adding 6000, sine 2000, ..." when no task keeps the dataclass default."""
    base = FIELDS[name].default
    per_task = {t: TASK_DEFAULTS.get(t, {}).get(name, base) for t in TASKS}
    if name == "length":  # None: the task's own default length
        per_task = {t: _task_length(t) if v is None else v for t, v in per_task.items()}
    if len(set(per_task.values())) == 1:
        return f"default {next(iter(per_task.values()))}"
    if base not in per_task.values():
        return "default by task: " + ", ".join(f"{t} {v}" for t, v in per_task.items())
    return f"default {base}; " + ", ".join(f"{t} {v}" for t, v in per_task.items() if v != base)


def _task_length(task: str):
    from .data import get_task

    try:
        return get_task(task).length
    except InputError:  # a task that needs --data to know its length
        return None
