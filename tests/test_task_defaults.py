"""Slow (deselected by default; `pytest -m slow`): `bptt train TASK` with its defaults solves each synthetic
task, and the series default beats the last-value forecast on the shipped airline series. Minutes of CPU:
the figures for the README come from `python benchmarks/task_defaults.py`, which runs the same code."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "task_defaults.py"


def _bench():
    spec = importlib.util.spec_from_file_location("task_defaults", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.slow
@pytest.mark.parametrize("task", ["adding", "sine", "copy", "order", "series"])
def test_defaults_solve_the_task(task, tmp_path):
    bench = _bench()
    r = bench.run_task(task, tmp_path)
    assert "error" not in r, r
    if task == "series":
        assert r["value"] < r["baseline"], r      # beats the last-value forecast on the airline held-out years
    else:
        assert r["solved"] >= bench.SOLVED, r
