"""Elman, LSTM and GRU on the one time loop: PyTorch (float64) and central finite differences as oracles.

Matrix: cell x layers {1, 2} x bidirectional x loss x at {None, int, list} x truncate {None, 1, 2, T}.
Forward outputs, E and every gradient (s0 included) equal PyTorch's at norm-wise rel. err. <= 1e-10;
where the gradient is the exact one (no binding truncation) central differences agree at <= 1e-6.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch
from torch import nn
from torch_ref import assert_close, rel_errors, torch_reference

import bptt
from bptt import InputError, cells

T, B, I, H, O = 6, 3, 3, 4, 3
CLASSES = {"elman": bptt.Elman, "lstm": bptt.LSTM, "gru": bptt.GRU}
TORCH_RTOL, FD_RTOL, FD_EPS = 1e-10, 1e-6, 1e-5


def build(cell, layers=1, bidirectional=False, loss="squared", seed=0, **kw):
    g2 = "softmax" if loss == "cross_entropy" else "identity"
    return CLASSES[cell](I, H, O, g2=g2, layers=layers, bidirectional=bidirectional, seed=seed, **kw)


def data(net, loss, seed, T=T, B=B):
    """Random X, targets D and a random initial state s0 (a (h0, c0) pair for LSTM)."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((T, B, net.n_in))
    D = rng.standard_normal((T, B, net.n_out)) if loss == "squared" else rng.integers(0, net.n_out, (T, B))
    z = net.initial_state(B)
    s0 = tuple(0.5 * rng.standard_normal(a.shape) for a in z) if isinstance(z, tuple) else \
        0.5 * rng.standard_normal(z.shape)
    return X, D, s0


def fd_errors(net, X, D, loss, at, s0, lengths, g, seed, k=6, eps=FD_EPS):
    """Central differences of net.loss on k random entries of every parameter and of s0, against g.
    eps = 1e-5 balances the eps^2 truncation error against the E * 1e-16 / eps rounding error."""
    rng = np.random.default_rng(seed)
    targets = [(n, a, g[n]) for n, a in net.params.items()]
    if isinstance(s0, tuple):
        targets += [(f"s0[{i}]", a, g.s0[i]) for i, a in enumerate(s0)]
    else:
        targets.append(("s0", s0, g.s0))
    errs = {}
    for name, a, ga in targets:
        flat = a.reshape(-1)
        assert np.shares_memory(flat, a)
        idx = rng.choice(a.size, min(k, a.size), replace=False)
        fd = np.empty(len(idx))
        for n, j in enumerate(idx):
            old = flat[j]
            flat[j] = old + eps
            ep = net.loss(X, D, loss, at, s0, lengths)
            flat[j] = old - eps
            em = net.loss(X, D, loss, at, s0, lengths)
            flat[j] = old
            fd[n] = (ep - em) / (2 * eps)
        errs[name] = rel_errors({"x": ga.reshape(-1)[idx]}, {"x": fd})["x"]
    return errs


def check_fd(net, X, D, loss, at, s0, lengths, g, seed):
    errs = fd_errors(net, X, D, loss, at, s0, lengths, g, seed)
    worst = max(errs, key=errs.get)
    assert errs[worst] <= FD_RTOL, f"FD worst {worst}: {errs[worst]:.3e}; all {errs}"


CASES = [(c, l, bd, loss, at, tr) for c in CLASSES for l in (1, 2) for bd in (False, True)
         for loss in ("squared", "cross_entropy") for at in (None, 2, [1, -1])
         for tr in ((None,) if bd else (None, 1, 2, T))]


@pytest.mark.parametrize("cell,layers,bidirectional,loss,at,truncate", CASES)
def test_matches_torch_and_fd(cell, layers, bidirectional, loss, at, truncate):
    seed = len(cell) * 100 + layers * 10 + bidirectional
    net = build(cell, layers, bidirectional, loss, seed)
    X, D, s0 = data(net, loss, seed + 1)
    E, g = net.gradients(X, D, loss, at, truncate, s0, backend="numpy")
    Er, gr, Yr = torch_reference(net, X, D, loss, at, truncate, s0)
    assert_close({"E": E, "Y": net.forward(X, s0).Y, **g}, {"E": Er, "Y": Yr, **gr}, TORCH_RTOL)
    if truncate is None or truncate >= T:  # the exact gradient: finite differences apply
        check_fd(net, X, D, loss, at, s0, None, g, seed + 2)


@pytest.mark.parametrize("cell", CLASSES)
@pytest.mark.parametrize("truncate", [1, 2, T])
def test_bidirectional_truncation_raises(cell, truncate):
    net = build(cell, 1, True)
    X, D, s0 = data(net, "squared", 0)
    with pytest.raises(InputError, match="truncate"):
        net.gradients(X, D, truncate=truncate, backend="numpy")


@pytest.mark.parametrize("g1", ["tanh", "relu"])
@pytest.mark.parametrize("truncate", [None, 2])
def test_elman_g1_matches_torch_rnn_nonlinearity(g1, truncate):
    net = bptt.Elman(I, H, O, g1=g1, layers=2, seed=3)
    X, D, s0 = data(net, "squared", 4)
    E, g = net.gradients(X, D, truncate=truncate, s0=s0, backend="numpy")
    Er, gr, Yr = torch_reference(net, X, D, truncate=truncate, s0=s0)
    assert_close({"E": E, "Y": net.forward(X, s0).Y, **g}, {"E": Er, "Y": Yr, **gr}, TORCH_RTOL)


LENGTHS = np.array([T, 3, 1])
LEN_CASES = [(c, l, bd, at, tr) for c in CLASSES for l in (1, 2) for bd in (False, True) for at in (None, -1)
             for tr in ((None,) if bd else (None, 2))]


@pytest.mark.parametrize("cell,layers,bidirectional,at,truncate", LEN_CASES)
def test_lengths_match_torch_packed(cell, layers, bidirectional, at, truncate):
    net = build(cell, layers, bidirectional, "cross_entropy", seed=7)
    X, D, s0 = data(net, "cross_entropy", 8)
    E, g = net.gradients(X, D, "cross_entropy", at, truncate, s0, LENGTHS, backend="numpy")
    Er, gr, Yr = torch_reference(net, X, D, "cross_entropy", at, truncate, s0, LENGTHS)
    valid = (np.arange(T)[:, None] < LENGTHS[None, :])[:, :, None]  # Y past a length means nothing
    Y = net.forward(X, s0, LENGTHS).Y
    assert_close({"E": E, "Y": Y * valid, **g}, {"E": Er, "Y": Yr * valid, **gr}, TORCH_RTOL)
    if truncate is None:
        check_fd(net, X, D, "cross_entropy", at, s0, LENGTHS, g, 9)


def _stream(s, b):
    """Stream b of a state in the user-facing form ((B,H) or (L*D,B,H), or a pair of those), B kept."""
    if isinstance(s, tuple):
        return tuple(_stream(a, b) for a in s)
    return s[b : b + 1] if s.ndim == 2 else s[:, b : b + 1]


def _cat(parts):
    if isinstance(parts[0], tuple):
        return tuple(_cat([p[k] for p in parts]) for k in range(len(parts[0])))
    return np.concatenate(parts, axis=-2)


@pytest.mark.parametrize("cell,layers,bidirectional,at,truncate", LEN_CASES)
def test_padded_batch_equals_sequences_alone(cell, layers, bidirectional, at, truncate):
    net = build(cell, layers, bidirectional, "squared", seed=11)
    X, D, s0 = data(net, "squared", 12)
    E, g = net.gradients(X, D, "squared", at, truncate, s0, LENGTHS, backend="numpy")
    fw = net.forward(X, s0, LENGTHS)
    alone = []
    for b, L in enumerate(LENGTHS):
        Eb, gb = net.gradients(X[:L, b : b + 1], D[:L, b : b + 1], "squared", at, truncate, _stream(s0, b),
                               backend="numpy")
        fb = net.forward(X[:L, b : b + 1], _stream(s0, b))
        assert_close({"Y": fw.Y[:L, b : b + 1], "state": _stream(fw.state, b)}, {"Y": fb.Y, "state": fb.state}, 1e-12)
        alone.append((Eb, gb))
    # the loss is averaged over the B streams: padded-batch gradients = mean of the per-sequence ones
    mean = {n: sum(gb[n] for _, gb in alone) / len(LENGTHS) for n in net.params}
    mean["E"] = sum(Eb for Eb, _ in alone) / len(LENGTHS)
    s0_alone = _cat([gb.s0 for _, gb in alone])
    mean["s0"] = tuple(a / len(LENGTHS) for a in s0_alone) if isinstance(s0_alone, tuple) else s0_alone / len(LENGTHS)
    assert_close({"E": E, **g}, mean, 1e-12)


@pytest.mark.parametrize("cell", CLASSES)
@pytest.mark.parametrize("truncate", [None, 2])
def test_resets_match_torch_step_loop(cell, truncate):
    net = build(cell, 2, False, "squared", seed=13)
    X, D, s0 = data(net, "squared", 14)
    resets = np.zeros((T, B), bool)
    resets[[0, 3, 4], [1, 0, 2]] = True
    E, g = net.gradients(X, D, truncate=truncate, s0=s0, resets=resets, backend="numpy")
    Er, gr, Yr = torch_reference(net, X, D, truncate=truncate, s0=s0, resets=resets)
    assert_close({"E": E, "Y": net.forward(X, s0, resets=resets).Y, **g}, {"E": Er, "Y": Yr, **gr}, TORCH_RTOL)


# ---- the cells alone -------------------------------------------------------------------------------
@pytest.mark.parametrize("name,opts", [("elman", {"g1": "tanh"}), ("lstm", {}), ("gru", {})])
def test_jacobian_and_step_back_vs_finite_differences(name, opts):
    cell = cells.make(name, **opts)
    rng = np.random.default_rng(21)
    p = cell.init(rng, I, H, "uniform", np.float64)
    gx = rng.standard_normal((B, cell.gates * H))
    carry = tuple(rng.standard_normal((B, H)) for _ in range(cell.n_carry))
    new, cache = cell.step(p, gx, carry)
    J = cell.jacobian(p, cache, carry)
    n = cell.n_carry * H
    assert J.shape == (B, n, n)
    flat = np.concatenate(carry, axis=1)  # (B, n): [h; c]
    eps = 1e-6
    Jfd = np.empty_like(J)
    for j in range(n):
        e = np.zeros(n)
        e[j] = eps
        up = np.concatenate(cell.step(p, gx, tuple(np.split(flat + e, cell.n_carry, axis=1)))[0], axis=1)
        dn = np.concatenate(cell.step(p, gx, tuple(np.split(flat - e, cell.n_carry, axis=1)))[0], axis=1)
        Jfd[:, :, j] = (up - dn) / (2 * eps)
    assert_close({"J": J}, {"J": Jfd}, FD_RTOL)
    # step_back's carry gradient is the transposed Jacobian applied to dcarry
    dcarry = tuple(rng.standard_normal((B, H)) for _ in range(cell.n_carry))
    _, _, dprev = cell.step_back(p, cache, carry, dcarry)
    want = np.einsum("bij,bi->bj", J, np.concatenate(dcarry, axis=1))
    assert_close({"dprev": np.concatenate(dprev, axis=1)}, {"dprev": want}, 1e-12)


def test_gru_input_and_recurrent_gradients_differ_only_in_n_block():
    cell = cells.make("gru")
    rng = np.random.default_rng(5)
    p = cell.init(rng, I, H, "uniform", np.float64)
    carry = (rng.standard_normal((B, H)),)
    _, cache = cell.step(p, rng.standard_normal((B, 3 * H)), carry)
    dgx, dgh, _ = cell.step_back(p, cache, carry, (rng.standard_normal((B, H)),))
    np.testing.assert_array_equal(dgx[:, : 2 * H], dgh[:, : 2 * H])
    np.testing.assert_allclose(dgh[:, 2 * H :], dgx[:, 2 * H :] * cache.r, rtol=1e-15)


def test_lstm_forget_bias_goes_to_f_block_of_b_ih():
    a, b = bptt.LSTM(I, H, O, seed=2), bptt.LSTM(I, H, O, seed=2, forget_bias=1.0)
    assert b.config()["forget_bias"] == 1.0 and a.config()["forget_bias"] == 0.0
    shift = b.params["b_ih"] - a.params["b_ih"]
    np.testing.assert_allclose(shift[H : 2 * H], 1.0, rtol=0, atol=1e-15)
    np.testing.assert_array_equal(np.delete(shift, np.s_[H : 2 * H]), 0.0)
    for n in a.params:
        if n != "b_ih":
            np.testing.assert_array_equal(a.params[n], b.params[n])
    with pytest.raises(InputError, match="forget_bias"):
        bptt.LSTM(I, H, O, forget_bias="one")


def test_lstm_s0_must_be_a_pair():
    net = build("lstm")
    X, D, s0 = data(net, "squared", 0)
    with pytest.raises(InputError, match="s0"):
        net.gradients(X, D, s0=s0[0], backend="numpy")
    E, g = net.gradients(X, D, s0=s0, backend="numpy")
    assert isinstance(g.s0, tuple) and [a.shape for a in g.s0] == [(B, H), (B, H)]


# ---- PyTorch interchange ---------------------------------------------------------------------------
@pytest.mark.parametrize("cell", CLASSES)
@pytest.mark.parametrize("layers,bidirectional", [(1, False), (1, True), (2, False), (2, True)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_round_trip_is_exact(cell, layers, bidirectional, dtype):
    net = CLASSES[cell](I, H, O, g2="tanh", layers=layers, bidirectional=bidirectional, seed=4, dtype=dtype)
    rnn, lin = net.to_torch()
    assert rnn.weight_ih_l0.dtype == (torch.float32 if dtype == np.float32 else torch.float64)
    back = bptt.from_torch(rnn, lin, g2="tanh")
    assert type(back) is type(net) and back.config() == net.config()
    assert set(back.params) == set(net.params)
    for n, a in net.params.items():
        assert back.params[n].dtype == a.dtype and np.array_equal(back.params[n], a), n


@pytest.mark.parametrize("make_module", [
    lambda: nn.RNN(I, H, num_layers=2, nonlinearity="relu", bidirectional=True),
    lambda: nn.RNN(I, H, nonlinearity="tanh", bias=False),
    lambda: nn.LSTM(I, H, num_layers=2, bidirectional=True),
    lambda: nn.GRU(I, H, num_layers=2),
])
def test_from_torch_module_runs_like_torch(make_module):
    torch.manual_seed(0)
    rnn = make_module().double()
    D_ = 2 if rnn.bidirectional else 1
    lin = nn.Linear(D_ * H, O).double()
    net = bptt.from_torch(rnn, lin, g2="sigmoid")
    X = np.random.default_rng(1).standard_normal((T, B, I))
    out, _ = rnn(torch.from_numpy(X))
    Y = torch.sigmoid(lin(out)).detach().numpy()
    assert_close({"Y": net.forward(X).Y}, {"Y": Y}, 1e-13)
    # and back: LSTM/GRU weights bit for bit; Elman's two biases come back summed into bias_ih
    rnn2, lin2 = bptt.to_torch(net)
    for name, p in rnn.named_parameters():
        q = getattr(rnn2, name)
        if isinstance(rnn, nn.RNN) and name.startswith("bias_hh"):
            assert torch.count_nonzero(q) == 0
        elif isinstance(rnn, nn.RNN) and name.startswith("bias_ih"):
            assert torch.equal(q, p + getattr(rnn, name.replace("bias_ih", "bias_hh")))
        else:
            assert torch.equal(q, p), name
    if not isinstance(rnn, nn.RNN) or rnn.bias:
        assert torch.equal(lin2.weight, lin.weight) and torch.equal(lin2.bias, lin.bias)


def test_from_torch_without_linear_is_identity_head():
    rnn = nn.GRU(I, H, bidirectional=True, dtype=torch.float32)
    net = bptt.from_torch(rnn)
    assert net.dtype == np.float32 and net.n_out == 2 * H
    X = np.random.default_rng(2).standard_normal((T, B, I)).astype(np.float32)
    fw = net.forward(X)
    np.testing.assert_array_equal(fw.Y, fw.S)
    out, _ = rnn(torch.from_numpy(X))
    assert_close({"S": fw.S}, {"S": out.detach().numpy()}, 1e-5)  # float32


def test_interchange_errors():
    with pytest.raises(InputError, match="rnn_module"):
        bptt.from_torch(nn.Linear(3, 4))
    with pytest.raises(InputError, match="proj_size"):
        bptt.from_torch(nn.LSTM(I, H, proj_size=2))
    with pytest.raises(InputError, match="in_features"):
        bptt.from_torch(nn.LSTM(I, H, bidirectional=True), nn.Linear(H, O))
    with pytest.raises(InputError, match="dtype"):
        bptt.from_torch(nn.GRU(I, H).half())
    with pytest.raises(InputError, match="g1"):
        bptt.Elman(I, H, O, g1="sigmoid").to_torch()


def test_missing_torch_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # makes `import torch` raise ImportError
    with pytest.raises(InputError, match=r"pip install torch"):
        build("lstm").to_torch()
    with pytest.raises(InputError, match=r"pip install torch"):
        bptt.from_torch(object())
