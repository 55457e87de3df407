"""``bptt experiment memory`` on a tiny grid (1 task, 2 cells, 2 lengths, 3 steps): the CSV's columns and
rows against the saved models, resuming without training finished runs again, the stdout table, divergence
and the errors."""

from __future__ import annotations

import csv

import numpy as np
import pytest

import bptt
import bptt.train
from bptt import cli, experiment as ex
from bptt.errors import InputError, TrainingDiverged

TINY = ["--tasks", "order", "--cells", "elman-uniform,gru", "--lengths", "6,8", "--seeds", "1", "--steps", "3",
        "--hidden", "3"]


@pytest.fixture
def experiment(monkeypatch):
    monkeypatch.setattr(cli, "COMMANDS", ["experiment"])  # only this command: independent of the others
    return lambda *argv: cli.main(["experiment", "memory", *map(str, argv)])


@pytest.fixture
def count_training(monkeypatch):
    """Counts the runs actually trained (the real training still happens)."""
    calls = []
    real = bptt.train.train

    def counting(cfg, out, **kw):
        calls.append(out.name)
        return real(cfg, out, **kw)

    monkeypatch.setattr(bptt.train, "train", counting)
    return calls


def read(path):
    with open(path, newline="") as fh:
        r = csv.reader(fh)
        return next(r), list(r)


def test_tiny_grid_csv_table_and_resume(experiment, tmp_path, capsys, count_training):
    out = tmp_path / "exp"
    assert experiment(*TINY, "--out", out) == 0
    names = ["order-T6-elman-uniform-seed0", "order-T6-gru-seed0", "order-T8-elman-uniform-seed0",
             "order-T8-gru-seed0"]
    assert count_training == names
    cols, rows = read(out / "memory.csv")
    assert cols == ex.COLUMNS
    got = ex.read_csv(out / "memory.csv")
    assert [(r["task"], r["cell"], r["length"], r["seed"], r["hidden"], r["steps"], r["status"]) for r in got] == [
        ("order", c, t, 0, 3, 3, "ok") for t in (6, 8) for c in ("elman-uniform", "gru")]
    for r in got:  # every number is the saved model's, measured as documented
        folder = out / r["run"]
        assert folder.name in names and (folder / "metrics.csv").exists() and (folder / "checkpoint.npz").exists()
        net = bptt.load(folder / "model.npz")
        assert net.meta["train"]["steps"] == 3 and net.meta["train"]["task"] == "order"
        assert (r["solved"], r["loss"]) == (net.meta["heldout"]["solved"], net.meta["heldout"]["loss"])
        cfg = ex.run_config(ex.Grid(steps=3, hidden=3), "order", r["cell"], r["length"], 0)
        task = bptt.train.build_task(cfg)
        assert bptt.train.resolve_for_task(cfg, task).to_dict() == net.meta["train"]
        prof = ex.measure_memory(net, task, 0)
        assert r["effective_memory"] == prof.effective_memory and r["memory_censored"] == int(prof.censored)
        assert r["decay_rate"] == prof.decay_rate and r["memory_cell"] is None  # no cell state: GRU, Elman
        init = ex.measure_memory(bptt.train.build_net(cfg, task), task, 0)
        assert r["memory_at_init"] == init.effective_memory
        assert 0 <= r["effective_memory"] <= r["length"] - 1 and r["train_seconds"] > 0
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert lines[0] == "order: held-out success rate / effective memory of the trained net (steps), mean over 1 seed"
    assert lines[1].split() == ["cell", "T=6", "T=8"]
    for line, cell in zip(lines[3:5], ("elman-uniform", "gru")):
        mine = [r for r in got if r["cell"] == cell]
        expect = [f"{r['solved']:.2f}/{r['effective_memory']}{'+' if r['memory_censored'] else ''}" for r in mine]
        assert line.split() == [cell, *expect]
    assert lines[-2:] == [f"wrote {out / 'memory.csv'}", f"wrote {out / 'memory.png'}"]
    with open(out / "memory.png", "rb") as fh:
        assert fh.read(8) == b"\x89PNG\r\n\x1a\n"
    assert "[4/4] order T=8 gru seed 0: solved" in captured.err

    # run again: nothing is trained, the same rows come out
    stamps = {p: p.stat().st_mtime_ns for p in out.glob("runs/*/model.npz")}
    assert experiment(*TINY, "--out", out) == 0
    assert count_training == names
    assert read(out / "memory.csv") == (cols, rows)
    assert {p: p.stat().st_mtime_ns for p in out.glob("runs/*/model.npz")} == stamps
    err = capsys.readouterr().err
    assert "4 of 4 runs are finished already" in err and err.count("done before") == 4

    # a run cut short (no model.npz yet) is the only one trained again; a new seed adds its runs
    (out / "runs" / names[1] / "model.npz").unlink()
    assert experiment(*TINY[:-5], "2", *TINY[-4:], "--out", out) == 0  # --seeds 2
    assert count_training == names + ["order-T6-elman-uniform-seed1", names[1], "order-T6-gru-seed1",
                                      "order-T8-elman-uniform-seed1", "order-T8-gru-seed1"]
    again = ex.read_csv(out / "memory.csv")
    assert [(r["cell"], r["length"], r["seed"]) for r in again] == [
        (c, t, s) for t in (6, 8) for c in ("elman-uniform", "gru") for s in (0, 1)]
    same = {k: v for k, v in got[1].items() if k != "train_seconds"}  # training is deterministic: same numbers
    assert {k: v for k, v in again[2].items() if k != "train_seconds"} == same
    assert again[0] == got[0]
    assert "mean over 2 seeds" in capsys.readouterr().out


def test_other_settings_in_the_same_folder_are_refused(experiment, tmp_path, capsys, count_training):
    out = tmp_path / "exp"
    args = ["--tasks", "order", "--cells", "gru", "--lengths", "6", "--seeds", "1", "--hidden", "3", "--out", out]
    assert experiment(*args, "--steps", 2) == 0
    before = read(out / "memory.csv")
    assert experiment(*args, "--steps", 3) == 2
    err = capsys.readouterr().err
    assert "other settings (steps differ, e.g. steps 2 there, 3 now)" in err and err.count("error") == 1
    assert count_training == ["order-T6-gru-seed0"] and read(out / "memory.csv") == before


def test_lengths_a_task_refuses_are_skipped(experiment, tmp_path, capsys):
    out = tmp_path / "exp"
    assert experiment("--tasks", "order", "--cells", "gru", "--lengths", "5,6", "--seeds", "1", "--steps", "1",
                      "--hidden", "2", "--out", out) == 0
    assert "order T=5: skipped (length must be >= 6" in capsys.readouterr().err
    assert [r["length"] for r in ex.read_csv(out / "memory.csv")] == [6]
    assert experiment("--tasks", "order", "--lengths", "5", "--out", out) == 2
    assert "--lengths: no run left to do" in capsys.readouterr().err


def test_diverged_run_counts_as_unsolved_and_is_not_retried(tmp_path):
    grid = ex.Grid(tasks=("adding",), cells=("irnn",), lengths=(4,), seeds=1, steps=2, hidden=2, heldout=8)
    calls = []

    def diverging(cfg, out, **kw):
        calls.append(out.name)
        raise TrainingDiverged("the loss became nan at step 2")

    rows = ex.run_grid(grid, tmp_path, train_fn=diverging)
    assert calls == ["adding-T4-irnn-seed0"]
    assert [(r["status"], r["solved"], r["loss"], r["effective_memory"]) for r in rows] == [
        ("diverged", 0.0, None, None)]
    assert (tmp_path / "runs" / "adding-T4-irnn-seed0" / "diverged.txt").read_text().startswith("the loss became nan")
    assert ex.run_grid(grid, tmp_path, train_fn=diverging)[0]["status"] == "diverged" and len(calls) == 1
    assert "div" in ex.table(rows).splitlines()[3]
    assert ex.read_csv(tmp_path / "memory.csv")[0]["loss"] is None


@pytest.mark.parametrize("argv,msg", [
    (["--cells", "lstm,rnn"], "--cells: unknown 'rnn'"),
    (["--tasks", "sine"], "--tasks: unknown 'sine'"),
    (["--seeds", "0"], "--seeds: got 0"),
    (["--lengths", "1,5"], "--lengths: got (1, 5)"),
])
def test_bad_options(experiment, tmp_path, capsys, argv, msg):
    assert experiment(*argv, "--out", tmp_path / "x") == 2
    err = capsys.readouterr().err
    assert msg in err and err.count("\n") == 1
    assert not (tmp_path / "x").exists()


def test_grid_defaults_and_run_config():
    assert ex.FULL.lengths == (5, 10, 20, 50, 100, 200) and ex.FULL.seeds == 3
    assert ex.QUICK.seeds == 1 and ex.QUICK.hidden < ex.FULL.hidden
    cfg = ex.run_config(ex.FULL, "adding", "irnn", 100, 2)
    assert (cfg.cell, cfg.g1, cfg.init, cfg.length, cfg.seed, cfg.steps, cfg.hidden) == (
        "elman", "relu", "identity", 100, 2, 3000, 32)
    assert cfg.batch == 64 and cfg.schedule == "cosine"  # the adding task's bptt train defaults
    lstm = ex.run_config(ex.FULL, "order", "lstm", 50, 0)
    assert (lstm.cell, lstm.forget_bias) == ("lstm", 1.0)
    runs, notes = ex.plan(ex.FULL)
    assert len(runs) == 2 * 5 * 6 * 3 - 5 * 3 and notes == [
        "order T=5: skipped (length must be >= 6; received 5.)"]
    with pytest.raises(InputError, match="--steps"):
        ex.check_grid(ex.with_options(ex.QUICK, steps=0))
    assert np.isclose(ex.FRACTION, 1e-2)


def test_lstm_rows_have_the_cell_state_memory(tmp_path):
    grid = ex.Grid(tasks=("order",), cells=("lstm",), lengths=(6,), seeds=1, steps=1, hidden=2, heldout=8)
    (row,) = ex.run_grid(grid, tmp_path)
    net = bptt.load(tmp_path / row["run"] / "model.npz")
    assert net.cell.forget_bias == 1.0
    prof = ex.measure_memory(net, bptt.train.build_task(ex.run_config(grid, "order", "lstm", 6, 0)), 0)
    assert prof.cell_norm is not None
    assert row["memory_cell"] == bptt.diagnostics.effective_memory(prof.cell_norm, 1e-2)[0]
    assert row["effective_memory"] == prof.effective_memory


def test_interrupted_experiment_keeps_finished_rows_and_says_how_to_resume(tmp_path):
    from bptt.errors import Interrupted

    grid = ex.Grid(tasks=("order",), cells=("elman-uniform", "gru"), lengths=(6,), seeds=1, steps=2, hidden=2,
                   heldout=8)

    def second_is_interrupted(cfg, out, **kw):
        if cfg.cell == "gru":
            raise Interrupted("SIGINT at step 1: checkpoint written to 'x'; resume with the same command and --resume")
        return bptt.train.train(cfg, out, **kw)

    with pytest.raises(Interrupted, match=r"^SIGINT while training order-T6-gru-seed0: .* run the same bptt "
                                          r"experiment command again to resume$"):
        ex.run_grid(grid, tmp_path, train_fn=second_is_interrupted)
    assert [r["cell"] for r in ex.read_csv(tmp_path / "memory.csv")] == ["elman-uniform"]
