"""`bptt train --help` states the defaults a run really uses: for every option whose help says
"default ...", and for every task, the stated value equals the value of the resolved configuration."""

from __future__ import annotations

import argparse
import re

import pytest

from bptt import config as C
from bptt.cli import build_parser
from bptt.data import get_task


def train_options():
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return {a.dest: a.help for a in sub.choices["train"]._actions if a.dest in C.FIELDS and a.help}


def stated(help_text: str) -> dict | None:
    """task -> the default the help text states for it (as text), or None if it states none."""
    m = re.search(r"default by task: ([^)]*)", help_text)
    if m:
        return dict(part.split(" ", 1) for part in m.group(1).split(", "))
    m = re.search(r"default ([^\s;,:)]+)(?:; ([^):]*))?", help_text)
    if not m:
        return None
    base, rest = m.group(1), dict(part.split(" ", 1) for part in m.group(2).split(", ")) if m.group(2) else {}
    return {t: rest.get(t, base) for t in C.TASKS}


def resolved(task: str, name: str):
    flags = {"task": task, "data": "x.csv" if task == "series" else None}
    v = getattr(C.resolve({}, flags), name)
    if v is None and name == "length":
        v = get_task(task).length
    return v


OPTIONS = ["cell", "hidden", "layers", "g1", "init", "forget_bias", "steps", "batch", "length", "optimizer", "lr",
           "schedule", "clip", "seed", "dtype", "checkpoint_every", "heldout", "sample_every", "log_every"]
# defaults that are rules, not values: g2 (softmax for classification tasks), eval_every (a tenth of the run),
# online_every (None: every step)
RULES = {"task", "g2", "eval_every", "online_every"}


@pytest.mark.parametrize("name", OPTIONS)
def test_help_default_is_what_every_task_resolves_to(name):
    text = train_options()[name]
    per_task = stated(text)
    assert per_task is not None, f"--{name}: no default stated in {text!r}"
    assert set(per_task) == set(C.TASKS), text
    for task in C.TASKS:
        assert per_task[task] == str(resolved(task, name)), (name, task, text)


def test_every_stated_default_is_checked():
    assert {n for n, h in train_options().items() if "default" in h and n in C.FIELDS} - RULES == set(OPTIONS)
