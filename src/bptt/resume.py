"""What ``--resume`` may change in a run, and what extending a finished run does to its schedule.

A checkpoint continues only under the options it was made with, except:
- the watching and bookkeeping options (``WATCH``): they change what is recorded, not the model;
- ``steps``: more steps extend the run (no more than already done: the checkpoint's model is saved);
- when extending, ``lr`` and ``schedule``: the choice of what the learning rate does over the new steps.
"""

from __future__ import annotations

import shlex
from pathlib import Path

from . import optim
from .errors import InputError

WATCH = {"steps", "checkpoint_every", "heldout", "eval_every", "sample_every", "log_every", "tensorboard"}
RESOLVED = {"length", "g2"}  # stored as None by bptt before 0.1 resolved them: None matches the resolved value


def check(cfg, saved: dict, done: int, out) -> str | None:
    """Raise InputError when ``cfg`` cannot continue the checkpoint made with ``saved`` after ``done`` steps;
    return a note on what extending the run does to the learning rate (None when not extending)."""
    old_steps = saved.get("steps", cfg.steps)
    extending = cfg.steps > old_steps
    free = WATCH | ({"lr", "schedule"} if extending else set())
    for k, v in cfg.to_dict().items():
        a = saved.get(k)
        if k in free or a == v or (k in RESOLVED and a is None):
            continue
        hint = (" (--lr and --schedule may change only when --steps extends the run)" if k in ("lr", "schedule")
                else "")
        what = "the task" if k == "task" else f"--{k.replace('_', '-')}"  # the task is positional: no --task
        again = shlex.join(["bptt", "train", "--config", str(Path(out) / "config.toml"), "--out", str(out), "--resume"])
        raise InputError(f"--resume: the checkpoint in {str(out)!r} was made with {what} {a!r}, "
                         f"this command asks for {v!r}{hint}; use the same options ({again} repeats them) "
                         "or a new --out")
    if cfg.steps <= done:
        return (f"the checkpoint is already at step {done} (--steps {cfg.steps}): nothing left to train; its model "
                "is evaluated and saved (a larger --steps extends the run)")
    if not extending:
        return None
    return extension_note(saved, cfg, old_steps, done)


def extension_note(saved: dict, cfg, old_steps: int, done: int) -> str:
    """One paragraph: the learning rate before and after the extension, and the other choice."""
    old = optim.schedule(saved.get("schedule", cfg.schedule), saved.get("lr", cfg.lr), old_steps)
    new = optim.schedule(cfg.schedule, cfg.lr, cfg.steps)
    end, nxt, last = old(max(done - 1, 0)), new(done), new(cfg.steps - 1)
    head = f"extending the run from {old_steps} to {cfg.steps} steps: "
    if cfg.schedule == "constant":
        return head + f"the learning rate stays constant at {cfg.lr:g} (it was {end:.3g} at the last step)"
    return (head + f"the {cfg.schedule} schedule now spans {cfg.steps} steps, so the learning rate goes from "
            f"{end:.3g} (at step {done}) to {nxt:.3g} at step {done + 1}, then to {last:.3g} at step "
            f"{cfg.steps}; for a fixed rate over the new steps instead, resume with --schedule constant --lr RATE")
