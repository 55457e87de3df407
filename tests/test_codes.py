"""Integer class inputs (bptt.codes): X (T, B) ints stand for one-hot vectors of length n_in.

The input projection becomes a row lookup and dW_in a scatter-add; every result must equal the one-hot
path's (float64, 1e-12), PyTorch's autograd on the one-hot input (1e-10) and central differences (1e-6).
"""

from __future__ import annotations

import numpy as np
import pytest
from test_cells import CLASSES, check_fd
from torch_ref import assert_close, torch_reference

from bptt import InputError, codes
from bptt.data.text import TextData, TextTask

T, B, V, H = 7, 3, 5, 4


def setup(cell, layers=1, bidirectional=False, seed=0):
    net = CLASSES[cell](V, H, V, g2="softmax", layers=layers, bidirectional=bidirectional, seed=seed)
    rng = np.random.default_rng(seed + 10)
    C = rng.integers(0, V, (T, B))
    D = rng.integers(0, V, (T, B))
    return net, C, codes.one_hot(C, V, np.float64), D


def rel(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


OPTIONS = [{}, {"at": -1}, {"truncate": 2}, {"lengths": np.array([7, 4, 2])},
           {"resets": np.eye(T, B, k=-2, dtype=bool)}]


# truncation and resets need a causal net (bidirectional ones refuse them, tested elsewhere)
CODE_CASES = [(c, l, bd, o) for c in CLASSES for l, bd in ((1, False), (2, False), (1, True))
              for o in range(len(OPTIONS)) if not (bd and {"truncate", "resets"} & set(OPTIONS[o]))]


@pytest.mark.parametrize("cell,layers,bidirectional,opts", CODE_CASES)
def test_codes_equal_one_hot(cell, layers, bidirectional, opts):
    kw = OPTIONS[opts]
    net, C, X, D = setup(cell, layers, bidirectional, seed=opts)
    E, g = net.gradients(X, D, loss="cross_entropy", **kw)
    E2, g2 = net.gradients(C, D, loss="cross_entropy", **kw)
    assert abs(E - E2) <= 1e-12 * abs(E)
    assert list(g2) == list(g)
    for k in g:
        if k != "s0":
            assert g2[k].shape == g[k].shape and rel(g2[k], g[k]) <= 1e-12, k
    if "truncate" not in kw and "resets" not in kw:
        lk = {k: v for k, v in kw.items() if k in ("at", "lengths")}
        terms, terms2 = net.gradient_terms(X, D, loss="cross_entropy", **lk), \
            net.gradient_terms(C, D, loss="cross_entropy", **lk)
        for k in terms:
            assert rel(terms2[k], terms[k]) <= 1e-12, k
        assert abs(net.loss(C, D, loss="cross_entropy", **lk) - net.loss(X, D, loss="cross_entropy", **lk)) \
            <= 1e-12 * abs(E)
    fwd_kw = {k: v for k, v in kw.items() if k in ("lengths", "resets")}
    f, f2 = net.forward(X, **fwd_kw), net.forward(C, **fwd_kw)
    assert rel(f2.Y, f.Y) <= 1e-12 and rel(f2.S, f.S) <= 1e-12


@pytest.mark.parametrize("cell", CLASSES)
def test_step_and_memory_budget_take_codes(cell):
    net, C, X, D = setup(cell)
    y, s = net.step(X[0])
    y2, s2 = net.step(C[0])
    assert rel(y2, y) <= 1e-12
    _, g = net.gradients(X, D, loss="cross_entropy")
    for M in (1, 3):
        _, g2 = net.gradients(C, D, loss="cross_entropy", max_states=M)
        assert all(rel(g2[k], g[k]) <= 1e-12 for k in g if k != "s0")


@pytest.mark.parametrize("cell", CLASSES)
@pytest.mark.parametrize("layers", [1, 2])
def test_codes_match_torch_and_finite_differences(cell, layers):
    net, C, X, D = setup(cell, layers, seed=3)
    rng = np.random.default_rng(4)
    z = net.initial_state(B)
    s0 = tuple(0.5 * rng.standard_normal(a.shape) for a in z) if isinstance(z, tuple) else \
        0.5 * rng.standard_normal(z.shape)
    E, g = net.gradients(C, D, loss="cross_entropy", s0=s0)
    E_ref, g_ref, _ = torch_reference(net, X, D, loss="cross_entropy", s0=s0)  # torch on the one-hot input
    assert abs(E - E_ref) <= 1e-10 * abs(E_ref)
    assert_close(g, g_ref, 1e-10)
    check_fd(net, C, D, "cross_entropy", None, s0, None, g, seed=5)


def test_weight_grad_is_the_one_hot_product_with_absent_and_repeated_codes():
    rng = np.random.default_rng(0)
    C = np.array([[0, 0, 3], [3, 0, 0]])  # codes 1, 2 and 4 absent, 0 repeated
    dGX = rng.standard_normal((2, 3, 6))
    onehot = codes.one_hot(C, 5, np.float64)
    want = dGX.reshape(6, 6).T @ onehot.reshape(6, 5)
    assert rel(codes.weight_grad(dGX, C, 5), want) <= 1e-15
    assert np.all(codes.weight_grad(dGX, C, 5)[:, [1, 2, 4]] == 0)
    assert rel(codes.weight_terms(dGX, C, 5), np.einsum("tbg,tbi->tgi", dGX, onehot)) <= 1e-15


@pytest.mark.parametrize("bad,match", [
    (np.array([[0, 5]]), "class code 5 out of range"),
    (np.array([[-1, 0]]), "class code -1 out of range"),
    (np.zeros((2, 1, 5), dtype=np.int64), "integer class codes"),
    (np.zeros((2, 1), dtype=bool), "dtype bool"),
])
def test_bad_codes_raise(bad, match):
    net = CLASSES["elman"](V, H, V, g2="softmax")
    with pytest.raises(InputError, match=match):
        net.gradients(bad, np.zeros(bad.shape[:2], np.int64), loss="cross_entropy")


def test_text_task_codes_are_the_one_hot_batch():
    task = TextTask(TextData.from_text("the cat sat on the mat; the dog sat on the log. " * 5), length=9)
    X, D = task.batch(np.random.default_rng(3), 4)
    C, D2 = task.batch_codes(np.random.default_rng(3), 4)
    assert C.shape == (9, 4) and C.dtype.kind == "i"
    np.testing.assert_array_equal(codes.one_hot(C, task.n_in, np.float64), X)
    np.testing.assert_array_equal(D2, D)


def test_numba_backend_takes_codes():
    pytest.importorskip("numba")
    net, C, X, D = setup("elman")
    _, g = net.gradients(X, D, loss="cross_entropy")
    for backend in ("numba", "auto"):
        _, g2 = net.gradients(C, D, loss="cross_entropy", backend=backend)
        assert all(rel(g2[k], g[k]) <= 1e-12 for k in g if k != "s0"), backend
