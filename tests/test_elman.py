"""Exact and truncated BPTT of the seed's Elman RNN against PyTorch autograd (untied per-step copies)
and central finite differences, in float64, on a seeded sweep of shapes, activations, losses, `at`
forms and truncations."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import bptt
from seed_ref import NAMES, reference, rel_err
from torch_ref import loss_mask  # written independently of bptt.validate.loss_mask

G1 = ("tanh", "sigmoid", "relu", "identity")
G2 = ("identity", "tanh", "sigmoid", "relu", "softmax")


def make_case(seed, g1, g2, loss, at_form, trunc_form):
    rng = np.random.default_rng(seed)
    T, B, H = int(rng.integers(1, 31)), int(rng.integers(1, 5)), int(rng.integers(1, 17))
    I, O = int(rng.integers(1, 5)), int(rng.integers(2, 5))
    net = bptt.Elman(I, H, O, g1=g1, g2=g2, seed=seed)
    X = rng.standard_normal((T, B, I))
    D = rng.integers(0, O, (T, B)) if loss == "cross_entropy" else rng.standard_normal((T, B, O))
    at = {"all": None, "int": int(rng.integers(-T, T)),
          "list": sorted(set(int(a) for a in rng.integers(0, T, max(1, T // 3))))}[at_form]
    k = {"none": None, "1": 1, "2": 2, "k": int(rng.integers(1, T + 1)), ">=T": T + int(rng.integers(0, 3))}[trunc_form]
    s0 = 0.5 * rng.standard_normal((B, H))
    return net, X, D, at, k, s0


def cases():
    out = []
    seed = 0
    at_forms, truncs = ("all", "int", "list"), ("none", "1", "2", "k", ">=T")
    for g1, g2 in itertools.product(G1, G2):  # every activation pair, squared loss
        for j in range(2):
            out.append((seed, g1, g2, "squared", at_forms[(seed + j) % 3], truncs[seed % 5]))
            seed += 1
    for g1 in G1:  # cross-entropy with every g1, every at form, every truncation
        for af, tf in zip(at_forms * 2, truncs + ("none",)):
            out.append((seed, g1, "softmax", "cross_entropy", af, tf))
            seed += 1
    return out


CASES = cases()


def ids(c):
    return f"s{c[0]}-{c[1]}-{c[2]}-{c[3]}-at_{c[4]}-k_{c[5]}"


@pytest.mark.parametrize("case", CASES, ids=ids)
def test_against_torch_untied(case):
    net, X, D, at, k, s0 = make_case(*case)
    loss = case[3]
    T, B, _ = X.shape
    E, g = net.gradients(X, D, loss=loss, at=at, truncate=k, s0=s0, backend="numpy")
    terms = net.gradient_terms(X, D, loss=loss, at=at, truncate=k, s0=s0)
    ref = reference(net.params, X, D, loss_mask(at, T, B, np.full(B, T)), loss=loss,
                    g1=net.cell.g1.name, g2=net.g2.name, truncate=k, s0=s0)
    assert rel_err(E, ref["E"]) <= 1e-12
    for n in NAMES:
        assert rel_err(g[n], ref["grads"][n]) <= 1e-10, n
        assert rel_err(terms[n], ref["terms"][n]) <= 1e-10, n  # row by row: the seed's terms
        np.testing.assert_allclose(terms[n].sum(axis=0), g[n], rtol=0, atol=1e-12 * (1 + np.abs(g[n]).max()))
    assert rel_err(g["s0"], ref["grads"]["s0"]) <= 1e-10
    assert rel_err(terms["dS"], ref["dS"]) <= 1e-10


def numeric_grad(net, X, D, loss, at, s0, eps):
    out = {}
    for name, p in list(net.params.items()) + [("s0", s0)]:
        num = np.zeros_like(p)
        for i in np.ndindex(p.shape):
            old = p[i]
            p[i] = old + eps
            Ep = net.loss(X, D, loss=loss, at=at, s0=s0)
            p[i] = old - eps
            Em = net.loss(X, D, loss=loss, at=at, s0=s0)
            p[i] = old
            num[i] = (Ep - Em) / (2 * eps)
        out[name] = num
    return out


FULL = [c for c in CASES if c[5] in ("none", ">=T")]


# Blocks whose gradient has vanished below what central differences can resolve at ANY step size: the
# loss is computed to relative precision u = 2.2e-16, so a difference carries a rounding error of about
# u*|E|/h, and these gradients (dE/ds0 through 24 and 28 steps of sigmoid: 4.5e-13 and 3.8e-20) sit at or
# below it. They are not checked by finite differences; test_against_torch_untied checks them at 1e-10.
# 2 of the 168 blocks of the sweep; test_fd_unresolvable_blocks_are_exactly_these keeps the list exact.
FD_UNRESOLVABLE = {("s10-sigmoid-identity-squared-at_int-k_none", "s0"),
                   ("s15-sigmoid-sigmoid-squared-at_int-k_none", "s0")}


@pytest.mark.parametrize("case", FULL, ids=ids)
def test_against_finite_differences(case):
    net, X, D, at, k, s0 = make_case(*case)
    E, g = net.gradients(X, D, loss=case[3], at=at, truncate=k, s0=s0, backend="numpy")
    num = numeric_grad(net, X, D, case[3], at, s0, eps=FD_EPS)
    for name, val in num.items():
        checked = assert_fd_close(g[name], val, E, name,
                                  refine=lambda h: numeric_grad_block(net, X, D, case[3], at, s0, name, h))
        assert checked == ((ids(case), name) not in FD_UNRESOLVABLE), (ids(case), name)


FD_EPS = 6e-6  # ~ u**(1/3): balances the O(eps^2) truncation error against the rounding error
FD_WIDE = 1e-2  # the wider step of the Richardson-extrapolated differences for small gradients


def numeric_grad_block(net, X, D, loss, at, s0, name, h):
    """Richardson-extrapolated central differences (error O(h^4)) of one block: (4 D(h/2) - D(h)) / 3."""
    p = s0 if name == "s0" else net.params[name]
    out = np.zeros_like(p)
    for i in np.ndindex(p.shape):
        old, diffs = p[i], []
        for step in (h, h / 2):
            p[i] = old + step
            Ep = net.loss(X, D, loss=loss, at=at, s0=s0)
            p[i] = old - step
            Em = net.loss(X, D, loss=loss, at=at, s0=s0)
            p[i] = old
            diffs.append((Ep - Em) / (2 * step))
        out[i] = (4 * diffs[1] - diffs[0]) / 3
    return out


def fd_floor(E, h, size):
    """Norm of the rounding error of central differences with step h over a block of `size` entries."""
    return 2.2e-16 * max(abs(E), 1.0) / h * np.sqrt(size)


def assert_fd_close(ours, num, E, name, refine):
    """Norm-wise relative error <= 1e-6 against central differences; returns False for a block that no step
    size resolves (then nothing is asserted here: the caller lists such blocks explicitly).

    With the step FD_EPS a gradient must be 1e6 times the rounding floor to be checked to 1e-6. A smaller one
    (a gradient that vanished through many steps, typically dE/ds0) is differenced again with the wider step
    FD_WIDE and Richardson extrapolation, whose floor is FD_WIDE/FD_EPS = 1700 times lower, and checked to the
    same 1e-6. Only if it is still below 1e6 times that floor does the block count as unresolvable.
    """
    if max(np.linalg.norm(ours), np.linalg.norm(num)) >= 1e6 * fd_floor(E, FD_EPS, num.size):
        assert rel_err(ours, num) <= 1e-6, (name, rel_err(ours, num))
        return True
    wide = refine(FD_WIDE)
    if max(np.linalg.norm(ours), np.linalg.norm(wide)) >= 1e6 * fd_floor(E, FD_WIDE, wide.size):
        assert rel_err(ours, wide) <= 1e-6, (name, "Richardson", rel_err(ours, wide))
        return True
    return False


def test_fd_unresolvable_blocks_are_exactly_these():
    """The blocks left to PyTorch are the listed ones and they are truly tiny (< 1e-12), not mistakes."""
    by_id = {ids(c): c for c in FULL}
    for cid, name in FD_UNRESOLVABLE:
        net, X, D, at, k, s0 = make_case(*by_id[cid])
        E, g = net.gradients(X, D, loss=by_id[cid][3], at=at, truncate=k, s0=s0)
        assert np.linalg.norm(g[name]) < 1e-12 and np.linalg.norm(g[name]) < 1e6 * fd_floor(E, FD_WIDE, g[name].size)


def test_truncate_at_least_T_is_full_bptt_bitwise():
    rng = np.random.default_rng(3)
    net = bptt.Elman(3, 8, 2, seed=3)
    X, D = rng.standard_normal((12, 3, 3)), rng.standard_normal((12, 3, 2))
    _, full = net.gradients(X, D, backend="numpy")
    for k in (12, 13, 100):
        _, tr = net.gradients(X, D, truncate=k, backend="numpy")
        for n in full:
            assert np.array_equal(full[n], tr[n]), (k, n)


def test_truncate_one_is_the_current_step_term():
    """truncate=1: dE/dWs = sum_t (dE_t/dS_t * g1'(z_t))^T S_{t-1}, written out by hand."""
    rng = np.random.default_rng(4)
    net = bptt.Elman(2, 5, 3, g1="tanh", seed=4)
    X, D = rng.standard_normal((7, 2, 2)), rng.standard_normal((7, 2, 3))
    _, g = net.gradients(X, D, truncate=1, backend="numpy")
    p = net.params
    S = net.forward(X, backend="numpy").S  # the loop the gradients above ran
    Sprev = np.concatenate([np.zeros((1, 2, 5)), S[:-1]])
    dY = 2 * (S @ p["Wy"].T + p["by"] - D) / 2  # identity g2, B = 2
    dz = (dY @ p["Wy"]) * (1 - S**2)
    np.testing.assert_allclose(g["Ws"], np.einsum("tbh,tbk->hk", dz, Sprev), rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(g["Wx"], np.einsum("tbh,tbi->hi", dz, X), rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(g["bs"], dz.sum(axis=(0, 1)), rtol=1e-13, atol=1e-14)
    np.testing.assert_array_equal(g["s0"], np.zeros((2, 5)) + (dz[0] @ p["Ws"]))  # only E_0 reaches s0


@pytest.mark.parametrize("a", [0.5, 0.9, 1.1])
def test_linear_rnn_decay_is_exactly_a_power(a):
    """g1 = identity, Ws = a I, one loss term at N: dE/dS_i = a^(N-i) dE/dS_N."""
    rng = np.random.default_rng(5)
    net = bptt.Elman(2, 6, 1, g1="identity", seed=5)
    net.params["Ws"] = a * np.eye(6)
    X, D = rng.standard_normal((20, 3, 2)), rng.standard_normal((20, 3, 1))
    dS = net.gradient_terms(X, D, at=-1)["dS"]
    N = 19
    for i in range(20):
        np.testing.assert_allclose(np.linalg.norm(dS[i]), a ** (N - i) * np.linalg.norm(dS[N]), rtol=1e-12)


def test_gradient_terms_vanish_after_the_loss_step():
    rng = np.random.default_rng(6)
    net = bptt.Elman(1, 4, 1, seed=6)
    X, D = rng.standard_normal((10, 2, 1)), rng.standard_normal((10, 2, 1))
    t = net.gradient_terms(X, D, at=5)
    assert np.all(t["dS"][6:] == 0) and np.all(t["Ws"][6:] == 0) and np.all(t["Wy"][:5] == 0)
    assert np.all(np.abs(t["dS"][:6]).sum(axis=(1, 2)) > 0)


def test_float32_net_stays_float32():
    rng = np.random.default_rng(7)
    net = bptt.Elman(2, 4, 2, dtype=np.float32)
    X, D = rng.standard_normal((5, 2, 2)).astype(np.float32), rng.standard_normal((5, 2, 2)).astype(np.float32)
    E, g = net.gradients(X, D, backend="numpy")
    assert all(v.dtype == np.float32 for v in g.values())
    assert net.forward(X).Y.dtype == np.float32


F32_RTOL = 2e-6  # float32 unit roundoff is 6e-8; over these 20 steps the worst block measured 5.2e-7 (of 18 cases)


@pytest.mark.parametrize("cell", ["Elman", "LSTM", "GRU"])
@pytest.mark.parametrize("loss", ["squared", "cross_entropy"])
def test_float32_gradient_values_match_float64(cell, loss):
    """A float32 net's gradients equal those of the float64 net of the same seed (weights and data widened
    exactly) to float32 precision: every block at norm-wise relative error <= F32_RTOL."""
    seed = 3 if loss == "squared" else 4
    rng = np.random.default_rng(seed)
    T, B, I, H, O = 20, 3, 4, 8, 3
    g2 = "identity" if loss == "squared" else "softmax"
    n32 = getattr(bptt, cell)(I, H, O, g2=g2, seed=seed, dtype=np.float32)
    n64 = getattr(bptt, cell)(I, H, O, g2=g2, seed=seed)
    assert all(np.array_equal(n32.params[k], n64.params[k].astype(np.float32)) for k in n64.params)
    n64.params = {k: v.astype(np.float64) for k, v in n32.params.items()}  # the same weights, exactly
    X = rng.standard_normal((T, B, I)).astype(np.float32)
    D = rng.standard_normal((T, B, O)).astype(np.float32) if loss == "squared" else rng.integers(0, O, (T, B))
    E32, g32 = n32.gradients(X, D, loss=loss)
    E64, g64 = n64.gradients(X.astype(np.float64), D.astype(np.float64) if loss == "squared" else D, loss=loss)
    assert abs(E32 - E64) <= F32_RTOL * abs(E64)
    for k in n64.params:
        assert g32[k].dtype == np.float32
        assert rel_err(g32[k], g64[k]) <= F32_RTOL, k


def test_lengths_padding_equals_each_sequence_alone():
    rng = np.random.default_rng(8)
    net = bptt.Elman(2, 5, 2, seed=8)
    T, lens = 9, np.array([9, 4, 6])
    X, D = rng.standard_normal((T, 3, 2)), rng.standard_normal((T, 3, 2))
    for at in (None, -1):
        _, g = net.gradients(X, D, at=at, lengths=lens, backend="numpy")
        acc = {n: 0 for n in net.params}
        for b, L in enumerate(lens):
            _, gb = net.gradients(X[:L, b : b + 1], D[:L, b : b + 1], at=at, backend="numpy")
            for n in acc:
                acc[n] = acc[n] + gb[n] / 3
        for n in acc:
            assert rel_err(g[n], acc[n]) <= 1e-13, (at, n)


def test_resets_cut_one_stream_only():
    """A stream reset at step r behaves as a fresh sequence from r; the other streams are untouched."""
    rng = np.random.default_rng(9)
    net = bptt.Elman(2, 4, 1, seed=9)
    X, D = rng.standard_normal((8, 2, 2)), rng.standard_normal((8, 2, 1))
    R = np.zeros((8, 2), bool)
    R[5, 0] = True
    Y = net.forward(X, resets=R).Y
    np.testing.assert_allclose(Y[:, 1], net.forward(X[:, 1:]).Y[:, 0], rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(Y[5:, 0], net.forward(X[5:, :1]).Y[:, 0], rtol=1e-14)
    _, g = net.gradients(X, D, resets=R, backend="numpy")
    _, g1 = net.gradients(X[:5, :1], D[:5, :1], backend="numpy")
    _, g2 = net.gradients(X[5:, :1], D[5:, :1], backend="numpy")
    _, g3 = net.gradients(X[:, 1:], D[:, 1:], backend="numpy")
    for n in net.params:
        assert rel_err(g[n], (g1[n] + g2[n] + g3[n]) / 2) <= 1e-13, n
