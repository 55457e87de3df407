"""Training's edges: a signal during the final evaluation or save, and a diverged run's message naming a
checkpoint only when there is one."""

from __future__ import annotations

import os
import signal

import pytest

import bptt.evaluate
from bptt import files
from bptt.cli import main

ARGS = ["train", "adding", "--length", "4", "--batch", "4", "--hidden", "4", "--heldout", "8", "--quiet"]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_during_final_evaluation(tmp_path, capsys, monkeypatch, sig):
    real = bptt.evaluate.evaluate

    def evaluate_then_signal(net, task, n, **k):
        if n == 8:  # the final held-out evaluation (--heldout 8), not the one-sequence probe of the columns
            os.kill(os.getpid(), sig)  # arrives while the held-out evaluation runs
        return real(net, task, n=n, **k)

    monkeypatch.setattr(bptt.evaluate, "evaluate", evaluate_then_signal)
    out = tmp_path / "r"
    code = main([*ARGS, "--steps", "3", "--eval-every", "0", "--out", str(out)])  # held out: at the end only
    err = capsys.readouterr().err
    assert code == 130 and len(err.splitlines()) == 1, err
    assert "SIG" in err and "--resume" in err and "step 3" in err
    assert not (out / "model.npz").exists() and files.load_checkpoint(out / "checkpoint.npz")[2]["step"] == 3
    monkeypatch.setattr(bptt.evaluate, "evaluate", real)
    assert main([*ARGS, "--steps", "3", "--eval-every", "0", "--out", str(out), "--resume"]) == 0  # finishes it
    assert (out / "model.npz").exists()


def test_signal_during_final_save(tmp_path, capsys, monkeypatch):
    real = files.save

    def save_then_signal(*a, **k):
        os.kill(os.getpid(), signal.SIGTERM)
        return real(*a, **k)

    monkeypatch.setattr(files, "save", save_then_signal)
    out = tmp_path / "r"
    code = main([*ARGS, "--steps", "3", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 130 and len(err.splitlines()) == 1 and "while saving" in err and "complete" in err, err
    monkeypatch.setattr(files, "save", real)
    assert files.load(out / "model.npz").meta["steps"] == 3


def test_diverged_before_any_checkpoint_names_none(tmp_path, capsys):
    out = tmp_path / "r"
    code = main([*ARGS, "--optimizer", "sgd", "--lr", "1e9", "--clip", "0", "--steps", "50",
                 "--checkpoint-every", "40", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 1 and "no checkpoint was written yet" in err and "--force" in err, err
    assert not (out / "checkpoint.npz").exists()


def test_diverged_after_a_checkpoint_names_it(tmp_path, capsys):
    out = tmp_path / "r"
    code = main([*ARGS, "--optimizer", "sgd", "--lr", "1e3", "--clip", "0", "--steps", "60",
                 "--checkpoint-every", "2", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 1 and "last good checkpoint (step" in err, err
    step = int(err.split("last good checkpoint (step ")[1].split(")")[0])
    assert files.load_checkpoint(out / "checkpoint.npz")[2]["step"] == step
