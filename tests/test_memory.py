"""Memory-budgeted BPTT (max_states): the same gradients as full BPTT, less memory, clear errors."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bptt import GRU, LSTM, Elman, InputError, memory
from bptt.bench import peak_bytes as peak


def rel_err(a, b):
    out = 0.0
    for k in a:
        x, y = (a[k], b[k]) if isinstance(a[k], np.ndarray) else (np.stack(a[k]), np.stack(b[k]))
        out = max(out, float(np.max(np.abs(x - y)) / max(np.max(np.abs(x)), 1e-300)))
    return out


def s0_for(net, rng, B):
    h = rng.standard_normal((B, net.n_hidden))
    return (h, rng.standard_normal((B, net.n_hidden))) if net.cell.n_carry == 2 else h


@pytest.mark.parametrize("cls", [Elman, LSTM, GRU])
@pytest.mark.parametrize("M", [1, 2, 3, 7, 22, 23, 24, 1000])
def test_same_gradients_as_full_bptt(cls, M):
    rng = np.random.default_rng(M)
    T, B, I, H, O = 23, 3, 4, 5, 3
    net = cls(I, H, O, seed=M)
    X, D = rng.standard_normal((T, B, I)), rng.standard_normal((T, B, O))
    s0 = s0_for(net, rng, B)
    E, g = net.gradients(X, D, s0=s0)
    E2, g2 = net.gradients(X, D, s0=s0, max_states=M)
    assert list(g2) == list(g)
    assert rel_err(g, g2) <= 1e-12 and abs(E - E2) <= 1e-12 * abs(E)


@pytest.mark.parametrize("cls", [Elman, LSTM, GRU])
def test_same_gradients_with_at_lengths_resets_and_cross_entropy(cls):
    rng = np.random.default_rng(7)
    T, B, I, H, O = 30, 3, 2, 4, 5
    net = cls(I, H, O, g2="softmax", seed=1)
    X = rng.standard_normal((T, B, I))
    D = rng.integers(0, O, (T, B))
    resets = rng.random((T, B)) < 0.1
    lengths = np.array([30, 17, 9])
    for kw in [{"at": -1}, {"at": [0, 11, 29]}, {"lengths": lengths}, {"resets": resets},
               {"lengths": lengths, "resets": resets, "at": -2}, {"truncate": 30}]:
        E, g = net.gradients(X, D, loss="cross_entropy", **kw)
        for M in (1, 4, 6):
            E2, g2 = net.gradients(X, D, loss="cross_entropy", max_states=M, **kw)
            assert rel_err(g, g2) <= 1e-12, (kw, M)
            assert abs(E - E2) <= 1e-12 * abs(E)


def test_float32_in_float32_out():
    rng = np.random.default_rng(0)
    net = LSTM(2, 3, 2, dtype=np.float32)
    X = rng.standard_normal((9, 2, 2)).astype(np.float32)
    E, g = net.gradients(X, X, max_states=3)
    assert all(np.asarray(v).dtype == np.float32 for v in g.values())
    _, g64 = LSTM(2, 3, 2).gradients(X.astype(np.float64), X.astype(np.float64))
    assert rel_err(g64, g) <= 1e-5


@pytest.mark.parametrize("T,M", [(1, 1), (10, 1), (10, 3), (10, 4), (10, 10), (10, 11), (10_000, 100), (99, 10)])
def test_plan_covers_every_step_within_the_budget(T, M):
    segs = memory.plan(T, M)
    assert len(segs) <= M
    assert segs[0][0] == 0 and segs[-1][1] == T
    assert all(a[1] == b[0] for a, b in zip(segs, segs[1:]))
    assert max(hi - lo for lo, hi in segs) == math.ceil(T / M)


@pytest.mark.parametrize("cls", [Elman, LSTM, GRU])
def test_peak_memory_drops(cls):
    # T = 2000, H = 32: full BPTT keeps T-long arrays and T caches; M = 40 keeps 40 carries and one
    # segment of 50 steps (measured: 14x less for Elman, 19x for LSTM and GRU)
    rng = np.random.default_rng(0)
    T, H = 2000, 32
    net = cls(1, H, 1)
    X, D = rng.standard_normal((T, 1, 1)), rng.standard_normal((T, 1, 1))
    net.gradients(X, D, max_states=40)  # warm up: lazy imports would count as peak memory
    full = peak(lambda: net.gradients(X, D, backend="numpy"))  # the loop max_states runs on
    budget = peak(lambda: net.gradients(X, D, max_states=40))
    assert budget * 10 < full, (full, budget)


@pytest.mark.parametrize("make,kw,match", [
    (lambda: Elman(2, 3, 1, layers=2), {}, "one unidirectional layer"),
    (lambda: GRU(2, 3, 1, bidirectional=True), {}, "one unidirectional layer"),
    (lambda: Elman(2, 3, 1), {"truncate": 2}, "truncate=2"),
    (lambda: Elman(2, 3, 1), {"backend": "numba"}, "backend='numba'"),
    (lambda: Elman(2, 3, 1), {"max_states": 0}, "max_states: got 0"),
    (lambda: Elman(2, 3, 1), {"max_states": 2.5}, "max_states: got 2.5"),
    (lambda: Elman(2, 3, 1), {"max_states": True}, "max_states: got True"),
])
def test_unsupported_combinations_raise(make, kw, match):
    net = make()
    X = np.ones((5, 1, 2))
    kw = {"max_states": 2, **kw}
    with pytest.raises(InputError, match=match):
        net.gradients(X, X[..., :1], **kw)


def test_bad_inputs_are_checked_as_in_full_bptt():
    net = Elman(2, 3, 1)
    with pytest.raises(InputError, match="X"):
        net.gradients(np.ones((5, 1, 3)), np.ones((5, 1, 1)), max_states=2)
    with pytest.raises(InputError, match="at"):
        net.gradients(np.ones((5, 1, 2)), np.ones((5, 1, 1)), at=9, max_states=2)
