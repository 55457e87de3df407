"""Learning-rate schedules: frozen dataclasses called as ``schedule(step) -> lr``.

``step`` counts the updates already made (0 for the first update), the convention of
``torch.optim.lr_scheduler`` when ``scheduler.step()`` is called once after each
``optimizer.step()``. Every schedule has ``config()`` giving a JSON-able dict, and
``schedule_from_config`` rebuilds it, so a schedule can be stored in a checkpoint's metadata.

==================  =====================================================================
CLI name            schedule built by ``schedule(name, lr, total_steps, **kw)``
==================  =====================================================================
``constant``        ``constant(lr)``
``step``            ``step_decay(lr, every=kw.get("every", max(1, total_steps // 3)),
                    gamma=kw.get("gamma", 0.1))``
``cosine``          ``cosine(lr, total_steps, min_lr=kw.get("min_lr", 0.0))``
``warmup-cosine``   ``warmup(cosine(lr, total_steps, min_lr), warmup_steps=kw.get(
                    "warmup_steps", max(1, total_steps // 20)))``
==================  =====================================================================
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from bptt.errors import InputError
from bptt.optim import _checks


class Schedule:
    """Base class of the schedules: ``schedule(step: int) -> float`` learning rate."""

    def __call__(self, step: int) -> float:  # pragma: no cover - overridden
        raise NotImplementedError

    def config(self) -> dict:
        """A JSON-able description; ``schedule_from_config(s.config()) == s``."""
        raise NotImplementedError  # pragma: no cover


@dataclass(frozen=True)
class Constant(Schedule):
    """``lr`` at every step."""

    lr: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "lr", _checks.positive("lr", self.lr))

    def __call__(self, step: int) -> float:
        _checks.count("step", step, 0)
        return self.lr

    def config(self) -> dict:
        return {"name": "constant", "lr": self.lr}


@dataclass(frozen=True)
class StepDecay(Schedule):
    """``lr * gamma ** (step // every)`` (``torch.optim.lr_scheduler.StepLR``)."""

    lr: float
    every: int
    gamma: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "lr", _checks.positive("lr", self.lr))
        object.__setattr__(self, "every", _checks.count("every", self.every))
        gamma = _checks.positive("gamma", self.gamma)
        if gamma > 1.0:
            raise InputError(f"gamma must be in (0, 1] (the factor applied every `every` steps), "
                             f"got {gamma!r}; typical values are 0.1 or 0.5")
        object.__setattr__(self, "gamma", gamma)

    def __call__(self, step: int) -> float:
        step = _checks.count("step", step, 0)
        return self.lr * self.gamma ** (step // self.every)

    def config(self) -> dict:
        return {"name": "step", "lr": self.lr, "every": self.every, "gamma": self.gamma}


@dataclass(frozen=True)
class Cosine(Schedule):
    """Half a cosine from ``lr`` at step 0 to ``min_lr`` at ``total_steps``, then ``min_lr``.

    Same values as ``torch.optim.lr_scheduler.CosineAnnealingLR(T_max=total_steps,
    eta_min=min_lr)`` for steps 0..total_steps (torch climbs back up after; this holds).
    """

    lr: float
    total_steps: int
    min_lr: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "lr", _checks.positive("lr", self.lr))
        object.__setattr__(self, "total_steps", _checks.count("total_steps", self.total_steps))
        min_lr = _checks.nonnegative("min_lr", self.min_lr)
        if min_lr > self.lr:
            raise InputError(f"min_lr must be <= lr, got min_lr={min_lr!r} and lr={self.lr!r}")
        object.__setattr__(self, "min_lr", min_lr)

    def __call__(self, step: int) -> float:
        step = min(_checks.count("step", step, 0), self.total_steps)
        cos = math.cos(math.pi * step / self.total_steps)
        return self.min_lr + (self.lr - self.min_lr) * (1.0 + cos) / 2.0

    def config(self) -> dict:
        return {"name": "cosine", "lr": self.lr, "total_steps": self.total_steps,
                "min_lr": self.min_lr}


@dataclass(frozen=True)
class Warmup(Schedule):
    """``schedule(step) * min(1, (step + 1) / warmup_steps)``: a linear warm-up.

    The factor rises linearly along the line that is 0 at step -1 and 1 at step
    ``warmup_steps - 1`` (so the first update is not wasted with lr = 0), i.e.
    ``torch.optim.lr_scheduler.LinearLR(start_factor=1/warmup_steps, total_iters=warmup_steps-1)``.
    """

    schedule: Schedule
    warmup_steps: int

    def __post_init__(self) -> None:
        if not isinstance(self.schedule, Schedule):
            raise InputError(f"schedule must be a bptt.optim Schedule (constant, step_decay, "
                             f"cosine, warmup), got {type(self.schedule).__name__}")
        object.__setattr__(self, "warmup_steps", _checks.count("warmup_steps", self.warmup_steps))

    def __call__(self, step: int) -> float:
        step = _checks.count("step", step, 0)
        base = self.schedule(step)
        if step + 1 >= self.warmup_steps:
            return base
        return base * ((step + 1) / self.warmup_steps)

    def config(self) -> dict:
        return {"name": "warmup", "warmup_steps": self.warmup_steps,
                "schedule": self.schedule.config()}


def constant(lr: float) -> Constant:
    """``lr`` (float > 0) at every step."""
    return Constant(lr)


def step_decay(lr: float, every: int, gamma: float) -> StepDecay:
    """``lr * gamma ** (step // every)``; ``every`` int >= 1, ``gamma`` in (0, 1]."""
    return StepDecay(lr, every, gamma)


def cosine(lr: float, total_steps: int, min_lr: float = 0.0) -> Cosine:
    """Cosine decay from ``lr`` to ``min_lr`` over ``total_steps`` steps (then ``min_lr``)."""
    return Cosine(lr, total_steps, min_lr)


def warmup(schedule: Schedule, warmup_steps: int) -> Warmup:
    """Linear warm-up over the first ``warmup_steps`` steps, multiplying ``schedule``."""
    return Warmup(schedule, warmup_steps)


SCHEDULES = ("constant", "step", "cosine", "warmup-cosine")
_KWARGS = {"constant": (), "step": ("every", "gamma"), "cosine": ("min_lr",),
           "warmup-cosine": ("min_lr", "warmup_steps")}


def schedule(name: str, lr: float, total_steps: int, **kw) -> Schedule:
    """Build the schedule the CLI calls ``name`` (see the module docstring for the defaults).

    Args:
        name: one of ``SCHEDULES``.
        lr: peak learning rate, float > 0.
        total_steps: number of updates of the whole run, int >= 1.
        **kw: the schedule's options (``every``, ``gamma``, ``min_lr``, ``warmup_steps``).
    """
    if name not in _KWARGS:
        raise InputError(f"schedule name must be one of {', '.join(SCHEDULES)}; got {name!r}")
    total_steps = _checks.count("total_steps", total_steps)
    unknown = sorted(set(kw) - set(_KWARGS[name]))
    if unknown:
        raise InputError(f"schedule {name!r} takes options {list(_KWARGS[name])}; got unknown "
                         f"option(s) {unknown}")
    if name == "constant":
        return constant(lr)
    if name == "step":
        return step_decay(lr, kw.get("every", max(1, total_steps // 3)), kw.get("gamma", 0.1))
    inner = cosine(lr, total_steps, kw.get("min_lr", 0.0))
    if name == "cosine":
        return inner
    return warmup(inner, kw.get("warmup_steps", max(1, total_steps // 20)))


def schedule_from_config(config: dict) -> Schedule:
    """Rebuild a schedule from ``Schedule.config()`` output (e.g. read back from JSON)."""
    if not isinstance(config, dict) or "name" not in config:
        raise InputError(f"schedule config must be a dict with a 'name' key, got {config!r}")
    cfg = dict(config)
    name = cfg.pop("name")
    try:
        if name == "warmup":
            return Warmup(schedule_from_config(cfg.pop("schedule")), **cfg)
        cls = {"constant": Constant, "step": StepDecay, "cosine": Cosine}[name]
        return cls(**cfg)
    except (KeyError, TypeError) as exc:
        raise InputError(f"schedule config {config!r} is not valid ({exc}); expected the output "
                         f"of Schedule.config()") from None
