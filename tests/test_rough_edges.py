"""The CLI's rough edges from a newcomer's first hour: advice that works, --column, shipped data by name,
diagnose's default output, help texts, error prefixes, the evaluate and bench tables, one rule for s0 in the
optimisers, the LSTM forget bias stated in both helps, no temporary folder left by the examples."""

from __future__ import annotations

import csv
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import bptt
from bptt import bench, optim
from bptt.cli import COMMANDS, build_parser, main
from bptt.data import BUILTIN_TEXT, builtin_series, shipped

TINY = ["--steps", "4", "--hidden", "5", "--batch", "4", "--checkpoint-every", "4"]


def cli(capsys, *argv):
    code = main([str(a) for a in argv])
    got = capsys.readouterr()
    return code, got.out, got.err


def two_column_csv(path):
    t = np.arange(80)
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["a", "b"])
        w.writerows([f"{10 + np.sin(i / 3):.6f}", f"{100 + 5 * np.cos(i / 5) + 3 * i:.6f}"] for i in t)
    return path


# ---- advice that works ------------------------------------------------------------------------------------
def test_sine_does_not_advise_predict(tmp_path, capsys):
    code, out, err = cli(capsys, "train", "sine", *TINY, "--length", "8", "--heldout", "4", "--out", tmp_path / "s")
    assert code == 0, err
    assert "predict" not in out


def test_series_advice_runs_as_printed(tmp_path, capsys):
    code, out, err = cli(capsys, "train", "series", "--data", "airline", *TINY, "--length", "8", "--heldout", "4",
                         "--out", tmp_path / "s")
    assert code == 0, err
    [line] = [ln for ln in out.splitlines() if "bptt predict" in ln]
    argv = shlex.split(line.split("with: ", 1)[1])
    assert argv[:2] == ["bptt", "predict"]
    code, fc, err = cli(capsys, *argv[1:])
    assert code == 0, err
    assert len(re.findall(r"t\+\d+:", fc)) == 12


# ---- --column ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def column_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("col")
    data = two_column_csv(root / "two.csv")
    assert main(["train", "series", "--data", str(data), "--column", "a", *TINY, "--length", "6", "--heldout", "8",
                 "--quiet", "--out", str(root / "run")]) == 0
    return root / "run", data


def test_evaluate_column(column_run, capsys):
    run, data = column_run
    _, a, _ = cli(capsys, "evaluate", run, "--json")
    code, b, err = cli(capsys, "evaluate", run, "--column", "b", "--json")
    assert code == 0, err
    a, b = json.loads(a), json.loads(b)
    assert b["baseline_mse"] > 10 * a["baseline_mse"]  # column b moves much more than a from step to step
    _, by_index, _ = cli(capsys, "evaluate", run, "--column", "1", "--json")
    assert json.loads(by_index) == b


def test_predict_column(column_run, capsys):
    run, data = column_run
    code, out, err = cli(capsys, "predict", run, "--column", "b", "--horizon", "2", "--json")
    assert code == 0, err
    r = json.loads(out)
    assert r["column"] == "b" and r["last_value"] == pytest.approx(100 + 5 * np.cos(79 / 5) + 3 * 79, abs=1e-5)


def test_column_errors_name_the_option(column_run, capsys, tmp_path):
    run, data = column_run
    code, _, err = cli(capsys, "predict", run, "--column", "zz")
    assert code == 2 and err.startswith("bptt predict: error: --column: unknown column 'zz'")
    code, _, err = cli(capsys, "train", "series", "--data", data, *TINY, "--out", tmp_path / "x")
    assert code == 2 and "choose one with --column" in err and "column=" not in err
    code, _, err = cli(capsys, "evaluate", run, "--column", "b", "--data", data, "--json")
    assert code == 0, err


# ---- shipped data by name ---------------------------------------------------------------------------------
def test_shipped_names_resolve_and_are_listed(tmp_path, monkeypatch):
    assert shipped.resolve("series", "airline") == str(builtin_series("airline"))
    monkeypatch.chdir(tmp_path)
    assert shipped.resolve("text", "docs") == BUILTIN_TEXT
    (tmp_path / "airline").write_text("x,y\n1,2\n")
    assert shipped.resolve("series", "airline") == "airline"  # an existing file wins
    helptext = build_parser()._subparsers._group_actions[0].choices["train"].format_help()
    assert "--data airline" in helptext and "--data docs" in helptext


def test_evaluate_on_shipped_series(column_run, capsys):
    run, _ = column_run
    code, out, err = cli(capsys, "evaluate", run, "--data", "airline", "--column", "passengers", "--json")
    assert code == 0, err
    assert json.loads(out)["sequences"] > 0


# ---- diagnose --out ---------------------------------------------------------------------------------------
def test_diagnose_default_out_and_folders(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    fresh = ["diagnose", "--length", "6", "--batch", "2", "--hidden", "3", "--no-plot"]
    code, out, err = cli(capsys, *fresh)
    assert code == 0, err
    assert (tmp_path / "runs" / "diagnose" / "gradient.csv").exists()
    code, out, err = cli(capsys, *fresh, "--out", "deep/er/prefix")
    assert code == 0, err and (tmp_path / "deep" / "er" / "prefix.csv").exists()
    assert main(["train", "adding", *TINY, "--length", "5", "--heldout", "4", "--quiet", "--out", "run"]) == 0
    code, out, err = cli(capsys, "diagnose", "run", "--batch", "2", "--no-plot")
    assert code == 0, err
    assert (tmp_path / "run" / "gradient.csv").exists() and "wrote run/gradient.csv" in out


def test_diagnose_out_that_is_a_folder_is_refused(tmp_path, capsys):
    code, _, err = cli(capsys, "diagnose", "--length", "4", "--out", tmp_path)
    assert code == 2 and "--out" in err and "is a folder" in err
    assert list(tmp_path.iterdir()) == []


# ---- help texts, errors, tables ---------------------------------------------------------------------------
def all_helps():
    parser = build_parser()
    subs = parser._subparsers._group_actions[0].choices
    return {"": parser.format_help(), **{name: subs[name].format_help() for name in COMMANDS}}


@pytest.mark.parametrize("word", ["``", "issue ", "seed tutorial", "the seed", ":func:", ":class:"])
def test_help_texts_have_no_markup_or_internal_words(word):
    bad = [name for name, text in all_helps().items() if word in text]
    assert bad == [], (word, bad)


def test_subcommand_usage_errors_are_prefixed_with_the_subcommand(capsys):
    with pytest.raises(SystemExit) as e:
        main(["train", "--steps", "many"])
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.startswith("bptt train: error: argument --steps") and "bptt train --help" in err
    with pytest.raises(SystemExit):
        main(["frobnicate"])
    assert capsys.readouterr().err.startswith("bptt: error:")


def test_evaluate_table_is_aligned_and_bpc_has_one_name(tmp_path, capsys):
    (tmp_path / "t.txt").write_text("the quick brown fox jumps over the lazy dog. " * 30, encoding="utf-8")
    assert main(["train", "text", "--data", str(tmp_path / "t.txt"), "--length", "8", *TINY, "--heldout", "4",
                 "--quiet", "--out", str(tmp_path / "r")]) == 0
    capsys.readouterr()
    code, out, err = cli(capsys, "evaluate", tmp_path / "r")
    table = [ln for ln in out.splitlines() if re.match(r"^\w+: +\S+$", ln)]
    names = [ln.split(":")[0] for ln in table]
    assert "bpc" in names and "bits_per_char" not in out
    assert {"loss", "ce", "accuracy", "solved", "baseline_bpc", "sequences"} <= set(names)
    assert len({len(ln) for ln in table}) == 1  # values right-aligned in one column
    code, out, err = cli(capsys, "evaluate", tmp_path / "r", "--json")
    assert "bits_per_char" not in json.loads(out)


def _bench_result(goal: bool):
    row = {"config": "A", "I": 1, "H": 2, "O": 1, "B": 1, "T": 3, "cell": "elman", "dtype": "float32",
           "mode": "fwd+bwd", "times": {"numpy": 1e-3, "torch": 2e-3, "floor": 5e-4}, "gflops": {"numpy": 1.0},
           "bptt_best": "numpy", "vs_floor": 2.0, "torch_ratio": 2.0}
    if goal:
        row |= {"goal": 10.0, "goal_met": False}
    return {"machine": {"cpu": "x", "cores": 2, "numpy": "2", "blas": []}, "peak_gflops": {}, "repeats": 1,
            "pause": 0.0, "rows": [row, {k: v for k, v in row.items() if k not in ("goal", "goal_met")}]}


def test_bench_table_goal_column_is_filled_or_absent():
    table = bench.format_table(_bench_result(goal=False))
    assert "goal" not in table
    table = bench.format_table(_bench_result(goal=True)).splitlines()
    head = next(ln for ln in table if ln.split()[:2] == ["cfg", "I,H,O,B,T"])
    body = table[table.index(head) + 1:]
    col = head.split().index("goal")
    assert [ln.split()[col] for ln in body] == [">=10", "-"] and "NOT met" in body[0]
    assert any(ln.startswith("goal: ") for ln in table)


def test_forget_bias_defaults_stated_in_both_helps():
    assert "bptt.LSTM defaults to 0.0" in " ".join(all_helps()["train"].split())
    assert "bptt train --cell lstm`` uses unless --forget-bias" in " ".join(bptt.LSTM.__doc__.split())
    net = bptt.LSTM(1, 2, 1, seed=0)
    ref = bptt.LSTM(1, 2, 1, seed=0, forget_bias=1.0)
    assert np.allclose(ref.params["b_ih"][2:4] - net.params["b_ih"][2:4], 1.0)


# ---- one rule for net.gradients' s0 in the optimisers and clipping ---------------------------------------
@pytest.mark.parametrize("cls", [bptt.Elman, bptt.LSTM, bptt.GRU])
def test_update_and_clipping_leave_s0_out_for_every_cell(cls):
    net = cls(2, 3, 1, seed=0)
    rng = np.random.default_rng(0)
    X, D = rng.standard_normal((5, 2, 2)), rng.standard_normal((5, 2, 1))
    _, g = net.gradients(X, D)
    assert "s0" in g
    params_only = {k: v for k, v in g.items() if k != "s0"}
    opt = optim.adam(0.01)
    state = opt.init(net.params)
    a, sa = opt.update(net.params, g, state)
    b, sb = opt.update(net.params, params_only, state)
    assert all(np.array_equal(a[k], b[k]) for k in b) and a.keys() == b.keys()
    assert optim.global_norm(g) == optim.global_norm(params_only)
    clipped, norm = optim.clip_by_global_norm(g, 1e-3)
    assert clipped.keys() == params_only.keys() and norm == optim.global_norm(params_only)
    with pytest.raises(bptt.InputError, match="unexpected"):
        opt.update(net.params, {**params_only, "Wq": params_only[next(iter(params_only))]}, state)


# ---- examples ---------------------------------------------------------------------------------------------
def test_example_02_leaves_no_temporary_folder(tmp_path):
    ex = Path(__file__).parent.parent / "examples" / "02_train_with_the_api.py"
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    r = subprocess.run([sys.executable, str(ex), "20"], capture_output=True, text=True, timeout=300,
                       env={**os.environ, "TMPDIR": str(tmp)})
    assert r.returncode == 0, r.stderr
    assert "identical = True" in r.stdout
    assert list(tmp.iterdir()) == []
