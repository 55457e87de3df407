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
    # segment of 50 steps (measured: 16x less for Elman, 20x for LSTM, 24x for GRU)
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


# ---- bound="hard": at most M hidden states in all (Gruslys et al. 2016's bound) -----------------------
@pytest.mark.parametrize("cls", [Elman, LSTM, GRU])
@pytest.mark.parametrize("T,M", [(23, 7), (23, 9), (23, 24), (23, 100), (57, 10), (57, 16), (57, 30), (120, 12)])
def test_hard_bound_same_gradients_and_never_more_than_M_states(cls, T, M):
    rng = np.random.default_rng(T + M)
    B, I, H, O = 2, 3, 4, 2
    net = cls(I, H, O, seed=M)
    X, D = rng.standard_normal((T, B, I)), rng.standard_normal((T, B, O))
    s0 = s0_for(net, rng, B)
    E, g = net.gradients(X, D, s0=s0)
    counter = memory.StateCounter()
    E2, g2 = memory.gradients(net, X, D, s0=s0, max_states=M, bound="hard", counter=counter)
    assert list(g2) == list(g)
    assert rel_err(g, g2) <= 1e-12 and abs(E - E2) <= 1e-12 * abs(E)
    d, k, L = memory.hard_plan(T, M)
    assert 0 < counter.peak <= M and counter.peak <= 1 + d * (k - 1) + L and counter.now == 0
    E3, g3 = net.gradients(X, D, s0=s0, max_states=M, bound="hard")  # the public door gives the same
    assert rel_err(g2, g3) == 0.0 and E3 == E2


@pytest.mark.parametrize("cls", [Elman, LSTM, GRU])
def test_hard_bound_with_at_lengths_resets_codes_and_cross_entropy(cls):
    rng = np.random.default_rng(3)
    T, B, V, H = 40, 3, 5, 4
    net = cls(V, H, V, g2="softmax", seed=2)
    C = rng.integers(0, V, (T, B))
    D = rng.integers(0, V, (T, B))
    resets = rng.random((T, B)) < 0.1
    lengths = np.array([40, 23, 9])
    for kw in [{"at": -1}, {"at": [0, 11, 39]}, {"lengths": lengths}, {"resets": resets},
               {"lengths": lengths, "resets": resets, "at": -2}]:
        E, g = net.gradients(C, D, loss="cross_entropy", **kw)
        for M in (9, 13):
            counter = memory.StateCounter()
            E2, g2 = memory.gradients(net, C, D, loss="cross_entropy", max_states=M, bound="hard", counter=counter,
                                      **kw)
            assert rel_err(g, g2) <= 1e-12 and abs(E - E2) <= 1e-12 * abs(E), (kw, M)
            assert counter.peak <= M


@pytest.mark.parametrize("T", [1, 2, 5, 23, 100, 999, 10_000])
@pytest.mark.parametrize("M", [2, 7, 12, 30, 100, 20_000])
def test_hard_plan_fits_or_names_the_smallest_budget(T, M):
    try:
        d, k, L = memory.hard_plan(T, M)
    except InputError as e:
        need = int(str(e).split("expected at least ")[1].split(",")[0])
        assert need > M
        d, k, L = memory.hard_plan(T, need)  # the budget it names does fit
        assert 1 + d * (k - 1) + L <= need
        return
    assert 1 + d * (k - 1) + L <= M and k**d * L >= T
    if T + 1 <= M:
        assert d == 0  # everything fits: no recomputation


def test_hard_bound_holds_less_memory_than_soft():
    # the counter's states are real arrays: with the same M, soft holds M checkpoints + a segment of
    # T/M steps (24 + 34 here), hard at most M = 24 states in all, and tracemalloc sees the difference
    rng = np.random.default_rng(0)
    T, H = 800, 32
    net = LSTM(1, H, 1)
    X, D = rng.standard_normal((T, 1, 1)), rng.standard_normal((T, 1, 1))
    net.gradients(X, D, max_states=24, bound="hard")  # warm up
    soft = peak(lambda: net.gradients(X, D, max_states=24))
    hard = peak(lambda: net.gradients(X, D, max_states=24, bound="hard"))
    full = peak(lambda: net.gradients(X, D, backend="numpy"))  # the loop max_states runs on
    assert hard < soft < full, (hard, soft, full)


@pytest.mark.parametrize("kw,match", [
    ({"max_states": 3, "bound": "strict"}, "bound: got 'strict'"),
    ({"bound": "hard"}, "without max_states"),
    ({"max_states": 3, "bound": "hard"}, "expected at least"),
])
def test_bound_errors(kw, match):
    net = Elman(2, 3, 1)
    X = np.ones((50, 1, 2))
    with pytest.raises(InputError, match=match):
        net.gradients(X, X[..., :1], **kw)
