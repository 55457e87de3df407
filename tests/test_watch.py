"""Watching a run: held-out columns, log lines when stderr is not a terminal, samples, TensorBoard event
files read back with TensorBoard's own reader, loss.png, and resume without duplicated steps."""

from __future__ import annotations

import csv
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bptt import files, watch
from bptt.cli import main
from bptt.sampling import sample_text

HERE = Path(__file__).parent
SMALL = ["--length", "6", "--batch", "8", "--hidden", "6", "--heldout", "16"]
TEXT = ("It was the best of times, it was the worst of times, it was the age of wisdom, it was the age of "
        "foolishness, it was the epoch of belief, it was the epoch of incredulity. ") * 12


def rows_of(out):
    with open(Path(out) / "metrics.csv", newline="") as f:
        return list(csv.DictReader(f))


def bptt(*argv, timeout=120):
    return subprocess.run([sys.executable, "-m", "bptt", *map(str, argv)], capture_output=True, text=True,
                          timeout=timeout)


def read_events(folder):
    """{tag: [(step, value)]} of the scalars and {tag: [(step, text)]} of the texts, by TensorBoard's reader."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    ea = EventAccumulator(str(folder), size_guidance={"scalars": 0, "tensors": 0})
    ea.Reload()
    scalars = {t: [(e.step, e.value) for e in ea.Scalars(t)] for t in ea.Tags()["scalars"]}
    texts = {t.split("/")[0]: [(e.step, e.tensor_proto.string_val[0].decode()) for e in ea.Tensors(t)]
             for t in ea.Tags()["tensors"]}
    return scalars, texts


def assert_events_match_metrics(out):
    """Every metrics.csv column is a scalar with one event per step where the column has a value, equal to it
    (as the float32 TensorBoard stores), and no other scalar."""
    rows = rows_of(out)
    scalars, texts = read_events(Path(out) / "tb")
    columns = [c for c in rows[0] if c != "step"]
    assert sorted(scalars) == sorted(columns)
    for c in columns:
        want = [(int(r["step"]), np.float32(float(r[c]))) for r in rows if r[c] != ""]
        got = [(s, np.float32(v)) for s, v in scalars[c]]
        assert got == want, c
    return scalars, texts


# ---- held-out columns ------------------------------------------------------------------------------------
def test_heldout_columns_are_the_evaluation_of_the_model_at_that_step(tmp_path):
    """Row 10 of a 30-step run holds the held-out evaluation of the weights after step 10: the same figures as
    the final evaluation of a 10-step run (constant schedule: the first 10 steps are the same)."""
    common = ["train", "adding", *SMALL, "--schedule", "constant", "--quiet"]
    assert main(common + ["--steps", "30", "--eval-every", "10", "--out", str(tmp_path / "long")]) == 0
    assert main(common + ["--steps", "10", "--out", str(tmp_path / "short")]) == 0
    rows = rows_of(tmp_path / "long")
    assert list(rows[0]) == ["step", "loss", "grad_norm", "lr", "seconds", "heldout_loss", "heldout_mse",
                             "heldout_solved"]
    evaluated = [int(r["step"]) for r in rows if r["heldout_loss"] != ""]
    assert evaluated == [10, 20, 30]
    assert all(r["heldout_mse"] == r["heldout_solved"] == "" for r in rows if int(r["step"]) not in evaluated)
    short = files.load(tmp_path / "short" / "model.npz").meta["heldout"]
    assert float(rows[9]["heldout_loss"]) == pytest.approx(short["loss"], rel=1e-8)
    assert float(rows[9]["heldout_solved"]) == short["solved"]
    final = files.load(tmp_path / "long" / "model.npz").meta["heldout"]  # the final evaluation: the same code
    assert float(rows[-1]["heldout_mse"]) == pytest.approx(final["mse"], rel=1e-8)


def test_default_eval_every_is_a_tenth_of_the_run_and_written_to_config(tmp_path):
    assert main(["train", "adding", *SMALL, "--steps", "40", "--quiet", "--out", str(tmp_path / "r")]) == 0
    assert [int(r["step"]) for r in rows_of(tmp_path / "r") if r["heldout_loss"]] == list(range(4, 41, 4))
    assert "eval-every = 4" in (tmp_path / "r" / "config.toml").read_text()


def test_eval_every_zero_evaluates_at_the_end_only(tmp_path):
    assert main(["train", "adding", *SMALL, "--steps", "12", "--eval-every", "0", "--quiet",
                 "--out", str(tmp_path / "r")]) == 0
    assert [int(r["step"]) for r in rows_of(tmp_path / "r") if r["heldout_loss"]] == [12]


# ---- the log ----------------------------------------------------------------------------------------------
def test_log_lines_when_stderr_is_not_a_terminal(tmp_path):
    r = bptt("train", "adding", *SMALL, "--steps", "30", "--log-every", "10", "--eval-every", "15",
             "--out", tmp_path / "r")
    assert r.returncode == 0, r.stderr
    assert "\r" not in r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith("step ")]
    assert [ln.split()[1] for ln in lines] == ["10/30", "15/30", "20/30", "30/30"]
    assert "held-out" not in lines[0]  # nothing evaluated yet
    assert "held-out solved" in lines[1] and "(step 15)" in lines[2]  # fresh at 15, then said to be from 15
    assert all("steps/s" in ln and "left" in ln and " loss " in ln for ln in lines)
    row15 = rows_of(tmp_path / "r")[14]
    assert f"held-out solved {float(row15['heldout_solved']):.4g}" in lines[1]


def test_quiet_silences_the_log(tmp_path):
    r = bptt("train", "adding", *SMALL, "--steps", "20", "--log-every", "5", "--quiet", "--out", tmp_path / "r")
    assert r.returncode == 0 and r.stderr == "" and r.stdout == ""


# ---- samples ----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def text_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("text")
    (root / "t.txt").write_text(TEXT, encoding="utf-8")
    out = root / "run"
    r = bptt("train", "text", "--data", root / "t.txt", "--length", "12", "--hidden", "8", "--batch", "4",
             "--steps", "10", "--sample-every", "5", "--heldout", "8", "--tensorboard", "--out", out)
    assert r.returncode == 0, r.stderr
    return out, r.stderr


def test_samples_go_to_samples_txt_and_the_log(text_run):
    out, err = text_run
    samples = watch.read_samples(out / "samples.txt")
    assert [s for s, _ in samples] == [5, 10]
    net = files.load(out / "model.npz")
    # the step-10 sample is the trained model's: recomputed from model.npz with the same seed
    assert samples[1][1] == sample_text(net, 120, temperature=0.7, seed=10)
    assert all(len(t) == 120 for _, t in samples)
    assert f"sample at step 5: {samples[0][1]!r}" in err


def test_sample_every_is_for_text_only(tmp_path, capsys):
    assert main(["train", "adding", "--sample-every", "5", "--out", str(tmp_path / "r")]) == 2
    assert "--sample-every" in capsys.readouterr().err and not (tmp_path / "r").exists()


# ---- TensorBoard ------------------------------------------------------------------------------------------
def test_tensorboard_scalars_equal_metrics_csv(tmp_path):
    out = tmp_path / "tb-run"
    assert main(["train", "adding", *SMALL, "--steps", "20", "--eval-every", "5", "--track-gradients", "4",
                 "--tensorboard", "--quiet", "--out", str(out)]) == 0
    scalars, texts = assert_events_match_metrics(out)
    assert {"heldout_solved", "effective_memory", "lr", "grad_norm"} <= set(scalars)
    [(step, config)] = texts["config"]
    assert step == 0 and (out / "config.toml").read_text() in config


def test_tensorboard_text_samples(text_run):
    out, _ = text_run
    _, texts = assert_events_match_metrics(out)
    got = [(s, t.strip("`\n")) for s, t in texts["sample"]]
    assert got == watch.read_samples(out / "samples.txt")


@pytest.mark.parametrize("mode,n", [("step", 7), ("step", 13), ("fsync", 5)])
def test_tensorboard_resume_after_kill9_has_each_step_once(tmp_path, mode, n):
    out = tmp_path / "k"
    args = ["train", "adding", *SMALL, "--steps", "20", "--eval-every", "3", "--checkpoint-every", "4",
            "--tensorboard", "--quiet", "--out", str(out)]
    r = subprocess.run([sys.executable, str(HERE / "_killer.py"), mode, str(n), *args], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == -signal.SIGKILL, r.stderr
    assert not (out / "model.npz").exists()
    r = bptt(*args[:-1], out, "--resume")  # args end with --out DIR
    assert r.returncode == 0, r.stderr
    scalars, texts = assert_events_match_metrics(out)
    assert [s for s, _ in scalars["loss"]] == list(range(1, 21))
    assert len(texts["config"]) == 1
    assert len(list((out / "tb").glob("events.out.tfevents.*"))) == 1


def test_tensorboard_missing_is_one_clear_error(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorboardX", None)  # import fails
    assert main(["train", "adding", "--tensorboard", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "--tensorboard" in err and "pip install 'bptt[tensorboard]'" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "r").exists()


# ---- loss.png ---------------------------------------------------------------------------------------------
def test_loss_png_names_task_and_cell(tmp_path, monkeypatch):
    seen = {}
    real = watch.plot_loss

    def spy(out, title, ylabel):
        seen.update(title=title, ylabel=ylabel)
        return real(out, title, ylabel)

    monkeypatch.setattr(watch, "plot_loss", spy)
    assert main(["train", "copy", "--cell", "gru", "--hidden", "5", "--steps", "4", "--batch", "4", "--length", "3",
                 "--heldout", "8", "--quiet", "--out", str(tmp_path / "r")]) == 0
    assert seen["title"] == "copy task, gru (H=5)" and "cross-entropy" in seen["ylabel"]
    assert (tmp_path / "r" / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_missing_matplotlib_is_said_once(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    assert main(["train", "adding", *SMALL, "--steps", "3", "--out", str(tmp_path / "r")]) == 0
    err = capsys.readouterr().err
    assert err.count("matplotlib is not installed") == 1 and "pip install 'bptt[plot]'" in err
    assert not (tmp_path / "r" / "loss.png").exists()


def test_samples_file_round_trip(tmp_path):
    p = tmp_path / "s.txt"
    blocks = [(3, "ab\n\ncd"), (6, "=== step x ===\n"), (9, " ")]
    p.write_text("".join(watch._sample_block(s, t) for s, t in blocks), encoding="utf-8")
    assert watch.read_samples(p) == blocks


# ---- extending a finished run ---------------------------------------------------------------------------
def test_resume_with_more_steps_extends_the_run_and_says_what_the_schedule_does(tmp_path, capsys):
    out = str(tmp_path / "r")
    base = ["train", "adding", *SMALL, "--out", out]
    assert main(base + ["--steps", "20", "--quiet"]) == 0
    assert main(base + ["--steps", "30", "--resume"]) == 0
    err = capsys.readouterr().err
    assert "extending the run from 20 to 30 steps: the cosine schedule now spans 30 steps" in err
    assert "--schedule constant --lr RATE" in err  # the other choice
    rows = rows_of(out)
    assert [int(r["step"]) for r in rows] == list(range(1, 31))
    assert float(rows[19]["lr"]) < 1e-4 < float(rows[20]["lr"])  # the cosine had reached ~0; now it rises again
    assert files.load(tmp_path / "r" / "model.npz").meta["steps"] == 30


def test_extension_with_a_constant_rate_is_the_offered_choice(tmp_path, capsys):
    out = str(tmp_path / "r")
    base = ["train", "adding", *SMALL, "--out", out, "--quiet"]
    assert main(base + ["--steps", "10"]) == 0
    assert main(base + ["--steps", "14", "--resume", "--schedule", "constant", "--lr", "0.002"]) == 0
    assert [float(r["lr"]) for r in rows_of(out)[10:]] == [0.002] * 4
    assert main(base + ["--steps", "14", "--resume", "--lr", "0.5"]) == 2  # not extending: lr may not change
    assert "--lr" in capsys.readouterr().err
    assert main(base[:-1] + ["--steps", "5", "--resume", "--schedule", "constant", "--lr", "0.002"]) == 0
    assert "already at step 14 (--steps 5): nothing left to train" in capsys.readouterr().err
    assert len(rows_of(out)) == 14


def test_config_toml_holds_every_resolved_value(tmp_path):
    import tomllib

    from bptt.config import TrainConfig

    assert main(["train", "sine", "--steps", "3", "--hidden", "4", "--heldout", "4", "--quiet",
                 "--out", str(tmp_path / "r")]) == 0
    got = tomllib.loads((tmp_path / "r" / "config.toml").read_text())
    assert got["length"] == 50 and got["g2"] == "identity" and got["eval-every"] == 1
    saved = files.load(tmp_path / "r" / "model.npz").meta["train"]
    for field in TrainConfig.__dataclass_fields__:  # each value is written, except the ones that are off (None)
        assert field.replace("_", "-") in got or saved[field] is None, field
