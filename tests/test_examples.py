"""The walk-throughs in examples/ run and say what they claim."""

import re
import subprocess
import sys
from pathlib import Path

EX = Path(__file__).parent.parent / "examples"


def run(name, *args):
    r = subprocess.run([sys.executable, str(EX / name), *args], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_seed_by_hand():
    out = run("01_seed_by_hand.py")
    diffs = [float(x) for x in re.findall(r"\|by hand - library\| = ([0-9.e+-]+)", out)]
    assert len(diffs) == 3 and max(diffs) < 1e-12
    assert float(re.search(r"sum of the terms - dE_3/dWs: ([0-9.e+-]+)", out).group(1)) < 1e-12
    assert "truncate=1 equals term i=3: True" in out


def test_train_with_the_api():
    out = run("02_train_with_the_api.py", "600")
    assert "identical = True" in out
    mse = float(re.search(r"'mse': ([0-9.e+-]+)", out).group(1))
    base = float(re.search(r"'baseline_mse': ([0-9.e+-]+)", out).group(1))
    assert mse < base / 2  # 600 steps already beat the constant predictor clearly


def test_vanishing_gradient():
    out = run("03_vanishing_gradient.py")
    mem = [int(m) for m in re.findall(r"effective memory (\d+)", out)]
    assert len(mem) == 3 and mem[0] < 10 and mem[1] > 20 and mem[2] > 20
