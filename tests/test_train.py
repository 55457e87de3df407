"""Training end to end: outputs, exact resume after kill -9 at many moments, SIGINT, divergence."""

from __future__ import annotations

import csv
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from bptt import files
from bptt.cli import main

HERE = Path(__file__).parent
ARGS = ["train", "adding", "--length", "6", "--steps", "30", "--batch", "8", "--hidden", "6",
        "--heldout", "16", "--quiet"]


def run_killer(mode, n, out, *extra, check_killed=True):
    r = subprocess.run([sys.executable, str(HERE / "_killer.py"), mode, str(n), *ARGS, "--out", str(out), *extra],
                       capture_output=True, text=True, timeout=120)
    if check_killed:
        assert r.returncode == -signal.SIGKILL, (mode, n, r.returncode, r.stderr)
    return r


def arrays(path):
    return files.load(path).params


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("ref")
    assert main(ARGS + ["--out", str(out), "--checkpoint-every", "4"]) == 0
    return arrays(out / "model.npz"), out


def test_outputs(reference):
    _, out = reference
    for name in ("model.npz", "checkpoint.npz", "metrics.csv", "config.toml", "loss.png"):
        assert (out / name).exists(), name
    png = (out / "loss.png").read_bytes()  # matplotlib is in the test extra: the loss plot is written
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
    rows = list(csv.DictReader(open(out / "metrics.csv")))
    assert [int(r["step"]) for r in rows] == list(range(1, 31))
    assert list(rows[0]) == ["step", "loss", "grad_norm", "lr", "seconds", "heldout_loss", "heldout_mse",
                             "heldout_solved"]
    net = files.load(out / "model.npz")
    assert net.meta["task"]["name"] == "adding" and net.meta["train"]["steps"] == 30
    assert np.load(out / "model.npz", allow_pickle=False)["Ws"].shape == (6, 6)


def test_config_file_round_trip(reference, tmp_path):
    """The saved config.toml reproduces the run; flags override it."""
    ref, out = reference
    assert main(["train", "--config", str(out / "config.toml"), "--out", str(tmp_path / "a"), "--quiet"]) == 0
    got = arrays(tmp_path / "a" / "model.npz")
    assert all(np.array_equal(ref[k], got[k]) for k in ref)
    assert main(["train", "--config", str(out / "config.toml"), "--steps", "3", "--out", str(tmp_path / "b"),
                 "--quiet"]) == 0
    assert files.load(tmp_path / "b" / "model.npz").meta["steps"] == 3


# 22 moments: inside fsyncs and renames of checkpoint / metrics / model writes, and between steps,
# with checkpoints every 4 steps or every step
MOMENTS = ([("fsync", n, "4") for n in (1, 2, 3, 5, 8, 11, 13)]
           + [("replace", n, "4") for n in (1, 2, 4, 6, 9)]
           + [("step", n, "4") for n in (1, 3, 5, 9, 14, 22, 29)]
           + [("fsync", n, "1") for n in (7, 40)] + [("step", 17, "1")])


@pytest.mark.parametrize("mode,n,every", MOMENTS, ids=[f"{m}{n}-every{e}" for m, n, e in MOMENTS])
def test_kill9_then_resume_gives_the_identical_model(reference, tmp_path, mode, n, every):
    ref, _ = reference
    out = tmp_path / "run"
    run_killer(mode, n, out, "--checkpoint-every", every)
    assert not (out / "model.npz").exists() or mode != "step"
    r = subprocess.run([sys.executable, "-m", "bptt", *ARGS, "--out", str(out), "--checkpoint-every", every,
                        "--resume"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    got = arrays(out / "model.npz")
    for k in ref:
        assert np.array_equal(ref[k], got[k]), k
    rows = [int(r["step"]) for r in csv.DictReader(open(out / "metrics.csv"))]
    assert rows == list(range(1, 31))  # no step lost, none twice
    assert not list(out.glob(".*.tmp-*"))


LONG = ["train", "adding", "--length", "20", "--steps", "600", "--batch", "8", "--hidden", "6", "--heldout", "16",
        "--quiet", "--checkpoint-every", "25"]


def metric_rows(out) -> int:
    """Complete rows in out/metrics.csv (header excluded; a line still being written is not counted)."""
    try:
        text = (out / "metrics.csv").read_text()
    except FileNotFoundError:
        return 0
    return max(0, text.count("\n") - 1)


def test_external_kill9_on_progress(tmp_path):
    """Real SIGKILLs from outside while training runs (each sent once metrics.csv has passed a row count),
    every one of them interrupting training, then --resume ends with the uninterrupted run's model."""
    ref_out, out = tmp_path / "ref", tmp_path / "ext"
    assert main(LONG + ["--out", str(ref_out)]) == 0
    total = 600
    for when in (40, 220, 400):
        p = subprocess.Popen([sys.executable, "-m", "bptt", *LONG, "--out", str(out), "--resume"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        deadline = time.time() + 120
        while metric_rows(out) < when and p.poll() is None and time.time() < deadline:
            time.sleep(0.01)
        p.kill()
        _, err = p.communicate(timeout=60)
        rows = metric_rows(out)
        # the kill interrupted training: the process died of SIGKILL, short of the last step, with no model
        assert p.returncode == -signal.SIGKILL, (when, p.returncode, err)
        assert when <= rows < total, (when, rows)
        assert not (out / "model.npz").exists()
    assert main(LONG + ["--out", str(out), "--resume"]) == 0
    ref, got = arrays(ref_out / "model.npz"), arrays(out / "model.npz")
    assert all(np.array_equal(ref[k], got[k]) for k in ref)
    assert [int(r["step"]) for r in csv.DictReader(open(out / "metrics.csv"))] == list(range(1, total + 1))


def test_sigint_checkpoints_and_exits_130(tmp_path):
    out = tmp_path / "int"
    p = subprocess.Popen([sys.executable, "-m", "bptt", "train", "adding", "--length", "6", "--steps", "100000",
                          "--batch", "8", "--hidden", "6", "--quiet", "--out", str(out), "--checkpoint-every", "1000"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while time.time() < deadline:
        if (out / "metrics.csv").exists() and len(open(out / "metrics.csv").read().splitlines()) > 20:
            break
        time.sleep(0.1)
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 130, err
    assert "SIGINT" in err and "--resume" in err and "Traceback" not in err
    net, _, meta = files.load_checkpoint(out / "checkpoint.npz")
    last = int(open(out / "metrics.csv").read().splitlines()[-1].split(",")[0])
    assert meta["step"] == last > 20
    # the hint is the exact command: run it (with fewer steps left, so that it ends soon)
    again = shlex.split(err.split("resume with: ")[1].strip())
    assert again[:2] == ["bptt", "train"] and again[-1] == "--resume"
    r = subprocess.run([sys.executable, "-m", "bptt", *again[1:], "--steps", str(last + 5), "--quiet"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert files.load(out / "model.npz").meta["steps"] == last + 5


def test_no_matplotlib_no_loss_png(tmp_path, monkeypatch):
    """loss.png is written only when matplotlib can be imported; training succeeds without it."""
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    assert main(ARGS[:-1] + ["--steps", "2", "--out", str(tmp_path / "x"), "--quiet"]) == 0
    assert (tmp_path / "x" / "model.npz").exists() and not (tmp_path / "x" / "loss.png").exists()


def test_resume_without_checkpoint_starts_over_and_says_so(tmp_path, capsys):
    assert main(ARGS[:-1] + ["--steps", "2", "--out", str(tmp_path / "x"), "--resume"]) == 0
    assert "no checkpoint" in capsys.readouterr().err


def test_resume_with_other_options_is_refused(reference, tmp_path, capsys):
    out = tmp_path / "r"
    assert main(ARGS + ["--out", str(out), "--steps", "2"]) == 0
    assert main(ARGS + ["--out", str(out), "--hidden", "7", "--resume"]) == 2
    assert "--hidden" in capsys.readouterr().err


def test_divergence_stops_with_advice_and_keeps_the_good_checkpoint(tmp_path, capsys):
    out = tmp_path / "nan"
    code = main(["train", "adding", "--length", "6", "--steps", "50", "--batch", "4", "--hidden", "4", "--quiet",
                 "--optimizer", "sgd", "--lr", "1e150", "--clip", "0", "--checkpoint-every", "1", "--dtype", "float64",
                 "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 1 and "--lr" in err and "--clip" in err
    assert not (out / "model.npz").exists()
    # float64 survives the first steps: the checkpoint of the step before the divergence (checkpoints every step)
    # is kept, finite, and named in the advice
    net, _, meta = files.load_checkpoint(out / "checkpoint.npz")
    assert meta["step"] >= 1 and all(np.isfinite(a).all() for a in net.params.values())
    assert f"at step {meta['step'] + 1}" in err and f"(step {meta['step']})" in err
    assert str(out / "checkpoint.npz") in err


def test_divergence_before_the_first_checkpoint_claims_none(tmp_path, capsys):
    """float32 overflows at step 1: there is no checkpoint, and the advice does not pretend there is one."""
    out = tmp_path / "nan"
    code = main(["train", "adding", "--length", "6", "--steps", "50", "--batch", "4", "--hidden", "4", "--quiet",
                 "--optimizer", "sgd", "--lr", "1e150", "--clip", "0", "--checkpoint-every", "1", "--dtype", "float32",
                 "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 1 and "at step 1" in err and "no checkpoint was written yet" in err
    assert not (out / "checkpoint.npz").exists() and "kept in" not in err


@pytest.mark.parametrize("tbptt", [["3", "3"], ["2", "5"]])
def test_stream_training_resumes_exactly(tmp_path, tbptt):
    base = ["train", "text", "--data", str(tmp_path / "t.txt"), "--length", "8", "--steps", "12", "--batch", "3",
            "--hidden", "5", "--heldout", "4", "--quiet", "--tbptt", *tbptt]
    (tmp_path / "t.txt").write_text("the quick brown fox jumps over the lazy dog. " * 40)
    assert main(base + ["--out", str(tmp_path / "a")]) == 0
    run = subprocess.run([sys.executable, str(HERE / "_killer.py"), "step", "7", *base, "--out", str(tmp_path / "b"),
                          "--checkpoint-every", "3"], capture_output=True, text=True, timeout=120)
    assert run.returncode == -signal.SIGKILL
    assert main(base + ["--out", str(tmp_path / "b"), "--checkpoint-every", "3", "--resume"]) == 0
    a, b = arrays(tmp_path / "a" / "model.npz"), arrays(tmp_path / "b" / "model.npz")
    assert all(np.array_equal(a[k], b[k]) for k in a)
