"""What 'solved' means, and a plain word when a model does not beat its task's baseline."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from bptt.cli import main
from bptt.data import TASKS
from bptt.evaluate import VERDICTS, verdict


@pytest.mark.parametrize("name, result, beats", [
    ("adding", {"solved": 0.98, "mse": 0.0002, "baseline_mse": 0.17}, True),
    ("adding", {"solved": 0.07, "mse": 0.2, "baseline_mse": 0.17}, False),
    ("series", {"solved": 0.3, "mse": 2957.0, "baseline_mse": 2572.0}, False),
    ("series", {"solved": 1.0, "mse": 915.0, "baseline_mse": 2572.0}, True),
    ("sine", {"solved": 1.0, "mse_after_burn_in": 3e-5, "baseline_last_mse": 0.2}, True),
    ("copy", {"solved": 0.0, "ce": 2.2, "baseline_ce": 2.079}, False),
    ("order", {"solved": 1.0, "ce": 0.006, "baseline_ce": 1.386}, True),
    ("text", {"solved": 0.9, "bpc": 2.1, "baseline_bpc": 4.5}, True),
    ("text", {"solved": 0.0, "bpc": 4.6, "baseline_bpc": 4.5}, False),
])
def test_verdict_lines(name, result, beats):
    lines = verdict({"name": name}, result)
    assert lines[0].startswith(f"solved {result['solved']:.4g}: the fraction of ")
    assert len(lines) == 2
    assert lines[1].startswith("beats the baseline" if beats else "does NOT beat the baseline")
    key, base_key, _ = VERDICTS[name][1]
    assert f"{key} {result[key]:.4g} against {result[base_key]:.4g}" in lines[1]


def test_every_task_has_a_verdict_and_the_task_parameters_fill_it():
    assert set(VERDICTS) == set(TASKS)
    assert "within 0.1 of" in verdict({"name": "adding", "tolerance": 0.1}, {"solved": 1.0})[0]
    assert "5 recalled symbols" in verdict({"name": "copy", "n_recall": 5}, {"solved": 1.0})[0]
    assert verdict({"name": "unknown"}, {"solved": 1.0}) == []


def test_evaluate_prints_the_verdict_that_its_figures_imply(tmp_path, capsys):
    out = tmp_path / "r"
    v = 50 + 8 * np.sin(2 * np.pi * np.arange(120) / 12) + 0.3 * np.arange(120)
    data = tmp_path / "s.csv"
    data.write_text("value\n" + "".join(f"{x:.6f}\n" for x in v))
    assert main(["train", "series", "--data", str(data), "--length", "8", "--steps", "3", "--hidden", "4",
                 "--quiet", "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(out), "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert main(["evaluate", str(out)]) == 0
    text = capsys.readouterr().out
    assert "solved" in text and "the fraction of held-out windows where the net's forecasts beat" in text
    word = "beats the baseline" if r["mse"] < r["baseline_mse"] else "does NOT beat the baseline"
    assert word in text and math.isfinite(r["mse"])
