"""Fast paths: the compiled (numba) loops and backend dispatch against the reference NumPy loop, the
default backend, float32 kept throughout, lazy numba import, the compiled tanh/sigmoid and BLAS call,
and the benchmark's plumbing (never its times)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import types
import zlib
from pathlib import Path

import numba
import numpy as np
import pytest

import bptt
from bptt import GRU, LSTM, Elman, InputError, bench, fast
from bptt.cli import main as cli_main

G2_LOSS = [("identity", "squared"), ("tanh", "squared"), ("sigmoid", "squared"), ("relu", "squared"),
           ("softmax", "squared"), ("softmax", "cross_entropy")]


def rel_err(a, b):
    return max(float(np.max(np.abs(a[k] - b[k])) / max(np.max(np.abs(a[k])), 1e-300)) for k in a)


def data(rng, T, B, I, O, loss, dtype=np.float64, onehot=False):
    if onehot:  # zero columns: exercises the kernel's skip of zero inputs
        X = np.eye(I)[rng.integers(0, I, (T, B))]
    else:
        X = rng.standard_normal((T, B, I))
    D = rng.integers(0, O, (T, B)) if loss == "cross_entropy" else rng.standard_normal((T, B, O))
    return X.astype(dtype), D if loss == "cross_entropy" else D.astype(dtype)


def case_seed(*names: str) -> int:
    """A seed from the case's names that is the same in every process (hash() of str is not: PYTHONHASHSEED)."""
    return zlib.crc32(",".join(names).encode())


def test_case_seeds_are_the_same_in_every_process():
    code = ("import sys; sys.path.insert(0, 'tests'); from test_fast import case_seed; "
            "print(case_seed('tanh', 'softmax', 'squared'))")
    got = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          env={**os.environ, "PYTHONHASHSEED": h}, cwd=Path(__file__).parent.parent).stdout
           for h in ("1", "2")}
    assert got == {f"{case_seed('tanh', 'softmax', 'squared')}\n"}


# ---- numba kernel == reference loop -------------------------------------------------------------
@pytest.mark.parametrize("g1", ["tanh", "sigmoid", "relu", "identity"])
@pytest.mark.parametrize("g2,loss", G2_LOSS)
def test_numba_matches_reference_every_activation_and_loss(g1, g2, loss):
    rng = np.random.default_rng(case_seed(g1, g2, loss))
    T, B, I, H, O = 13, 3, 4, 7, 5
    net = Elman(I, H, O, g1=g1, g2=g2, seed=int(rng.integers(1000)))
    X, D = data(rng, T, B, I, O, loss, onehot=g1 == "relu")
    for at, s0 in [(None, None), (-1, rng.standard_normal((B, H))), ([0, 5, 12], rng.standard_normal((B, H)))]:
        E, g = net.gradients(X, D, loss=loss, at=at, s0=s0)
        E2, g2_ = net.gradients(X, D, loss=loss, at=at, s0=s0, backend="numba")
        assert list(g2_) == list(g)  # same names, same order, s0 included
        assert all(g2_[k].shape == g[k].shape and g2_[k].dtype == np.float64 for k in g)
        assert rel_err(g, g2_) <= 1e-12
        assert abs(E - E2) <= 1e-12 * abs(E)


def state_err(a, b):
    """Relative error of the s0 gradients (an array, or an (h, c) tuple for LSTM)."""
    a, b = (a, b) if isinstance(a, tuple) else ((a,), (b,))
    assert len(a) == len(b) and all(x.shape == y.shape and x.dtype == y.dtype for x, y in zip(a, b))
    return max(float(np.max(np.abs(x - y)) / max(np.max(np.abs(x)), 1e-300)) for x, y in zip(a, b))


def random_state(rng, cls, B, H):
    h = rng.standard_normal((B, H))
    return (h, rng.standard_normal((B, H))) if cls is LSTM else h


@pytest.mark.parametrize("cls", [LSTM, GRU])
@pytest.mark.parametrize("g2,loss", G2_LOSS)
def test_numba_gated_cells_match_reference_every_loss(cls, g2, loss):
    rng = np.random.default_rng(hash((cls.__name__, g2, loss)) % 2**32)
    T, B, I, H, O = 11, 3, 4, 6, 5
    net = cls(I, H, O, g2=g2, seed=int(rng.integers(1000)))
    X, D = data(rng, T, B, I, O, loss, onehot=g2 == "relu")
    for at, s0 in [(None, None), (-1, random_state(rng, cls, B, H)), ([0, 4, 10], random_state(rng, cls, B, H))]:
        E, g = net.gradients(X, D, loss=loss, at=at, s0=s0, backend="numpy")
        E2, g2_ = net.gradients(X, D, loss=loss, at=at, s0=s0, backend="numba")
        assert list(g2_) == list(g)  # same names, same order, s0 included
        assert rel_err({k: v for k, v in g.items() if k != "s0"}, g2_) <= 1e-12
        assert state_err(g["s0"], g2_["s0"]) <= 1e-12
        assert abs(E - E2) <= 1e-12 * abs(E)


@pytest.mark.parametrize("cls", [Elman, LSTM, GRU])
# one row: onerow's kernels (H=32), or ?gemv where W is over blas.ONEROW_BYTES (H=400); three rows: the packed
# kernel, columns past a panel
@pytest.mark.parametrize("T,B,I,H,O", [(1, 1, 1, 1, 1), (40, 1, 1, 32, 1), (6, 5, 9, 3, 2), (4, 1, 3, 400, 2),
                                       (4, 3, 3, 220, 2)])
def test_numba_matches_reference_shapes(cls, T, B, I, H, O):
    rng = np.random.default_rng(T * 100 + H)
    net = cls(I, H, O, seed=3, init="orthogonal")
    X, D = data(rng, T, B, I, O, "squared")
    E, g = net.gradients(X, D, backend="numpy")
    E2, g2 = net.gradients(X, D, backend="numba")
    assert rel_err({k: v for k, v in g.items() if k != "s0"}, g2) <= 1e-12 and abs(E - E2) <= 1e-12 * abs(E)
    assert state_err(g["s0"], g2["s0"]) <= 1e-12


@pytest.mark.parametrize("cls", [Elman, LSTM, GRU])
def test_numba_truncate_reaching_every_step_is_full_bptt(cls):
    rng = np.random.default_rng(0)
    net = cls(3, 4, 2)
    X, D = data(rng, 8, 2, 3, 2, "squared")
    _, g = net.gradients(X, D, backend="numpy")
    _, g2 = net.gradients(X, D, truncate=8, backend="numba")
    assert rel_err({k: v for k, v in g.items() if k != "s0"}, g2) <= 1e-12
    _, g3 = net.gradients(X, D, at=[0, 2], truncate=3, backend="numba")  # every loss step reaches step 0
    _, g4 = net.gradients(X, D, at=[0, 2], backend="numpy")
    assert rel_err({k: v for k, v in g4.items() if k != "s0"}, g3) <= 1e-12
    with pytest.raises(InputError, match="truncated BPTT"):
        net.gradients(X, D, truncate=3, backend="numba")


@pytest.mark.parametrize("cls", [Elman, LSTM, GRU])
def test_numba_float32_grads_match_float64_reference(cls):
    rng = np.random.default_rng(1)
    net64 = cls(5, 16, 3, seed=2)
    net32 = cls(5, 16, 3, seed=2, dtype=np.float32)
    X, D = data(rng, 30, 2, 5, 3, "squared")
    _, g = net64.gradients(X, D, backend="numpy")
    E32, g32 = net32.gradients(X.astype(np.float32), D.astype(np.float32), backend="numba")
    assert all(np.asarray(v).dtype == np.float32 for k, v in g32.items() if k != "s0")
    assert rel_err({k: v for k, v in g.items() if k != "s0"}, g32) <= 1e-4  # float32 rounding over 30 steps


# ---- dispatch ----------------------------------------------------------------------------------
def same(g, g2):
    """Bitwise equal gradients (s0 may be a tuple)."""
    return list(g) == list(g2) and all(np.array_equal(np.asarray(g[k]), np.asarray(g2[k])) for k in g)


@pytest.mark.parametrize("make,kw,why", [
    (lambda: Elman(3, 4, 2, layers=2), {}, "one unidirectional layer"),
    (lambda: LSTM(3, 4, 2, layers=2), {}, "one unidirectional layer"),
    (lambda: GRU(3, 4, 2, bidirectional=True), {}, "one unidirectional layer"),
    (lambda: Elman(3, 4, 2, bidirectional=True), {}, "one unidirectional layer"),
    (lambda: Elman(3, 4, 2), {"lengths": np.array([3, 5])}, "lengths"),
    (lambda: LSTM(3, 4, 2), {"lengths": np.array([3, 5])}, "lengths"),
    (lambda: GRU(3, 4, 2), {"resets": np.zeros((5, 2), bool)}, "resets"),
    (lambda: Elman(3, 4, 2), {"resets": np.zeros((5, 2), bool)}, "resets"),
    (lambda: Elman(3, 4, 2), {"truncate": 2}, "truncated"),
    (lambda: LSTM(3, 4, 2), {"truncate": 2}, "truncated"),
    (lambda: GRU(3, 4, 2), {"truncate": 2}, "truncated"),
])
def test_numba_unsupported_cases_raise_and_auto_falls_back(make, kw, why):
    net = make()
    rng = np.random.default_rng(0)
    X, D = data(rng, 5, 2, 3, 2, "squared")
    with pytest.raises(InputError, match=why) as e:
        net.gradients(X, D, backend="numba", **kw)
    assert "backend='numba'" in str(e.value) and "backend='numpy'" in str(e.value)
    E, g = net.gradients(X, D, backend="numpy", **kw)
    for backend in ("auto", None):  # explicit, then the default
        E2, g2 = net.gradients(X, D, **kw) if backend is None else net.gradients(X, D, backend=backend, **kw)
        assert E == E2 and same(g, g2)
    assert fast.backend_for(net, 2, T=5, **kw) == "numpy"


def test_unknown_backend_is_an_input_error():
    net = Elman(2, 3, 1)
    X, D = data(np.random.default_rng(0), 4, 1, 2, 1, "squared")
    for bad in ("torch", "NUMBA", None, 1):
        with pytest.raises(InputError, match="backend: got"):
            net.gradients(X, D, backend=bad)


@pytest.fixture
def kernel_calls(monkeypatch):
    """A list that grows by one at every call of the compiled backend."""
    calls = []
    real = fast.numba_kernel

    def spy():
        mod = real()
        return types.SimpleNamespace(gradients=lambda *a: calls.append(1) or mod.gradients(*a))

    monkeypatch.setattr(fast, "numba_kernel", spy)
    return calls


@pytest.mark.parametrize("cls", [Elman, LSTM, GRU])
def test_the_default_backend_is_auto_and_runs_the_compiled_loops(cls, kernel_calls):
    rng = np.random.default_rng(0)
    net = cls(3, 5, 2)
    X, D = data(rng, 7, 2, 3, 2, "squared")
    assert fast.blas_available()  # NumPy's wheel BLAS is found on the test machines
    assert fast.backend_for(net, 2) == "numba" and fast.backend_for(net, 2, backend="numpy") == "numpy"
    assert fast.backend_for(net, 2, max_states=3) == "memory"
    E, g = net.gradients(X, D, backend="numpy")
    assert not kernel_calls
    E2, g2 = net.gradients(X, D)
    assert kernel_calls == [1] and abs(E - E2) <= 1e-12 * E
    assert rel_err({k: v for k, v in g.items() if k != "s0"}, g2) <= 1e-12


def test_auto_without_blas_picks_numba_for_small_nets_only(monkeypatch, kernel_calls):
    monkeypatch.setattr(fast, "blas_available", lambda: False)
    rng = np.random.default_rng(0)
    small = Elman(1, 32, 1)
    X, D = data(rng, 20, 1, 1, 1, "squared")
    _, g = small.gradients(X, D, backend="numpy")
    _, g2 = small.gradients(X, D, backend="auto")
    assert kernel_calls and rel_err({k: v for k, v in g.items() if k != "s0"}, g2) <= 1e-12
    kernel_calls.clear()
    big = LSTM(4, 256, 4)
    assert fast.work_per_step(big, 2) > fast.AUTO_MAX_WORK and fast.backend_for(big, 2) == "numpy"
    X, D = data(rng, 3, 2, 4, 4, "squared")
    E, g = big.gradients(X, D, backend="numpy")
    E2, g2 = big.gradients(X, D, backend="auto")
    assert not kernel_calls and E == E2 and same(g, g2)


def test_backend_for_truncation_and_errors():
    net = GRU(2, 3, 1)
    assert fast.backend_for(net, 4, T=10, truncate=10) == "numba"
    assert fast.backend_for(net, 4, T=10, truncate=9) == "numpy"
    assert fast.backend_for(net, 4, truncate=9) == "numpy"  # T unknown: cannot tell that it reaches step 0
    with pytest.raises(InputError, match="backend='numba'"):
        fast.backend_for(net, 4, T=10, truncate=2, backend="numba")
    with pytest.raises(InputError, match="backend: got"):
        fast.backend_for(net, 4, backend="fast")


def test_missing_numba_says_how_to_install(monkeypatch):
    monkeypatch.setattr(fast, "_numba_module", None)
    monkeypatch.setattr(fast, "_numba_error", ImportError("No module named 'numba'"))
    net = Elman(2, 3, 1)
    X, D = data(np.random.default_rng(0), 4, 1, 2, 1, "squared")
    with pytest.raises(InputError, match=r'pip install "bptt\[fast\]"'):
        net.gradients(X, D, backend="numba")
    assert not fast.numba_available()
    E, _ = net.gradients(X, D, backend="numpy")
    assert net.gradients(X, D, backend="auto")[0] == E  # auto falls back to the NumPy loop
    assert net.gradients(X, D)[0] == E and fast.backend_for(net, 1) == "numpy"


def test_import_bptt_does_not_import_numba():
    code = ("import sys, numpy as np, bptt\n"
            "net = bptt.Elman(2, 3, 1)\n"
            "X = np.ones((4, 1, 2)); net.gradients(X, X[..., :1], backend='numpy')\n"
            "net.gradients(X, X[..., :1], max_states=2)\n"
            "bptt.Elman(2, 3, 1, layers=2).gradients(X, X[..., :1])  # auto, not covered: no numba needed\n"
            "assert 'numba' not in sys.modules, 'numba imported'\n"
            "import bptt.cli; bptt.cli.build_parser()\n"
            "assert 'numba' not in sys.modules and 'torch' not in sys.modules\n"
            "net.gradients(X, X[..., :1])\n"
            "assert 'numba' in sys.modules  # the default backend uses it where it applies\n")
    subprocess.run([sys.executable, "-c", code], check=True)


# ---- float32 throughout --------------------------------------------------------------------------
def float64_locals(fn):
    """Run fn() and collect every float64 ndarray (or NumPy float64 scalar) held by a local variable
    of a bptt function when that function returns."""
    seen = []

    def prof(frame, event, arg):
        if event == "return" and frame.f_code.co_filename.startswith(bptt.__path__[0]):
            for name, v in list(frame.f_locals.items()) + [("<return>", arg)]:
                vals = v if isinstance(v, (tuple, list)) else (v,)
                for a in vals:
                    if isinstance(a, (np.ndarray, np.floating)) and a.dtype == np.float64:
                        seen.append(f"{frame.f_code.co_name}:{name}")

    sys.setprofile(prof)
    try:
        fn()
    finally:
        sys.setprofile(None)
    return seen


@pytest.mark.parametrize("cls,kw", [(Elman, {"g1": "tanh"}), (Elman, {"g1": "sigmoid"}), (LSTM, {}), (GRU, {})])
@pytest.mark.parametrize("g2,loss", [("identity", "squared"), ("softmax", "cross_entropy"), ("softmax", "squared")])
def test_float32_stays_float32_in_every_numpy_path(cls, kw, g2, loss):
    rng = np.random.default_rng(0)
    net = cls(3, 5, 4, g2=g2, dtype=np.float32, **kw)
    X, D = data(rng, 6, 2, 3, 4, loss, dtype=np.float32)
    runs = {
        "full": lambda: net.gradients(X, D, loss=loss),
        "truncated": lambda: net.gradients(X, D, loss=loss, truncate=2, lengths=np.array([6, 4])),
        "budgeted": lambda: net.gradients(X, D, loss=loss, max_states=2),
    }
    # the numba backend's NumPy half (its compiled half: see the typemap test below)
    runs["numba"] = lambda: net.gradients(X, D, loss=loss, backend="numba")
    for name, run in runs.items():
        out = []
        assert float64_locals(lambda: out.append(run())) == [], name
        E, g = out[0]
        assert all(np.asarray(v).dtype == np.float32 for v in g.values()), name
        assert np.isfinite(E)
    # the check can fail: a float64 net is seen
    net64 = cls(3, 5, 4, g2=g2, **kw)
    assert float64_locals(lambda: net64.gradients(X.astype(np.float64), D if loss == "cross_entropy"
                                                  else D.astype(np.float64), loss=loss))


def _kernel_float_types(dtype):
    """Compile fresh (uncached) copies of the compiled loops for one dtype; return the set of every
    local variable's numba type that mentions a float (the inlined tanh and sigmoid included)."""
    from bptt.fast import microkernel as mk
    from bptt.fast import numba_elman as ne
    from bptt.fast import numba_gru as ng
    from bptt.fast import numba_lstm as nl

    X = np.ones((2, 1, 3), dtype)
    for net in (Elman(3, 4, 2, g1="sigmoid", dtype=dtype), LSTM(3, 4, 2, dtype=dtype), GRU(3, 4, 2, dtype=dtype)):
        net.gradients(X, X[..., :2].copy(), backend="numba")  # compiles the cached versions for this dtype
    found = set()
    for f in (ne.forward_recurrence, ne.backward_recurrence, ne._g, ne._dg, nl.forward, nl.backward, ng.forward,
              ng.backward, mk.pack):  # microkernel.gemm is inlined into the loops
        for sig in f.signatures:
            if not any(np.dtype(dtype).name in str(a) for a in sig):
                continue
            fresh = numba.njit(f.py_func)
            fresh.compile(sig)
            found |= {str(t) for t in fresh.overloads[sig].fndesc.typemap.values() if "float" in str(t)}
    return found


def test_numba_kernel_has_no_float64_variable_in_float32():
    t32 = _kernel_float_types(np.float32)
    assert t32 and not any("float64" in t for t in t32), sorted(t for t in t32 if "float64" in t)
    assert any("float64" in t for t in _kernel_float_types(np.float64))  # the check can fail


# ---- the benchmark's plumbing (no times asserted) ------------------------------------------------
def test_parse_config_and_flops():
    assert bench.parse_config("A,c") == [bench.Config("A", 1, 32, 1, 1, 100), bench.Config("C", 32, 128, 32, 32, 100)]
    assert bench.parse_config("2,3,4,5,6") == [bench.Config("custom", 2, 3, 4, 5, 6)]
    for bad in ("F", "1,2,3", "1,2,3,4,0", "x,y,z,w,v", ""):
        with pytest.raises(InputError, match="--config"):
            bench.parse_config(bad)
    # config A by hand: T*B = 100; projection 100*1*32, recurrent 2 * 100*32*32, output and its
    # backward 2 * 100*32*1, dWs 32*100*32, dWx 32*100*1, dWy 1*100*32
    mac = 3200 + 2 * 102400 + 2 * 3200 + 102400 + 3200 + 3200
    assert bench.gemm_flops(bench.Config("A", *bench.CONFIGS["A"])) == 2 * mac


def test_bench_quick_json_runs_every_contender(capsys):
    assert cli_main(["bench", "--quick", "--json", "--cell", "elman,lstm", "--dtype", "float32,float64",
                     "--repeats", "1"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["threads"] >= 1 and res["machine"]["numpy"] == np.__version__
    assert len(res["rows"]) == 2 * 2 * 2
    for r in res["rows"]:
        assert r["times"]["numpy"] > 0 and r["times"]["floor"] > 0 and r["times"]["torch"] > 0
        assert "numba" in r["times"]
        assert ("naive" in r["times"]) == (r["cell"] == "elman")  # found from the source checkout
        assert r["torch_ratio"] > 0 and r["vs_floor"] > 0


def test_bench_table_and_bad_options(capsys):
    assert cli_main(["bench", "--quick", "--repeats", "1", "--only", "numpy"]) == 0
    out = capsys.readouterr().out
    assert "torch/bptt" in out and "peak matmul" in out and "quick-a" in out
    assert cli_main(["bench", "--quick", "--repeats", "1", "--train-step", "--json", "--only", "numpy,torch"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert {r["mode"] for r in res["rows"]} == {"train step"} and all("torch_ratio" in r for r in res["rows"])
    assert cli_main(["bench", "--quick", "--cell", "rnn"]) == 2
    assert "--cell" in capsys.readouterr().err
    assert cli_main(["bench", "--quick", "--config", "9,9"]) == 2
    assert cli_main(["bench", "--quick", "--only", "jax"]) == 2


def test_naive_seed_transcription_matches_the_library():
    naive = bench.find_naive()
    rng = np.random.default_rng(0)
    for g1 in ("tanh", "sigmoid", "relu", "identity"):
        net = Elman(3, 5, 2, g1=g1, seed=1)
        X, D = data(rng, 9, 2, 3, 2, "squared")
        E, g = net.gradients(X, D)
        E2, g2 = naive.forward_backward(net.params, X, D, g1=g1)
        assert rel_err({k: g[k] for k in g2}, g2) <= 1e-12 and abs(E - E2) <= 1e-12 * E


# ---- the compiled tanh, sigmoid and BLAS call -----------------------------------------------------
def _compiled_tanh_sigmoid(x):
    from bptt.fast import mathfn

    @numba.njit(error_model="numpy")
    def apply(x, t, s, C):
        K = mathfn.scalars(C)
        for i in range(x.shape[0]):
            t[i] = mathfn.tanh(x[i], K)
            s[i] = mathfn.sigmoid(x[i], K)

    t, s = np.empty_like(x), np.empty_like(x)
    apply(x, t, s, mathfn.consts(x.dtype))
    return t, s


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_compiled_tanh_and_sigmoid_match_numpy_to_3_ulp(dtype):
    from bptt.activations import ACTIVATIONS

    rng = np.random.default_rng(0)
    mags = np.logspace(-30, np.log10(700), 400)
    x = np.concatenate([rng.standard_normal(2000) * 3, mags, -mags, [0.0]]).astype(dtype)
    t, s = _compiled_tanh_sigmoid(x)
    x64 = x.astype(np.float64)
    for got, ref in ((t, np.tanh(x64)), (s, ACTIVATIONS["sigmoid"].forward(x64))):
        ok = np.abs(ref) >= np.finfo(dtype).tiny
        ulps = np.abs(got[ok] - ref[ok]) / np.abs(ref[ok]) / np.finfo(dtype).eps
        assert ulps.max() <= 3, float(ulps.max())
        assert got.dtype == dtype
    # saturation, and exact values
    big = np.array([0.0, 25.0, -25.0, 800.0, -800.0, 1e-30], dtype)
    t, s = _compiled_tanh_sigmoid(big)
    assert list(t[:5]) == [0.0, 1.0, -1.0, 1.0, -1.0] and t[5] == dtype(1e-30)
    assert s[0] == 0.5 and s[3] == 1.0 and s[4] == 0.0 and 0 < s[2] < 1e-10 and abs(s[1] + s[2] - 1) <= 1e-6


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_blas_fallback_gemv_matches_numpy(dtype):
    """The compiled loop registered for ?gemv where NumPy's BLAS is not found."""
    import ctypes

    from bptt.fast import blas

    ct = ctypes.c_float if dtype == np.float32 else ctypes.c_double
    i64, vp = ctypes.c_int64, ctypes.c_void_p
    f = ctypes.CFUNCTYPE(None, i64, i64, i64, i64, ct, vp, i64, vp, i64, ct, vp, i64)(blas._fallback(dtype).address)
    rng = np.random.default_rng(0)
    A = rng.standard_normal((5, 6)).astype(dtype)  # (k, n) for x @ A, (n, k) for x @ A^T
    for trans, x, y0, beta in ((blas.TRANS, rng.standard_normal(5), rng.standard_normal(6), 1.0),
                               (blas.NO_TRANS, rng.standard_normal(6), rng.standard_normal(5), 0.0)):
        x, y = x.astype(dtype), y0.astype(dtype)
        want = (x @ A if trans == blas.TRANS else A @ x) + beta * y
        f(blas.ROW_MAJOR, trans, 5, 6, 1.0, A.ctypes.data, 6, x.ctypes.data, 1, beta, y.ctypes.data, 1)
        assert np.allclose(y, want, rtol=1e-5 if dtype == np.float32 else 1e-13)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_microkernel_gemm_matches_numpy_every_block_and_remainder(dtype):
    """The per-step product on packed weights: full row blocks (MR), blocks of 4, 2 and 1 rows, full panels
    and a last partial one (its columns past N masked: nothing written past C), overwriting C or adding to
    it, B packed from any layout."""
    from bptt.fast import microkernel as mk

    @numba.njit
    def run(A, Bp, C, add):
        mk.gemm(A, Bp, C, add)

    rng = np.random.default_rng(3)
    nr = mk.panel_width(dtype)
    tol = 1e-13 if dtype == np.float64 else 2e-6
    for M in (1, 2, 3, 4, 5, mk.MR, mk.MR + 5, 2 * mk.MR + 3):
        for K in (1, 7, 64):
            for N in (1, nr - 1, nr, 2 * nr + 3, 3 * nr):
                A = rng.standard_normal((M, K)).astype(dtype)
                B = rng.standard_normal((N, K)).astype(dtype).T  # a transposed view, as the kernels pack W.T
                Bp = mk.pack(B, np.full(mk.packed_shape(K, N, dtype), np.nan, dtype))
                assert Bp.shape == (-(-N // nr), K, nr) and not np.isnan(Bp).any()  # padding written
                C0 = rng.standard_normal((M, N)).astype(dtype)
                ref = A.astype(np.float64) @ B.astype(np.float64)
                for add in (False, True):
                    room = np.full(M * N + nr, np.nan, dtype)  # C, then room for a write past its end
                    C = room[: M * N].reshape(M, N)
                    C[:] = C0 if add else np.nan  # overwriting: what C held (garbage) must not matter
                    run(A, Bp, C, add)
                    want = ref + C0 if add else ref
                    assert np.max(np.abs(C - want)) <= tol * max(1.0, np.max(np.abs(want))), (M, K, N, add)
                    assert np.isnan(room[M * N :]).all(), (M, K, N)  # the last panel's padding columns masked off
    A = rng.standard_normal((4, 14)).astype(dtype)[:, ::2]  # a strided view: its row stride is not its width
    with pytest.raises(numba.core.errors.TypingError, match="C-contiguous"):
        run(A, mk.pack(B[:7, :3], np.empty(mk.packed_shape(7, 3, dtype), dtype)), np.zeros((4, 3), dtype), False)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_onerow_products_match_numpy_every_block_and_remainder(dtype):
    """The one-row products on W in place: ``dot`` (y = W x) in blocks of V rows and single rows, ``vecmat``
    (y = x W) in blocks of NB vectors of columns; K and N below, at and past the vector width, overwriting
    y or adding to it; nothing written past y (its masked lanes)."""
    from bptt.fast import onerow

    @numba.njit
    def run(W, x, y, add, t):
        if t:
            onerow.vecmat(x, W, y, add)
        else:
            onerow.dot(W, x, y, add)

    rng = np.random.default_rng(4)
    V = onerow.VECTOR_BYTES // np.dtype(dtype).itemsize  # lanes of a vector
    cols = (onerow.NB if dtype == np.float32 else onerow.NB64) * V  # vecmat's block of columns
    tol = 1e-13 if dtype == np.float64 else 2e-6
    for R in (1, 3, V - 1, V, V + 1, 2 * V + 5):
        for C in (1, 5, V, V + 3, cols, cols + 1, 2 * cols + 7):
            W = rng.standard_normal((R, C)).astype(dtype)
            for t, x, n in ((False, rng.standard_normal(C), R), (True, rng.standard_normal(R), C)):
                x = x.astype(dtype)
                ref = (W.astype(np.float64) @ x) if not t else (x @ W.astype(np.float64))
                y0 = rng.standard_normal(n).astype(dtype)
                for add in (False, True):
                    room = np.full(n + 2 * V, np.nan, dtype)
                    if add:  # overwriting: what y held (garbage, NaN here) must not matter
                        room[:n] = y0
                    run(W, x, room[:n], add, t)
                    want = ref + y0 if add else ref
                    assert np.max(np.abs(room[:n] - want)) <= tol * max(1.0, np.max(np.abs(want))), (R, C, t, add)
                    assert np.isnan(room[n:]).all(), (R, C, t)  # nothing written past y
    with pytest.raises(numba.core.errors.TypingError, match="C-contiguous"):
        run(np.ones((4, 6), dtype)[:, ::2], np.ones(3, dtype), np.zeros(4, dtype), False, False)
    with pytest.raises(numba.core.errors.TypingError, match="float32 or all float64"):
        run(np.ones((4, 3), dtype), np.ones(3, np.float32 if dtype == np.float64 else np.float64), np.zeros(4, dtype),
            False, False)


@pytest.mark.parametrize("cls", [Elman, LSTM, GRU])
def test_numba_takes_integer_class_codes_like_the_numpy_loop(cls):
    """X (T, B) integer codes (one-hot inputs as a row lookup): the compiled backend uses the cell's
    own lookup projection and scatter-add weight gradient."""
    rng = np.random.default_rng(5)
    net = cls(6, 5, 6, g2="softmax")
    X = rng.integers(0, 6, (9, 3))
    D = rng.integers(0, 6, (9, 3))
    E, g = net.gradients(X, D, loss="cross_entropy", backend="numpy")
    E2, g2 = net.gradients(X, D, loss="cross_entropy", backend="numba")
    assert abs(E - E2) <= 1e-12 * E and rel_err({k: v for k, v in g.items() if k != "s0"}, g2) <= 1e-12
    E3, g3 = net.gradients(np.eye(6)[X], D, loss="cross_entropy", backend="numba")  # the one-hot form
    assert abs(E - E3) <= 1e-12 * E and rel_err({k: v for k, v in g.items() if k != "s0"}, g3) <= 1e-12


@pytest.mark.parametrize("cls, B, H", [(Elman, 1, 32), (Elman, 32, 128), (Elman, 128, 1024), (LSTM, 1, 256),
                                       (LSTM, 32, 128), (GRU, 1, 1024), (GRU, 64, 512)])
def test_auto_takes_the_compiled_loops_at_every_size_when_blas_is_found(cls, B, H):
    """They measured faster than the NumPy loop at every size (figures in bptt/fast/__init__.py); without
    BLAS only small nets take them (test_auto_without_blas_picks_numba_for_small_nets_only)."""
    assert fast.blas_available()
    assert fast.backend_for(cls(3, H, 2), B) == "numba"
    assert fast.backend_for(cls(3, H, 2, layers=2), B) == "numpy"  # a case the loops do not cover


def test_train_says_which_gradient_loop_runs(tmp_path, capsys):
    from bptt.cli import main
    assert main(["train", "adding", "--length", "5", "--steps", "2", "--hidden", "4", "--batch", "2",
                 "--heldout", "4", "--out", str(tmp_path / "r")]) == 0
    first = capsys.readouterr().err.splitlines()[0]
    assert first.startswith("training elman (H=4) on adding") and "gradients: compiled numba loops, float32" in first
    assert main(["train", "adding", "--length", "5", "--steps", "2", "--hidden", "4", "--batch", "2",
                 "--layers", "2", "--heldout", "4", "--out", str(tmp_path / "r2")]) == 0
    assert "gradients: NumPy loop, float32" in capsys.readouterr().err.splitlines()[0]


def test_kernel_cache_drops_kernels_compiled_from_other_sources(tmp_path):
    """numba's cache checks a kernel's own file only; bptt.fast stamps the whole package's sources."""
    from bptt.fast import kernel_cache

    disp = types.SimpleNamespace(_cache=types.SimpleNamespace(_cache_path=str(tmp_path)))
    for name in ("numba_lstm.forward-21.py311.nbi", "numba_lstm.forward-21.py311.1.nbc", "other.f-1.py311.nbi"):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / kernel_cache.STAMP).write_text("an older hash\n")
    kernel_cache.drop_stale([disp])
    assert sorted(p.name for p in tmp_path.iterdir()) == [kernel_cache.STAMP, "other.f-1.py311.nbi"]
    assert (tmp_path / kernel_cache.STAMP).read_text().strip() == kernel_cache.sources_hash()
    (tmp_path / "numba_gru.backward-49.py311.nbi").write_bytes(b"x")  # compiled from today's sources
    kernel_cache.drop_stale([disp])
    assert (tmp_path / "numba_gru.backward-49.py311.nbi").exists()


@pytest.mark.parametrize("cls,kw", [(Elman, {"g1": "tanh"}), (Elman, {"g1": "relu"}), (LSTM, {}), (GRU, {})])
def test_forward_and_loss_run_the_compiled_loops_like_the_numpy_loop(cls, kw):
    """forward/loss (held-out evaluation, sampling) take the compiled forward loop under 'auto'."""
    rng = np.random.default_rng(case_seed(cls.__name__, *kw.values()))
    net = cls(4, 7, 3, seed=1, **kw)
    X, D = data(rng, 9, 5, 4, 3, "squared")
    s0 = net.initial_state(5)
    s0 = tuple(a + 0.1 for a in s0) if isinstance(s0, tuple) else s0 + 0.1
    ref = net.forward(X, s0=s0, backend="numpy")
    got = net.forward(X, s0=s0)  # auto: compiled
    assert fast.backend_for(net, 5) == "numba"
    parts = lambda s: s if isinstance(s, tuple) else (s,)  # noqa: E731 - (h,) or (h, c)
    for a, b in ((ref.Y, got.Y), (ref.S, got.S), *zip(parts(ref.state), parts(got.state))):
        assert np.max(np.abs(a - b)) <= 1e-12 * np.max(np.abs(a))
    E, E2 = net.loss(X, D, backend="numpy"), net.loss(X, D, backend="numba")
    assert abs(E - E2) <= 1e-12 * E
    Y, E3 = net.forward_loss(X, D)
    assert abs(E3 - E) <= 1e-12 * E and np.max(np.abs(Y - net.forward(X, backend="numpy").Y)) <= 1e-12
    codes = rng.integers(0, 4, (9, 5))  # integer inputs: the lookup projection
    a, b = net.forward(codes, backend="numpy").Y, net.forward(codes, backend="numba").Y
    assert np.max(np.abs(a - b)) <= 1e-12 * np.max(np.abs(a))


def test_forward_backend_errors_and_fallbacks():
    net = LSTM(2, 3, 1)
    X = np.ones((4, 2, 2))
    with pytest.raises(InputError, match="lengths"):
        net.forward(X, lengths=[4, 3], backend="numba")
    with pytest.raises(InputError, match="backend"):
        net.forward(X, backend="fast")
    a = net.forward(X, lengths=[4, 3]).Y  # auto falls back to the NumPy loop, silently
    assert np.array_equal(a, net.forward(X, lengths=[4, 3], backend="numpy").Y)


def two_threads_at_once(nets, X, D, rounds=20):
    """Each net's gradients computed on its own thread, both at once, ``rounds`` times: assert each thread
    gets what its net gets alone."""
    import threading

    alone = [net.gradients(X, D, backend="numba") for net in nets]
    out = [None] * len(nets)

    def work(i):
        for _ in range(rounds):
            out[i] = nets[i].gradients(X, D, backend="numba")

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(nets))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for (E, g), (E2, g2) in zip(alone, out):
        assert E == E2 and all(np.array_equal(g[k], g2[k]) for k in g if k != "s0")


def test_compiled_loops_in_two_threads_at_once_give_each_its_own_result():
    """The kernels release the GIL and the reused scratch arrays are per thread: two threads computing
    gradients of same-shaped nets at once get what each gets alone."""
    X, D = data(np.random.default_rng(11), 30, 4, 3, 2, "squared")
    two_threads_at_once([LSTM(3, 16, 2, seed=s) for s in (1, 2)], X, D)


def test_bench_says_when_openblas_coretype_overrides_the_kernel():
    assert bench.blas_env_note({"env": {}}) is None
    note = bench.blas_env_note({"env": {"OPENBLAS_CORETYPE": "Haswell"}})
    assert "OPENBLAS_CORETYPE=Haswell" in note and "env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE" in note


# ---- one call split over threads (compiled.shards) ------------------------------------------------
@pytest.fixture
def blas_threads(monkeypatch):
    """Pretend OpenBLAS runs on n threads (so the split runs on any machine), and split calls of any size
    (the tests' nets are small); returns the setter."""
    from bptt.fast import blas, compiled

    monkeypatch.setattr(compiled, "SHARD_WORK", 0)

    def set_threads(n):
        monkeypatch.setattr(blas, "library_threads", lambda: n)

    return set_threads


@pytest.fixture
def openblas():
    """OpenBLAS's real thread setting: skips without it; returns (get, put); puts the setting back after."""
    from bptt.fast import blas

    if blas._THREADS is None:
        pytest.skip("no OpenBLAS thread control in this NumPy build")
    get, put = blas._THREADS
    before = get()
    yield get, put
    put(before)


@pytest.mark.parametrize("cls", [Elman, LSTM, GRU])
@pytest.mark.parametrize("threads,B", [(2, 9), (2, 19), (3, 29), (4, 17)])
@pytest.mark.parametrize("g2,loss", [("identity", "squared"), ("softmax", "cross_entropy")])
def test_split_over_threads_matches_the_numpy_loop(cls, threads, B, g2, loss, blas_threads):
    from bptt.fast import compiled

    blas_threads(threads)
    rng = np.random.default_rng(case_seed(cls.__name__, str(threads), str(B), loss))
    T, I, H, O = 9, 4, 12, 5
    net = cls(I, H, O, g2=g2, seed=int(rng.integers(1000)))
    assert compiled.shards(net, B, T) == min(threads, B // compiled.SHARD_ROWS) > 1
    X, D = data(rng, T, B, I, O, loss)
    for at, s0 in [(None, None), ([0, 4, 8], random_state(rng, cls, B, H))]:
        E, g = net.gradients(X, D, loss=loss, at=at, s0=s0, backend="numpy")
        E2, g2_ = net.gradients(X, D, loss=loss, at=at, s0=s0, backend="numba")
        assert rel_err({k: v for k, v in g.items() if k != "s0"}, g2_) <= 1e-12
        assert state_err(g["s0"], g2_["s0"]) <= 1e-12  # every stream's dE/ds0 in its own row
        assert abs(E - E2) <= 1e-12 * abs(E)
        E3, g3 = net.gradients(X, D, loss=loss, at=at, s0=s0, backend="numba")  # the same sum every call
        assert E3 == E2 and all(np.array_equal(g2_[k], g3[k]) for k in g if k != "s0")
        f, f2 = net.forward(X, s0=s0, backend="numpy"), net.forward(X, s0=s0, backend="numba")  # split too
        assert np.max(np.abs(f.Y - f2.Y)) <= 1e-12 and state_err(f.state, f2.state) <= 1e-12


@pytest.mark.parametrize("cls", [Elman, LSTM, GRU])
def test_split_over_threads_takes_integer_class_codes(cls, blas_threads):
    blas_threads(2)
    rng = np.random.default_rng(5)
    net = cls(6, 10, 6, g2="softmax", seed=4)
    X = rng.integers(0, 6, (8, 20))
    D = rng.integers(0, 6, (8, 20))
    E, g = net.gradients(X, D, loss="cross_entropy", backend="numpy")
    E2, g2 = net.gradients(X, D, loss="cross_entropy", backend="numba")
    assert rel_err({k: v for k, v in g.items() if k != "s0"}, g2) <= 1e-12 and abs(E - E2) <= 1e-12 * abs(E)


def test_which_calls_split_over_threads(blas_threads):
    from bptt.fast import compiled

    blas_threads(4)
    assert compiled.shards(LSTM(3, 16, 2), 64, 10) == 4
    assert compiled.shards(GRU(3, 16, 2), 12, 10) == 3  # at least SHARD_ROWS (4) rows a thread
    assert compiled.shards(LSTM(3, 16, 2), 7, 10) == 1
    assert compiled.shards(Elman(3, 16, 2), 64, 10) == 4
    blas_threads(1)  # the user (or bptt.parallel under MPI) set one thread
    assert compiled.shards(LSTM(3, 16, 2), 64, 10) == 1
    blas_threads(2)
    compiled.SHARD_WORK = 8_000_000  # monkeypatched by the fixture: restored after the test
    assert compiled.shards(Elman(3, 32, 2), 64, 10) == 1  # 0.7M multiply-adds a pass: handing over costs more
    assert compiled.shards(LSTM(3, 128, 2), 32, 50) == 2  # the text model: 105M


def test_split_restores_openblas_threads_and_passes_on_a_parts_error(blas_threads, monkeypatch, openblas):
    from bptt.fast import compiled

    get, put = openblas
    put(3)
    blas_threads(2)
    seen = []
    real = compiled._gradients

    def spy(net, X, *a):
        seen.append(get())
        if X.shape[1] != 8:
            raise FloatingPointError("part failed")
        return real(net, X, *a)

    monkeypatch.setattr(compiled, "_gradients", spy)
    X, D = data(np.random.default_rng(0), 3, 17, 2, 1, "squared")
    with pytest.raises(FloatingPointError, match="part failed"):
        LSTM(2, 8, 1).gradients(X, D, backend="numba")
    assert seen == [1, 1] and get() == 3  # one BLAS thread while the parts ran, then the setting back


def test_single_threaded_counts_nested_and_concurrent_callers(openblas):
    import threading

    from bptt.fast import blas

    get, put = openblas
    put(2)
    inside, leave = threading.Event(), threading.Event()

    def other():
        with blas.single_threaded():
            inside.set()
            leave.wait(10)

    t = threading.Thread(target=other)
    with blas.single_threaded():
        t.start()
        assert inside.wait(10) and get() == 1
        assert blas.library_threads() == 2  # the setting put aside: what a split may use
        with blas.single_threaded():
            assert get() == 1
        assert get() == 1
    assert get() == 1  # the other thread is still inside
    leave.set()
    t.join()
    assert get() == 2 and blas.library_threads() == 2


def test_split_calls_from_two_threads_at_once_give_each_its_own_result(blas_threads):
    """Two callers share the pool and the one-thread OpenBLAS setting: each gets what it gets alone."""
    blas_threads(2)
    X, D = data(np.random.default_rng(12), 12, 32, 3, 2, "squared")
    two_threads_at_once([GRU(3, 16, 2, seed=s) for s in (1, 2)], X, D, rounds=10)


def _child_gradients(q):
    """Run in a forked child: the split call after the parent had started the pool's threads."""
    net = LSTM(3, 16, 2, seed=1)
    rng = np.random.default_rng(13)
    X, D = data(rng, 6, 32, 3, 2, "squared")
    q.put(net.gradients(X, D, backend="numba")[0])


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork is POSIX")
def test_split_works_in_a_forked_child(monkeypatch):
    """A child forked after the pool started has none of its threads: the call must not wait for them."""
    import multiprocessing as mp

    from bptt.fast import blas, compiled

    monkeypatch.setattr(blas, "library_threads", lambda: 2)  # both inherited by the forked child
    monkeypatch.setattr(compiled, "SHARD_WORK", 0)
    net = LSTM(3, 16, 2, seed=1)
    X, D = data(np.random.default_rng(13), 6, 32, 3, 2, "squared")
    E = net.gradients(X, D, backend="numba")[0]  # starts the pool here
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    child = ctx.Process(target=_child_gradients, args=(q,))
    child.start()
    child.join(60)
    if child.exitcode is None:  # hung: do not leave it behind
        child.kill()
        child.join()
        pytest.fail("the forked child hung waiting for the parent's pool threads")
    assert child.exitcode == 0
    assert q.get(timeout=5) == E


AVX2_CHILD = """
import llvmlite.binding as llb
real = llb.get_host_cpu_features

def without_avx512():
    f = real()
    for k in list(f.keys()):
        if k.startswith("avx512"):
            f[k] = False
    return f

llb.get_host_cpu_features = without_avx512
import numpy as np
from bptt import GRU, LSTM, Elman
from bptt.fast import compiled, microkernel
assert (microkernel.AVX512, microkernel.VECTOR_BYTES, microkernel.MR) == (False, 32, 4)
compiled.SHARD_WORK = 0
worst = 0.0
for cls in (Elman, LSTM, GRU):
    for B, H in [(1, 40), (3, 7), (19, 16), (9, 100), (32, 33)]:
        net = cls(5, H, 3, seed=1)
        rng = np.random.default_rng(0)
        X, D = rng.standard_normal((7, B, 5)), rng.standard_normal((7, B, 3))
        g1, g2 = net.gradients(X, D, backend="numpy")[1], net.gradients(X, D, backend="numba")[1]
        worst = max([worst] + [float(np.max(np.abs(g1[k] - g2[k])) / np.max(np.abs(g1[k]))) for k in g1 if k != "s0"])
print(worst)
"""


def test_compiled_loops_built_for_a_cpu_without_avx512_match_the_numpy_loop(tmp_path):
    """The kernel's other layout (32-byte vectors, 4-row blocks), compiled for a Haswell (AVX2) target in a
    fresh process with its own numba cache: every cell, one row and several, columns past a panel."""
    env = {**os.environ, "NUMBA_CPU_NAME": "haswell", "NUMBA_CACHE_DIR": str(tmp_path)}
    r = subprocess.run([sys.executable, "-c", AVX2_CHILD], capture_output=True, text=True, env=env, timeout=600,
                       cwd=Path(__file__).parent.parent)
    assert r.returncode == 0, r.stderr[-2000:]
    assert float(r.stdout.split()[-1]) <= 1e-12


def test_train_keeps_openblas_on_one_thread_while_split_steps_run(tmp_path, capsys, monkeypatch, blas_threads,
                                                                 openblas):
    """When each step's gradient call splits its batch, `bptt train` keeps OpenBLAS on one thread for the
    whole loop (its idle workers would spin on the cores the parts need), says "on 2 threads", and puts
    the setting back at the end; a run that does not split leaves OpenBLAS alone. (blas_threads: only its
    SHARD_WORK = 0 here; OpenBLAS's real setting, 2, decides.)"""
    from bptt import network
    from bptt.cli import main

    get, put = openblas
    put(2)
    seen = []
    real = network.Network.gradients

    def spy(self, *a, **k):
        seen.append(get())
        return real(self, *a, **k)

    monkeypatch.setattr(network.Network, "gradients", spy)
    args = ["train", "adding", "--length", "5", "--steps", "3", "--hidden", "4", "--heldout", "4"]
    assert main([*args, "--batch", "16", "--out", str(tmp_path / "r")]) == 0
    assert "gradients: compiled numba loops on 2 threads, float32" in capsys.readouterr().err.splitlines()[0]
    assert seen and set(seen) == {1} and get() == 2
    seen.clear()
    assert main([*args, "--batch", "7", "--out", str(tmp_path / "r2")]) == 0  # 7 streams: one part
    assert "gradients: compiled numba loops, float32" in capsys.readouterr().err.splitlines()[0]
    assert seen and set(seen) == {2} and get() == 2
