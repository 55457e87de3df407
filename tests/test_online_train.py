"""bptt train --online: online training on streams, exact resume after kill -9, bad options refused."""

from __future__ import annotations

import csv
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bptt import files
from bptt.cli import main

HERE = Path(__file__).parent
BASE = ["train", "adding", "--length", "5", "--steps", "40", "--batch", "3", "--hidden", "4", "--heldout", "8",
        "--quiet"]


def params(path):
    return files.load(path).params


def rows(out):
    return [r["step"] for r in csv.DictReader(open(out / "metrics.csv"))]


KILLS = [("rtrl", []), ("uoro", ["--online-every", "2"]), ("artbp", []),
         pytest.param("kf-rtrl", ["--optimizer", "momentum"], marks=pytest.mark.slow),
         pytest.param("snap1", ["--cell", "gru"], marks=pytest.mark.slow)]


@pytest.mark.parametrize("alg,extra", KILLS)
def test_kill9_then_resume_gives_the_identical_model(tmp_path, alg, extra):
    args = BASE + ["--online", alg, *extra]
    assert main(args + ["--out", str(tmp_path / "ref"), "--checkpoint-every", "7"]) == 0
    ref = params(tmp_path / "ref" / "model.npz")
    out = tmp_path / "run"
    for mode, n in (("step", 3), ("fsync", 4)):  # inside an optimiser update; inside a checkpoint write
        r = subprocess.run([sys.executable, str(HERE / "_killer.py"), mode, str(n), *args, "--out", str(out),
                            "--checkpoint-every", "7", *(["--resume"] if mode == "fsync" else [])],
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == -signal.SIGKILL, (mode, r.returncode, r.stderr)
    assert main(args + ["--out", str(out), "--checkpoint-every", "7", "--resume"]) == 0
    got = params(out / "model.npz")
    assert all(np.array_equal(ref[k], got[k]) for k in ref)
    assert rows(out) == rows(tmp_path / "ref")
    _, arrays, _ = files.load_checkpoint(out / "checkpoint.npz")
    assert any(k.startswith("online/") for k in arrays)  # the algorithm's state is in the checkpoint


def test_online_training_learns_adding_at_a_short_length(tmp_path):
    """RTRL online on the adding task (T = 6): the held-out error falls well below the always-1 baseline."""
    out = tmp_path / "a"
    assert main(["train", "adding", "--length", "6", "--steps", "3000", "--batch", "16", "--hidden", "8",
                 "--heldout", "256", "--online", "rtrl", "--quiet", "--out", str(out)]) == 0
    held = files.load(out / "model.npz").meta["heldout"]
    assert held["loss"] < 0.5 * held["baseline_mse"], held


@pytest.mark.parametrize("extra,words", [
    (["--online", "kf-rtrl", "--cell", "lstm"], ["--online", "kf-rtrl", "lstm"]),
    (["--online", "nope"], ["--online", "nope"]),
    (["--online-every", "2"], ["--online-every", "--online"]),
    (["--online", "rtrl", "--online-every", "0"], ["--online-every", ">= 1"]),
    (["--online", "uoro", "--truncate", "3"], ["--online", "--truncate"]),
    (["--online", "rtrl", "--layers", "2"], ["--layers 2"]),
    (["--online", "rtrl", "--omega", "0.1"], ["--omega"]),
])
def test_bad_online_options_one_line_nothing_written(tmp_path, capsys, extra, words):
    out = tmp_path / "x"
    assert main(BASE + extra + ["--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and all(w in err for w in words), err
    assert not out.exists()


# ---- bptt diagnose --estimators ---------------------------------------------------------------------
def test_diagnose_estimators_fresh_net(tmp_path, capsys):
    prefix = str(tmp_path / "est")
    assert main(["diagnose", "--estimators", "rtrl,uoro,tbptt:3,snap1,kf-rtrl,artbp", "--hidden", "4",
                 "--lengths", "5,8", "--batch", "2", "--draws", "3", "--out", prefix]) == 0
    out = capsys.readouterr().out
    table = list(csv.DictReader(open(prefix + ".csv")))
    assert [(r["estimator"], r["length"]) for r in table] == [(e, t) for t in ("5", "8") for e in
                                                             ("rtrl", "uoro", "tbptt:3", "snap1", "kf-rtrl", "artbp")]
    by = {(r["estimator"], r["length"]): r for r in table}
    assert float(by["rtrl", "8"]["rel_error"]) < 1e-10 and float(by["rtrl", "8"]["cosine"]) > 1 - 1e-12
    assert float(by["tbptt:3", "8"]["rel_error"]) > 1e-6  # truncation at 3 of 8 steps is not exact
    assert by["uoro", "5"]["draws"] == "3" and by["snap1", "5"]["draws"] == "1"
    assert float(by["uoro", "5"]["rel_variance"]) > 0 and float(by["rtrl", "5"]["rel_variance"]) == 0
    for e in ("rtrl", "uoro", "tbptt:3", "snap1", "kf-rtrl", "artbp"):
        assert sum(line.startswith(f"{e}: cosine") for line in out.splitlines()) == 1
    assert (tmp_path / "est.png").exists()


def test_diagnose_estimators_saved_model(tmp_path, capsys):
    run = tmp_path / "run"
    # float64: the RTRL-vs-BPTT check below is at 1e-10 (float32 training would bound it at ~1e-7)
    assert main(BASE + ["--steps", "5", "--dtype", "float64", "--out", str(run)]) == 0
    assert main(["diagnose", str(run), "--estimators", "rtrl,artbp:0.3", "--batch", "2", "--draws", "2",
                 "--out", str(tmp_path / "m")]) == 0
    table = list(csv.DictReader(open(tmp_path / "m.csv")))
    assert [r["estimator"] for r in table] == ["rtrl", "artbp:0.3"] and table[0]["length"] == "5"
    assert float(table[0]["rel_error"]) < 1e-10


@pytest.mark.parametrize("args,words", [
    (["--estimators", "bogus"], ["--estimators", "bogus"]),
    (["--estimators", "tbptt:0"], ["tbptt:K"]),
    (["--estimators", "rtrl", "--cell", "elman,gru"], ["one net"]),
    (["--estimators", "kf-rtrl", "--cell", "gru"], ["kf-rtrl", "gru"]),
    (["--estimators", "rtrl", "--lengths", "5,x"], ["--lengths"]),
    (["--estimators", "uoro", "--draws", "1"], ["--draws"]),
    (["--lengths", "5"], ["--lengths", "--estimators"]),
])
def test_diagnose_estimators_bad_input(tmp_path, capsys, args, words):
    assert main(["diagnose", *args, "--hidden", "3", "--batch", "2", "--out", str(tmp_path / "e")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and all(w in err for w in words), err
    assert not list(tmp_path.iterdir())


# ---- bptt experiment online ---------------------------------------------------------------------------
def test_experiment_online_quick_runs_and_resumes(tmp_path, capsys):
    out = tmp_path / "exp"
    args = ["experiment", "online", "--quick", "--algorithms", "rtrl,uoro", "--steps", "40", "--hidden", "3",
            "--out", str(out), "--quiet"]
    assert main(args) == 0
    text = capsys.readouterr().out
    timing = list(csv.DictReader(open(out / "online-timing.csv")))
    assert {r["algorithm"] for r in timing} == {"rtrl", "uoro", "bptt"}
    assert {r["hidden"] for r in timing} == {"8", "16", "32"}
    assert all(float(r["seconds_per_step"]) > 0 for r in timing)
    trained = list(csv.DictReader(open(out / "online-training.csv")))
    assert [r["algorithm"] for r in trained] == ["rtrl", "uoro", "tbptt5"] and all(r["status"] == "ok" for r in trained)
    assert "exponent" in text and "tbptt5" in text
    model = out / "runs" / "adding-T10-rtrl" / "model.npz"
    before = model.stat().st_mtime_ns
    assert main(args) == 0  # finished runs are not trained again
    assert model.stat().st_mtime_ns == before


@pytest.mark.parametrize("args,words", [
    (["--algorithms", "bogus"], ["--algorithms", "bogus"]),
    (["--cells", "gru"], ["--cells", "memory"]),
    (["--tasks", "adding:x"], ["--tasks", "TASK:LENGTH"]),
    (["--tasks", "series:5"], ["--tasks", "series"]),
    (["--steps", "0"], ["--steps"]),
])
def test_experiment_online_bad_options(tmp_path, capsys, args, words):
    assert main(["experiment", "online", "--quick", *args, "--out", str(tmp_path / "e")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and all(w in err for w in words), err
    assert not (tmp_path / "e").exists()


def test_experiment_online_runs_every_algorithm_on_the_elman_cell():
    """The copy task defaults to a GRU in bptt train; the online experiment keeps the Elman net (KF-RTRL's)."""
    from bptt.online import experiment as O

    plan = O.with_options(O.QUICK, tasks=(("copy", 5), ("adding", 10)))
    assert all(O.run_config(plan, t, n, a).cell == "elman" for t, n in plan.tasks for a in plan.algorithms)


def test_experiment_memory_refuses_algorithms(tmp_path, capsys):
    assert main(["experiment", "memory", "--algorithms", "rtrl", "--out", str(tmp_path / "m")]) == 2
    assert "--algorithms" in capsys.readouterr().err
