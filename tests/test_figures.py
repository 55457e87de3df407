"""benchmarks/check_figures.py: every figure it knows is still quoted where it says, and the quick groups
(the gradient-lab measurements, the adding baseline, the help defaults) agree with today's code. Slow (about
a minute on 2 cores): `pytest -m slow tests/test_figures.py`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "check_figures.py"


@pytest.mark.slow
def test_quoted_figures_are_found_and_the_quick_ones_are_true_today():
    r = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True, timeout=1800)
    lines = r.stdout.splitlines()
    assert not [ln for ln in lines if ln.startswith(("QUOTE?", "DRIFT"))], r.stdout
    assert r.returncode == 0, r.stderr
    assert sum(ln.startswith("ok") for ln in lines) >= 40
