"""Issue 11, goal 2: the training step. float32 by default with no float64 array on its path, integer
inputs for text, one global norm per step, lean imports, and the end-to-end benchmark (run, not timed)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from bptt import config, optim, train, train_step
from bptt.codes import one_hot

TEXT = "the cat sat on the mat; the dog sat on the log. a bird sang in the tree by the river. " * 8


@pytest.fixture
def text_file(tmp_path):
    p = tmp_path / "corpus.txt"
    p.write_text(TEXT, encoding="utf-8")
    return str(p)


def setup(text_file, **flags):
    cfg = config.resolve({}, {"task": "text", "data": text_file, "hidden": 8, "batch": 4, "length": 6, **flags})
    task = train.build_task(cfg)
    net = train.build_net(cfg, task)
    opt = train.build_optimizer(cfg)
    return cfg, task, net, opt


def _arrays(v, depth=0):
    """ndarrays in v, looking into tuples, lists and dicts (NamedTuples too) two levels deep."""
    if isinstance(v, np.ndarray):
        yield v
    elif depth < 2 and isinstance(v, (tuple, list)):
        for x in v:
            yield from _arrays(x, depth + 1)
    elif depth < 2 and isinstance(v, dict):
        for x in v.values():
            yield from _arrays(x, depth + 1)


@pytest.mark.parametrize("cell", ["elman", "lstm", "gru"])
def test_float32_training_step_makes_no_float64_array(text_file, cell):
    """Every ndarray that any Python function (bptt's or NumPy's) returns or holds in a local variable
    when it returns, during two training steps, is checked: none may be float64."""
    cfg, task, net, opt = setup(text_file, cell=cell)
    assert cfg.dtype == "float32"  # the default
    state = opt.init(net.params)
    # one step first: its imports (numba's loads numpy.polynomial, whose class setup makes float64
    # arrays) are not the training step's arrays
    state = train_step.batch_step(net, task, opt, state, cfg, 0).opt_state
    seen, bad = [0], []

    def profiler(frame, event, arg):
        if event != "return":
            return
        where = f"{frame.f_code.co_filename.rsplit('/', 1)[-1]}:{frame.f_code.co_name}"
        for v in (arg, *frame.f_locals.values()):
            for a in _arrays(v):
                seen[0] += 1
                if a.dtype == np.float64:
                    bad.append((where, a.shape))

    sys.setprofile(profiler)
    try:
        for step in range(1, 3):
            r = train_step.batch_step(net, task, opt, state, cfg, step)
            state = r.opt_state
    finally:
        sys.setprofile(None)
    assert seen[0] > 100  # the profiler did see the step's arrays
    assert not bad, f"float64 arrays on the float32 path: {bad[:10]}"
    assert all(a.dtype == np.float32 for a in net.params.values())
    assert r.X.dtype.kind == "i"  # the text batch went in as codes


@pytest.mark.parametrize("cell", ["elman", "gru"])
def test_codes_and_one_hot_training_agree(text_file, cell):
    """A float64 step fed codes equals the one fed one-hot vectors (same batch, same update)."""
    results = []
    for codes in (True, False):
        cfg, task, net, opt = setup(text_file, cell=cell, dtype="float64")
        state = opt.init(net.params)
        for step in range(3):
            r = train_step.batch_step(net, task, opt, state, cfg, step, codes=codes)
            state = r.opt_state
        results.append((net.params, r))
    (p1, r1), (p2, r2) = results
    assert r1.X.ndim == 2 and r2.X.ndim == 3
    np.testing.assert_array_equal(one_hot(r1.X, r2.X.shape[-1], np.float64), r2.X)
    assert abs(r1.E - r2.E) <= 1e-12 * abs(r2.E) and abs(r1.norm - r2.norm) <= 1e-12 * r2.norm
    for k in p1:
        assert np.max(np.abs(p1[k] - p2[k])) <= 1e-12 * max(1.0, np.max(np.abs(p2[k]))), k


def test_one_norm_per_step_and_it_is_the_global_norm(text_file, monkeypatch):
    cfg, task, net, opt = setup(text_file, clip=0.01)
    calls = []
    real = optim.global_norm
    monkeypatch.setattr(optim, "global_norm", lambda g: calls.append(1) or real(g))
    monkeypatch.setattr("bptt.optim.clipping.global_norm", lambda g: calls.append(1) or real(g))
    r = train_step.batch_step(net, task, opt, opt.init(net.params), cfg, 0)
    assert len(calls) == 1
    X, D = train_step.batch_data(task, cfg, 0, True)
    rng = np.random.default_rng(0)
    g = {k: rng.standard_normal(s).astype(np.float32) for k, s in (("a", (3, 4)), ("b", (5,)))}
    want = float(np.sqrt(sum(np.sum(v.astype(np.float64) ** 2) for v in g.values())))
    assert abs(optim.global_norm(g) - want) <= 1e-6 * want
    clipped, n = optim.clip_by_global_norm(g, 0.5, norm=want)
    assert n == want and abs(optim.global_norm(clipped) - 0.5) <= 1e-5
    assert X.shape == (6, 4) and r.norm > 0


def test_clip_norm_argument_is_checked():
    from bptt import InputError

    with pytest.raises(InputError, match="norm must be"):
        optim.clip_by_global_norm({"a": np.ones(2)}, 1.0, norm="big")
    with pytest.raises(InputError, match="norm must be"):
        optim.clip_by_global_norm({"a": np.ones(2)}, 1.0, norm=-1.0)


def test_import_bptt_is_lean():
    code = ("import sys, bptt; heavy = [m for m in ('matplotlib', 'torch', 'numba', 'scipy', 'bptt.diagnostics', "
            "'bptt.experiment', 'bptt.bench', 'bptt.bench_train') if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    import bptt

    assert bptt.diagnostics.tracked_metrics  # still reachable as an attribute


def test_float64_flag_is_kept(text_file, tmp_path):
    out = subprocess.run([sys.executable, "-m", "bptt", "train", "text", "--data", text_file, "--hidden", "6",
                          "--batch", "2", "--length", "5", "--steps", "3", "--dtype", "float64", "--heldout", "4",
                          "--quiet", "--out", str(tmp_path / "r")], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    from bptt import load

    assert load(tmp_path / "r" / "model.npz").dtype == np.float64


def test_train_bench_runs_and_prints_both_times(text_file):
    from bptt import bench_train

    pytest.importorskip("torch")
    result = bench_train.run(["elman", "lstm"], ["float32"], repeats=1, pause=0.0, data=text_file, hidden=8,
                             batch=4, length=6)
    for row in result["rows"]:
        t = row["times"]
        assert {"bptt", "torch", "torch-embed"} <= set(t) and all(v > 0 for v in t.values())
        assert row["torch_ratio"] == min(t["torch"], t["torch-embed"]) / t["bptt"]
    table = bench_train.format_table(result)
    assert "torch one-hot" in table and "elman" in table and "lstm" in table


def test_bench_train_cli(text_file):
    out = subprocess.run([sys.executable, "-m", "bptt", "bench", "--train", "--cell", "gru", "--repeats", "1",
                          "--pause", "0", "--data", text_file], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "gru" in out.stdout and "torch/bptt" in out.stdout
    bad = subprocess.run([sys.executable, "-m", "bptt", "bench", "--train", "--cell", "rnn"],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "--cell" in bad.stderr and bad.stderr.count("\n") == 1
