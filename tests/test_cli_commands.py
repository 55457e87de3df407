"""The ``bptt`` commands that use a trained model, on tiny runs: evaluate, sample, predict.

The figures the CLI prints are checked against the same quantities computed here from the saved model
with ``net.forward`` and the task's held-out data (not against the CLI's own code path).
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest

from bptt import files
from bptt.cli import main
from bptt.data import task_from_description

TEXT = ("It was the best of times, it was the worst of times, it was the age of wisdom, it was the age of "
        "foolishness, it was the epoch of belief, it was the epoch of incredulity. ") * 12
# float64: the tests below recompute the evaluation themselves and compare at 1e-12
TINY = ["--steps", "4", "--hidden", "5", "--batch", "4", "--quiet", "--checkpoint-every", "4", "--dtype", "float64"]
HELDOUT = 16


def _series_values():
    t = np.arange(120)
    return 50 + 8 * np.sin(2 * np.pi * t / 12) + 0.3 * t  # a seasonal series with a trend, (120,)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """{"adding", "text", "series"} -> run folder; plus the data files under "text.txt" / "series.csv"."""
    root = tmp_path_factory.mktemp("runs")
    (root / "text.txt").write_text(TEXT, encoding="utf-8")
    with open(root / "series.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["month", "value"])
        w.writerows([i, f"{v:.6f}"] for i, v in enumerate(_series_values()))
    argvs = {
        "adding": ["adding", "--length", "5", "--heldout", str(HELDOUT)],
        "text": ["text", "--data", str(root / "text.txt"), "--length", "12", "--heldout", str(HELDOUT)],
        "series": ["series", "--data", str(root / "series.csv"), "--column", "value", "--length", "8",
                   "--heldout", str(HELDOUT)],
    }
    out = {"text.txt": root / "text.txt", "series.csv": root / "series.csv"}
    for name, args in argvs.items():
        out[name] = root / name
        assert main(["train", *args, *TINY, "--out", str(out[name])]) == 0, name
    return out


def run_cli(capsys, *argv):
    code = main([str(a) for a in argv])
    got = capsys.readouterr()
    assert code == 0, got.err
    assert "Traceback" not in got.err
    return got.out


def evaluate_json(capsys, *argv):
    out = run_cli(capsys, "evaluate", *argv, "--json")
    assert len(out.strip().splitlines()) == 1  # one JSON object on one line
    return json.loads(out)


def heldout_outputs(run, n=HELDOUT, seed=0):
    """The saved net's outputs on its task's held-out set: (net, task, X, D, Y)."""
    net = files.load(run / "model.npz")
    task = task_from_description(net.meta["task"])
    X, D = task.heldout(n, seed)
    return net, task, X, D, net.forward(X).Y


# ---- evaluate ------------------------------------------------------------------------------------------
def test_evaluate_synthetic_reports_solved(runs, capsys):
    r = evaluate_json(capsys, runs["adding"], "--heldout", HELDOUT)
    assert {"loss", "sequences", "mse", "solved", "baseline_mse", "baseline_solved"} <= set(r)
    assert r["sequences"] == HELDOUT and 0.0 <= r["solved"] <= 1.0
    _, _, _, D, Y = heldout_outputs(runs["adding"])
    err = Y[-1, :, 0] - D[-1, :, 0]  # the adding task's loss sits at the last step only
    assert r["solved"] == np.mean(np.abs(err) < 0.04)
    assert math.isclose(r["mse"], np.mean(err ** 2), rel_tol=1e-12)
    assert math.isclose(r["baseline_mse"], np.mean((1.0 - D[-1, :, 0]) ** 2), rel_tol=1e-12)
    assert math.isclose(r["loss"], np.mean(err ** 2), rel_tol=1e-12)  # squared error per loss step (no 1/2)


def test_evaluate_seed_and_heldout_change_the_draw(runs, capsys):
    a = evaluate_json(capsys, runs["adding"], "--heldout", 8)
    b = evaluate_json(capsys, runs["adding"], "--heldout", 8, "--seed", 1)
    assert a["sequences"] == b["sequences"] == 8 and a["mse"] != b["mse"]
    assert a == evaluate_json(capsys, runs["adding"], "--heldout", 8)  # deterministic


def test_evaluate_text_reports_bits_per_char(runs, capsys):
    r = evaluate_json(capsys, runs["text"], "--heldout", HELDOUT)
    assert {"loss", "bpc", "ce", "accuracy", "baseline_bpc", "solved"} <= set(r) and "bits_per_char" not in r
    _, _, _, D, Y = heldout_outputs(runs["text"])
    p = np.take_along_axis(Y, D[..., None], axis=-1)[..., 0]  # (T,B) probability of the next character
    bits = float(-np.log2(p).mean())
    assert math.isclose(r["bpc"], bits, rel_tol=1e-10)
    assert math.isclose(r["bpc"], r["loss"] / math.log(2), rel_tol=1e-10)  # loss: nats per char
    vocab = files.load(runs["text"] / "model.npz").meta["task"]["vocab"]
    assert 0 < r["bpc"] < 2 * math.log2(len(vocab))  # 4 steps from uniform: near log2 V


def one_hot_codes(net, text):
    """(T, 1, V) one-hot inputs and (T,) codes of ``text`` in the model's vocabulary."""
    vocab = net.meta["task"]["vocab"]
    codes = np.array([vocab.index(c) for c in text])
    return np.eye(len(vocab))[codes][:, None, :], codes


def test_evaluate_text_on_another_file(runs, capsys, tmp_path):
    """--data FILE: the whole file is held out. A file of T+1 characters (T = the model's length, 12) leaves one
    window, so bits/char is the mean of -log2 p(next char) over its 12 steps, recomputed with net.forward."""
    other = tmp_path / "other.txt"
    other.write_text("it was the ag", encoding="utf-8")
    r = evaluate_json(capsys, runs["text"], "--data", other, "--heldout", 5)
    net = files.load(runs["text"] / "model.npz")
    X, codes = one_hot_codes(net, "it was the ag")
    Y = net.forward(X[:-1]).Y[:, 0]                                   # (12, V): p of the next character
    bits = float(-np.log2(Y[np.arange(12), codes[1:]]).mean())
    assert math.isclose(r["bpc"], bits, rel_tol=1e-10)
    assert r["sequences"] == 5
    assert not math.isclose(r["bpc"], evaluate_json(capsys, runs["text"])["bpc"], rel_tol=1e-3)


def test_evaluate_series_reports_mse_mae_and_naive_baseline(runs, capsys):
    r = evaluate_json(capsys, runs["series"], "--heldout", 1000)
    assert {"loss", "mse", "mae", "baseline_mse", "baseline_mae", "solved"} <= set(r)
    # the naive last-value forecast, from the raw column: every held-out window of 8 targets, steps 1..7
    v = _series_values().round(6)
    n_train = len(v) - round(0.2 * len(v))
    targets = v[n_train:]                                    # (24,) held-out values
    T = 8
    windows = np.lib.stride_tricks.sliding_window_view(v[n_train:], T)  # (n_windows, T) targets
    assert r["sequences"] == len(windows) == len(targets) - T + 1
    steps = windows[:, 1:] - windows[:, :-1]
    assert math.isclose(r["baseline_mse"], np.mean(steps ** 2), rel_tol=1e-9)
    assert math.isclose(r["baseline_mae"], np.mean(np.abs(steps)), rel_tol=1e-9)
    net, task, _, D, Y = heldout_outputs(runs["series"], n=1000)
    std, mean = net.meta["task"]["std"], net.meta["task"]["mean"]
    err = (Y - D)[1:, :, 0] * std  # original units, after the 1-step burn-in
    assert math.isclose(r["mse"], np.mean(err ** 2), rel_tol=1e-9)
    assert math.isclose(r["mae"], np.mean(np.abs(err)), rel_tol=1e-9)
    # D holds the changes into those targets (the model predicts changes: transform "diff")
    changes = np.lib.stride_tricks.sliding_window_view(np.diff(v)[n_train - 1:], T)
    assert net.meta["task"]["transform"] == "diff"
    assert np.allclose(D[:, :, 0].T * std + mean, changes, rtol=0, atol=1e-9)


def test_evaluate_plain_output(runs, capsys):
    out = run_cli(capsys, "evaluate", runs["adding"], "--heldout", 8)
    keys = {line.split(":")[0].strip() for line in out.splitlines()}
    assert {"loss", "solved", "mse", "sequences"} <= keys


# ---- sample ----------------------------------------------------------------------------------------------
def test_sample_is_deterministic_starts_with_the_prime_and_uses_the_vocabulary(runs, capsys):
    vocab = set(files.load(runs["text"] / "model.npz").meta["task"]["vocab"])
    a = run_cli(capsys, "sample", runs["text"], "--length", 120, "--prime", "it was", "--seed", 3)
    b = run_cli(capsys, "sample", runs["text"], "--length", 120, "--prime", "it was", "--seed", 3)
    c = run_cli(capsys, "sample", runs["text"], "--length", 120, "--prime", "it was", "--seed", 4)
    assert a == b and a != c
    assert a.endswith("\n")
    text = a[:-1]
    assert text.startswith("it was") and len(text) == len("it was") + 120
    assert set(text) <= vocab


def test_sample_without_prime_and_temperature(runs, capsys):
    vocab = set(files.load(runs["text"] / "model.npz").meta["task"]["vocab"])
    cold = run_cli(capsys, "sample", runs["text"], "--length", 60, "--temperature", "0.05")[:-1]
    hot = run_cli(capsys, "sample", runs["text"], "--length", 60, "--temperature", "5")[:-1]
    assert len(cold) == len(hot) == 60 and set(cold) <= vocab and set(hot) <= vocab
    # near-zero temperature is near-greedy: fewer distinct characters than a hot sample
    assert len(set(cold)) < len(set(hot))


def test_greedy_sample_is_the_models_argmax_rollout(runs, capsys):
    """Tied to the model: at temperature 0 (greedy), sample must be the argmax rollout, recomputed here by
    feeding the text so far through net.forward and taking the most likely next character each time."""
    net = files.load(runs["text"] / "model.npz")
    vocab = net.meta["task"]["vocab"]
    text = "it was"
    for _ in range(40):
        X, _ = one_hot_codes(net, text)
        text += vocab[int(np.argmax(net.forward(X).Y[-1, 0]))]
    for seed in (0, 1):  # greedy: the seed plays no part
        got = run_cli(capsys, "sample", runs["text"], "--length", 40, "--prime", "it was", "--temperature", 0,
                      "--seed", seed)
        assert got == text + "\n"


# ---- predict ---------------------------------------------------------------------------------------------
def test_predict_json(runs, capsys):
    out = run_cli(capsys, "predict", runs["series"], "--data", runs["series.csv"], "--horizon", 7, "--json")
    r = json.loads(out)
    assert r["column"] == "value" and len(r["forecast"]) == 7
    assert all(math.isfinite(x) for x in r["forecast"])
    v = _series_values().round(6)
    assert r["last_value"] == pytest.approx(v[-1], abs=1e-9)
    # every forecast recomputed: the net reads the last T normalised changes (T = its training length), then
    # each predicted change is added to the last value and fed back as the next input
    net = files.load(runs["series"] / "model.npz")
    mean, std, T = net.meta["task"]["mean"], net.meta["task"]["std"], net.meta["task"]["length"]
    fw = net.forward(((np.diff(v)[-T:] - mean) / std)[:, None, None])
    y, state, last = fw.Y[-1], fw.state, v[-1]
    for got in r["forecast"]:
        last = last + float(y[0, 0]) * std + mean
        assert math.isclose(got, last, rel_tol=1e-12)
        y, state = net.step(y, state)
    again = json.loads(run_cli(capsys, "predict", runs["series"], "--data", runs["series.csv"], "--horizon", 3,
                               "--json"))
    assert again["forecast"] == r["forecast"][:3]  # deterministic, and a shorter horizon is a prefix


def test_predict_plain_output(runs, capsys):
    out = run_cli(capsys, "predict", runs["series"], "--data", runs["series.csv"], "--horizon", 2)
    lines = out.splitlines()
    assert "value" in lines[0] and lines[1].strip().startswith("t+1:") and lines[2].strip().startswith("t+2:")


# ---- what a finished `bptt train` prints -------------------------------------------------------------
def test_train_summary_files_line_lists_what_was_written(runs, capsys, tmp_path):
    """The `files:` line names the files the run wrote, the checkpoint (which --resume reads) included,
    and only files that exist."""
    out = run_cli(capsys, "train", "adding", "--length", "5", "--steps", "2", "--hidden", "3", "--batch", "2",
                  "--heldout", "4", "--log-every", "1", "--out", tmp_path / "a")
    line = [ln for ln in out.splitlines() if ln.startswith("files: ")]
    assert len(line) == 1, out
    listed = line[0][len("files: "):].split(", ")
    assert str(tmp_path / "a" / "checkpoint.npz") in listed and str(tmp_path / "a" / "model.npz") in listed
    assert all(Path(p).is_file() for p in listed), listed


def test_command_list_names_every_experiment(capsys):
    """`bptt --help` names both experiments that `bptt experiment` runs (memory and online)."""
    main([])
    top = capsys.readouterr().out
    line = top[top.index("experiment"):top.index("bench")]
    assert "memory" in line and "online" in line, top
