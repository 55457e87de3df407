"""The gradient lab (bptt.diagnostics, bptt diagnose): exact geometric decay of a linear RNN, Jacobian
products against explicit Jacobians built by hand, Pascanu et al.'s Omega and its gradient against
central finite differences and PyTorch autograd (float64), and the CLI."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest
import torch

import bptt
from bptt import cli, diagnostics as dg
from bptt.errors import InputError


def linear_net(a, H=4, I=2, O=3, seed=0):
    """g1 = identity, Ws = a I: dS_N/dS_i = a^(N-i) I exactly."""
    net = bptt.Elman(I, H, O, g1="identity", seed=seed)
    p = dict(net.params)
    p["Ws"] = a * np.eye(H)
    return net.set_params(p)


def data(T, B, I, O, seed=1):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((T, B, I)), rng.standard_normal((T, B, O))


# ---- the linear RNN: every number known in closed form ----------------------------------------------
@pytest.mark.parametrize("a,f,T", [(0.8, 1e-2, 40), (0.5, 1e-3, 30), (0.93, 0.05, 60), (0.8, 1e-2, 25)])
def test_linear_rnn_decay_half_life_memory(a, f, T):
    net = linear_net(a)
    X, D = data(T, 3, 2, 3)
    prof = dg.gradient_by_lag(net, X, D, at=-1, fraction=f)
    assert prof.at == T - 1
    np.testing.assert_array_equal(prof.lags, np.arange(T))
    # ||dE/dS_{N-k}|| = a^k ||dE/dS_N|| exactly, so the log-linear fit is exact over all T lags
    np.testing.assert_allclose(prof.grad_norm, prof.grad_norm[0] * a ** np.arange(T), rtol=1e-12)
    assert prof.fit_lags == (0, T - 1) and prof.fit_points == T
    assert abs(prof.decay_rate - a) <= 1e-9
    assert abs(prof.half_life - math.log(0.5) / math.log(a)) <= 1e-9
    want = math.log(f) / math.log(a)
    assert prof.effective_memory == math.floor(want)
    assert abs(prof.effective_memory_interp - want) <= 1e-9
    assert not prof.censored
    np.testing.assert_allclose(prof.fitted(), prof.grad_norm, rtol=1e-9)
    # and the Jacobian products are a^k I: spectral norm a^k
    np.testing.assert_allclose(dg.jacobian_products(net, X), a ** np.arange(T), rtol=1e-12)


def test_linear_rnn_memory_censored_when_sequence_too_short():
    net = linear_net(0.9)
    X, D = data(10, 2, 2, 3)  # ln(0.01)/ln(0.9) = 43.7 > 9
    prof = dg.gradient_by_lag(net, X, D, at=-1)
    assert prof.censored and prof.effective_memory == 9 and prof.effective_memory_interp == 9.0
    assert abs(prof.decay_rate - 0.9) <= 1e-9


def test_profile_matches_gradient_terms_and_is_per_stream():
    net = bptt.Elman(2, 5, 2, g1="tanh", seed=3)
    X, D = data(9, 4, 2, 2, seed=4)
    prof = dg.gradient_by_lag(net, X, D, at=6)
    g = net.gradient_terms(X, D, at=6)
    assert prof.at == 6 and len(prof.lags) == 7
    for k in range(7):
        # per-stream norm of dE_{N,b}/dS (E is the batch mean, so B * dS), then mean over streams
        assert prof.grad_norm[k] == pytest.approx(np.mean(np.linalg.norm(4 * g["dS"][6 - k], axis=1)), rel=1e-13)
        for name in ("Wx", "Ws", "bs"):
            assert prof.term_norms[name][k] == pytest.approx(np.linalg.norm(g[name][6 - k]), rel=1e-13)
    assert set(prof.term_norms) == {"Wx", "Ws", "bs"} and prof.cell_norm is None
    # duplicating every stream changes nothing: the profile does not depend on B
    prof2 = dg.gradient_by_lag(net, np.concatenate([X, X], 1), np.concatenate([D, D], 1), at=6)
    np.testing.assert_allclose(prof2.grad_norm, prof.grad_norm, rtol=1e-12)
    rows = prof.to_rows()
    assert len(rows) == 7 and list(rows[0]) == ["lag", "grad_norm_dS", "term_Wx", "term_Ws", "term_bs"]
    assert rows[3]["lag"] == 3 and rows[3]["grad_norm_dS"] == prof.grad_norm[3]


def test_effective_memory_definition():
    norms = np.array([1.0, 0.5, 0.001, 0.02, 0.0001])  # not monotone: the LARGEST lag over the threshold
    m, mi, cens = dg.effective_memory(norms, 0.01)
    assert (m, cens) == (3, False)
    assert mi == pytest.approx(3 + (math.log(0.01) - math.log(0.02)) / (math.log(1e-4) - math.log(0.02)), rel=1e-14)
    assert dg.effective_memory(np.array([0.1, 1.0, 0.5]), 0.01)[1:] == (2.0, True)  # max need not be at lag 0
    assert dg.effective_memory(np.array([1.0, 0.0, 0.0]), 0.01) == (0, 0.0, False)
    r, c, rng, n = dg.fit_decay(np.array([2.0, 1.0, 0.0, 0.25]))  # zeros are left out of the fit
    assert (rng, n) == ((0, 3), 3) and r == pytest.approx(0.5, rel=1e-12) and c == pytest.approx(math.log(2))
    assert math.isnan(dg.fit_decay(np.array([1.0, 0.0]))[0])
    assert dg.half_life(1.0) == math.inf and dg.half_life(2.0) == pytest.approx(-1.0)


def test_bad_arguments():
    net = bptt.Elman(1, 3, 1)
    X, D = data(5, 2, 1, 1)
    for bad in (None, [1, 2], 1.5, True):
        with pytest.raises(InputError, match="at:"):
            dg.gradient_by_lag(net, X, D, at=bad)
    with pytest.raises(InputError, match="outside"):
        dg.gradient_by_lag(net, X, D, at=5)
    for bad in (0, 1, -0.1, "x"):
        with pytest.raises(InputError, match="fraction"):
            dg.gradient_by_lag(net, X, D, fraction=bad)
    with pytest.raises(InputError, match="layer"):
        dg.recurrent_spectrum(net, layer=1)


# ---- step Jacobians against explicit ones built by hand ----------------------------------------------
def explicit_products(Js, N):
    """Js (T, B, n, n) explicit J_t -> (N+1,) mean_b ||J_N ... J_{N-k+1}||_2."""
    B, n = Js.shape[1], Js.shape[2]
    out, P = [1.0], np.broadcast_to(np.eye(n), (B, n, n))
    for k in range(1, N + 1):
        P = P @ Js[N - k + 1]
        out.append(np.mean([np.linalg.svd(P[b], compute_uv=False)[0] for b in range(B)]))
    return np.array(out)


@pytest.mark.parametrize("g1", ["tanh", "relu", "sigmoid"])
def test_jacobian_products_elman_by_hand(g1):
    net = bptt.Elman(2, 4, 1, g1=g1, seed=5, init="orthogonal")
    rng = np.random.default_rng(6)
    X = rng.standard_normal((8, 3, 2))
    s0 = 0.3 * rng.standard_normal((3, 4))
    S = net.forward(X, s0=s0).S  # (T, B, H)
    dg1 = {"tanh": 1 - S**2, "relu": (S > 0).astype(float), "sigmoid": S * (1 - S)}[g1]
    Js = dg1[..., :, None] * net.params["Ws"]  # diag(g1'(z_t)) Ws per stream: (T, B, H, H)
    np.testing.assert_allclose(dg.jacobian_products(net, X, s0=s0), explicit_products(Js, 7), rtol=1e-12)
    np.testing.assert_allclose(dg.jacobian_products(net, X, s0=s0, at=4), explicit_products(Js, 4), rtol=1e-12)
    want = [np.mean([np.linalg.svd(Js[t, b], compute_uv=False)[0] for b in range(3)]) for t in range(8)]
    np.testing.assert_allclose(dg.step_jacobian_norms(net, X, s0=s0), want, rtol=1e-12)


def test_jacobian_products_deep_net_use_top_layer():
    net = bptt.Elman(2, 3, 1, g1="tanh", layers=2, seed=7)
    X = np.random.default_rng(8).standard_normal((6, 2, 2))
    S = net.forward(X).S  # the top layer's states
    Js = (1 - S**2)[..., :, None] * net.params["Ws_l1"]
    np.testing.assert_allclose(dg.jacobian_products(net, X), explicit_products(Js, 5), rtol=1e-12)


def test_jacobian_products_lstm_against_finite_differences():
    """The (h, c) carry map carry_i -> carry_N run through cell.step, differentiated numerically."""
    net = bptt.LSTM(2, 3, 1, seed=9)
    X = np.random.default_rng(10).standard_normal((5, 2, 2))
    p = net.views()[0][0]
    GX = net.cell.project(p, X)
    carries = [(np.zeros((2, 3)), np.zeros((2, 3)))]
    for t in range(5):
        carries.append(net.cell.step(p, GX[t], carries[-1])[0])

    def run_from(i, flat):  # carry_{i-1} (B, 6) -> carry_N (B, 6)
        c = (flat[:, :3].copy(), flat[:, 3:].copy())
        for t in range(i, 5):
            c = net.cell.step(p, GX[t], c)[0]
        return np.concatenate(c, axis=1)

    want = [1.0]
    for k in range(1, 5):
        i = 4 - k + 1  # dS_4/dS_{i-1}: perturb the carry step i reads
        base = np.concatenate(carries[i], axis=1)
        J = np.zeros((2, 6, 6))
        for j in range(6):
            e = np.zeros_like(base)
            e[:, j] = 1e-6
            J[:, :, j] = (run_from(i, base + e) - run_from(i, base - e)) / 2e-6
        want.append(np.mean([np.linalg.svd(J[b], compute_uv=False)[0] for b in range(2)]))
    np.testing.assert_allclose(dg.jacobian_products(net, X), want, rtol=1e-7)


def test_jacobian_products_rescaling_survives_overflow_and_underflow():
    X, _ = data(400, 2, 2, 3)
    big = dg.jacobian_products(linear_net(3.0), X)  # 3^399 ~ 1e190: the product alone would not overflow
    np.testing.assert_allclose(np.log(big[1:]), np.arange(1, 400) * math.log(3.0), rtol=1e-12)
    small = dg.jacobian_products(linear_net(0.1), X)  # 0.1^320 is a subnormal, 0.1^330 is 0
    np.testing.assert_allclose(small[:300], 0.1 ** np.arange(300), rtol=1e-10)
    assert small[-1] == 0.0 and np.all(np.isfinite(small))


# ---- the spectrum and Pascanu et al.'s bound -----------------------------------------------------------
def test_recurrent_spectrum_elman():
    net = bptt.Elman(1, 3, 1, g1="sigmoid")
    W = np.array([[0.0, 2.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.5]])  # eigenvalues 0, 0, 0.5; ||W||_2 = 2
    net.set_params({**net.params, "Ws": W})
    s = dg.recurrent_spectrum(net)
    assert s["matrix"] == "Ws" and s["spectral_radius"] == pytest.approx(0.5)
    assert s["max_singular_value"] == pytest.approx(2.0)
    assert s["gamma"] == 0.25 and s["vanishing_bound"] == 4.0 and s["vanishing_guaranteed"] is True
    tanh = bptt.Elman(1, 3, 1, g1="tanh")
    tanh.set_params({**tanh.params, "Ws": W})
    assert dg.recurrent_spectrum(tanh)["vanishing_guaranteed"] is False  # 2 > 1/gamma = 1


@pytest.mark.parametrize("cls,gates", [(bptt.LSTM, "ifgo"), (bptt.GRU, "rzn")])
def test_recurrent_spectrum_gated(cls, gates):
    net = cls(1, 4, 1, init="orthogonal", seed=1)
    s = dg.recurrent_spectrum(net)
    assert [b["gate"] for b in s["blocks"]] == list(gates)
    assert s["gamma"] is None and s["vanishing_guaranteed"] is None and "Elman only" in s["note"]
    assert s["max_singular_value"] == pytest.approx(1.0) and s["spectral_radius"] == pytest.approx(1.0)


def test_tracked_metrics():
    net = bptt.Elman(2, 4, 2, seed=2)
    X, D = data(12, 3, 2, 2)
    m = dg.tracked_metrics(net, X, D, at=None)
    prof = dg.gradient_by_lag(net, X, D, at=-1)
    assert set(m) == {"effective_memory", "decay_rate", "half_life", "spectral_radius", "max_singular"}
    assert m["effective_memory"] == prof.effective_memory and m["decay_rate"] == prof.decay_rate
    assert m["max_singular"] == pytest.approx(np.linalg.norm(net.params["Ws"], 2))
    lstm = dg.tracked_metrics(bptt.LSTM(2, 4, 2), X, D, at=[3, 11])
    assert isinstance(lstm["effective_memory"], int) and math.isfinite(lstm["decay_rate"])


# ---- Omega ---------------------------------------------------------------------------------------------
ACT = {"tanh": np.tanh, "sigmoid": lambda z: 1 / (1 + np.exp(-z)), "identity": lambda z: z}
DACT = {"tanh": lambda s: 1 - s * s, "sigmoid": lambda s: s * (1 - s), "identity": np.ones_like}


def omega_fixed_v(g1, Wx, Ws, bs, X, V, s0, a_fixed=None):
    """Independent Omega with V = dE/dS frozen: forward recursion, then the paper's sum (t = 1..T-1).
    a_fixed: g1'(z_t) frozen too (the paper's immediate derivative, only the explicit Ws varies)."""
    S, prev, a = [], s0, []
    for t in range(X.shape[0]):
        prev = ACT[g1](X[t] @ Wx.T + prev @ Ws.T + bs)
        S.append(prev)
        a.append(DACT[g1](prev))
    a = a if a_fixed is None else a_fixed
    tot = 0.0
    for t in range(1, X.shape[0]):
        nv = np.linalg.norm(V[t], axis=1)
        nu = np.linalg.norm((V[t] * a[t]) @ Ws, axis=1)
        live = nv > 0
        tot += np.sum((nu[live] / nv[live] - 1) ** 2)
    return tot / X.shape[1], a


def omega_case(g1, at, seed):
    rng = np.random.default_rng(seed)
    net = bptt.Elman(2, 3, 2, g1=g1, seed=seed)
    X = rng.standard_normal((6, 3, 2))
    D = rng.standard_normal((6, 3, 2))
    s0 = 0.4 * rng.standard_normal((3, 3))
    V = net.gradient_terms(X, D, at=at, s0=s0)["dS"]
    return net, X, D, s0, V


@pytest.mark.parametrize("g1,at", [("tanh", None), ("tanh", -1), ("tanh", [1, 3]), ("sigmoid", None),
                                   ("identity", 4)])
def test_omega_gradient_finite_differences(g1, at):
    net, X, D, s0, V = omega_case(g1, at, seed=11)
    P = net.params
    val, grads = dg.omega(net, X, D, at=at, s0=s0)
    want, a0 = omega_fixed_v(g1, P["Wx"], P["Ws"], P["bs"], X, V, s0)
    assert val == pytest.approx(want, rel=1e-13) and val > 0
    imm_val, imm = dg.omega(net, X, D, at=at, s0=s0, through_states=False)
    assert imm_val == val
    eps = 1e-6
    for name in ("Wx", "Ws", "bs"):
        fd, fd_imm = np.zeros_like(P[name]), np.zeros_like(P[name])
        for idx in np.ndindex(P[name].shape):
            vals = []
            for sign in (1, -1):
                q = {k: v.copy() for k, v in P.items()}
                q[name][idx] += sign * eps
                vals.append((omega_fixed_v(g1, q["Wx"], q["Ws"], q["bs"], X, V, s0)[0],
                             omega_fixed_v(g1, q["Wx"], q["Ws"], q["bs"], X, V, s0, a_fixed=a0)[0]))
            fd[idx] = (vals[0][0] - vals[1][0]) / (2 * eps)
            fd_imm[idx] = (vals[0][1] - vals[1][1]) / (2 * eps)
        assert np.max(np.abs(grads[name] - fd)) <= 1e-6, name
        assert np.max(np.abs(imm[name] - fd_imm)) <= 1e-6, name
    assert not np.any(imm["Wx"]) and not np.any(imm["bs"])  # the paper's d+: Ws only
    assert np.max(np.abs(grads["Wx"])) > 1e-3 or g1 == "identity"  # the through-states part is not empty


def torch_omega(g1, P, X, D, s0, at, through_states):
    """PyTorch autograd of the same Omega: V = dE/dS from torch's own BPTT, detached."""
    act = {"tanh": torch.tanh, "sigmoid": torch.sigmoid}[g1]
    t = {k: torch.tensor(v, requires_grad=True) for k, v in P.items()}
    Xt, Dt = torch.tensor(X), torch.tensor(D)
    T, B = X.shape[:2]
    S, prev = [], torch.tensor(s0)
    for k in range(T):
        prev = act(Xt[k] @ t["Wx"].T + prev @ t["Ws"].T + t["bs"])
        S.append(prev)
    steps = range(T) if at is None else [at % T]
    E = sum(((S[k] @ t["Wy"].T + t["by"] - Dt[k]) ** 2).sum() for k in steps) / B
    V = [v.detach() for v in torch.autograd.grad(E, S, allow_unused=True, materialize_grads=True, retain_graph=True)]
    om = 0.0
    for k in range(1, T):
        s = S[k] if through_states else S[k].detach()
        a = 1 - s * s if g1 == "tanh" else s * (1 - s)
        nv = V[k].norm(dim=1)
        live = nv > 0
        nu = ((V[k] * a) @ t["Ws"]).norm(dim=1)
        om = om + ((nu[live] / nv[live] - 1) ** 2).sum()
    om = om / B
    gr = torch.autograd.grad(om, [t["Wx"], t["Ws"], t["bs"]], allow_unused=True, materialize_grads=True)
    return float(om.detach()), dict(zip(("Wx", "Ws", "bs"), (g.numpy() for g in gr)))


@pytest.mark.parametrize("g1,at,through", [("tanh", None, True), ("tanh", -2, True), ("sigmoid", None, True),
                                           ("tanh", None, False), ("sigmoid", 3, False)])
def test_omega_against_torch(g1, at, through):
    net, X, D, s0, _ = omega_case(g1, at, seed=12)
    val, grads = dg.omega(net, X, D, at=at, s0=s0, through_states=through)
    tval, tgrads = torch_omega(g1, net.params, X, D, s0, at, through)
    assert val == pytest.approx(tval, rel=1e-12)
    for name in ("Wx", "Ws", "bs"):
        np.testing.assert_allclose(grads[name], tgrads[name], rtol=1e-10, atol=1e-12)


def test_omega_zero_for_norm_preserving_jacobian():
    """g1 = identity and orthogonal Ws: ||v Ws|| = ||v||, so every term is 0 and so is the gradient."""
    net = bptt.Elman(2, 4, 2, g1="identity", init="orthogonal", seed=3)
    X, D = data(7, 2, 2, 2)
    val, grads = dg.omega(net, X, D)
    assert val == pytest.approx(0.0, abs=1e-28)
    for g in grads.values():
        np.testing.assert_allclose(g, 0.0, atol=1e-13)


def test_add_omega_and_errors():
    net = bptt.Elman(2, 3, 2, seed=4)
    X, D = data(5, 2, 2, 2)
    _, g = net.gradients(X, D)
    _, og = dg.omega(net, X, D)
    before = {k: np.copy(v) if isinstance(v, np.ndarray) else v for k, v in g.items()}
    out = dg.add_omega(g, og, 0.5)
    for k in ("Wx", "Ws", "bs"):
        np.testing.assert_array_equal(out[k], g[k] + 0.5 * og[k])
    np.testing.assert_array_equal(out.Wy, g.Wy)
    for k, v in g.items():  # not modified in place
        np.testing.assert_array_equal(v, before[k])
    for bad in (-1.0, math.nan, "1", True):
        with pytest.raises(InputError, match="lam"):
            dg.add_omega(g, og, bad)
    with pytest.raises(InputError, match="omega_grads"):
        dg.add_omega({"Ws": g["Ws"]}, og, 1.0)
    with pytest.raises(InputError, match="Elman"):
        dg.omega(bptt.LSTM(2, 3, 2), X, D)
    with pytest.raises(InputError, match="Elman"):
        dg.omega(bptt.Elman(2, 3, 2, layers=2), X, D)


# ---- the CLI -------------------------------------------------------------------------------------------
@pytest.fixture
def diagnose(monkeypatch):
    monkeypatch.setattr(cli, "COMMANDS", ["diagnose"])  # only this command: independent of the others
    return lambda *argv: cli.main(["diagnose", *map(str, argv)])


def read_csv(path):
    with open(path, newline="") as fh:
        r = csv.DictReader(fh)
        return r.fieldnames, list(r)


def test_cli_diagnose_fresh_nets(diagnose, tmp_path, capsys):
    out = tmp_path / "lab"
    rc = diagnose("--g1", "tanh", "--init", "uniform,identity", "--hidden", 4, "--length", 8, "--batch", 3,
                  "--seed", 2, "--out", out)
    assert rc == 0
    cols, rows = read_csv(f"{out}.csv")
    assert cols == ["config", "lag", "grad_norm_dS", "term_Wx", "term_Ws", "term_bs", "jacobian_product_norm"]
    assert [r["config"] for r in rows] == ["elman/tanh/uniform"] * 8 + ["elman/tanh/identity"] * 8
    assert [int(r["lag"]) for r in rows[:8]] == list(range(8))
    # the numbers are the library's, on the documented data: N(0,1) from seed [2, 1], squared loss at T-1
    rng = np.random.default_rng([2, 1])
    X, D = rng.standard_normal((8, 3, 1)), rng.standard_normal((8, 3, 1))
    net = bptt.Elman(1, 4, 1, g1="tanh", init="identity", seed=2)
    prof = dg.gradient_by_lag(net, X, D)
    np.testing.assert_allclose([float(r["grad_norm_dS"]) for r in rows[8:]], prof.grad_norm, rtol=1e-15)
    np.testing.assert_allclose([float(r["jacobian_product_norm"]) for r in rows[8:]],
                               dg.jacobian_products(net, X), rtol=1e-15)
    text = capsys.readouterr().out
    assert "elman/tanh/uniform: the gradient halves every" in text and "effective memory" in text
    assert "1/gamma = 1" in text
    with open(f"{out}.png", "rb") as fh:
        assert fh.read(8) == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lab.csv", "lab.png"]  # no temporary files left


def test_cli_diagnose_cells_and_arrays_file(diagnose, tmp_path, capsys):
    X, D = data(6, 2, 3, 2)
    np.savez(tmp_path / "d.npz", X=X, D=D)
    rc = diagnose("--cell", "elman,lstm", "--g1", "tanh,relu", "--hidden", 3, "--arrays", tmp_path / "d.npz",
                  "--out", tmp_path / "x", "--no-plot")
    assert rc == 0
    cols, rows = read_csv(tmp_path / "x.csv")
    assert "grad_norm_dC" in cols and "term_W_hh" in cols and cols[-1] == "jacobian_product_norm"
    assert list(dict.fromkeys(r["config"] for r in rows)) == ["elman/tanh/uniform", "elman/relu/uniform", "lstm/uniform"]
    assert len(rows) == 18 and rows[0]["grad_norm_dC"] == "" and rows[-1]["term_Wx"] == ""
    # the arrays are used as given; a fresh LSTM gets bptt train's forget bias 1.0
    prof = dg.gradient_by_lag(bptt.LSTM(3, 3, 2, seed=0, forget_bias=1.0), X, D)
    np.testing.assert_allclose([float(r["grad_norm_dS"]) for r in rows[12:]], prof.grad_norm, rtol=1e-15)
    assert not (tmp_path / "x.png").exists()
    assert "gate blocks" in capsys.readouterr().out


def test_cli_diagnose_nets_list(diagnose, tmp_path, capsys):
    """--nets picks curves one by one: the IRNN (relu + identity) beside tanh nets and an LSTM."""
    rc = diagnose("--nets", "elman:tanh:uniform,elman:relu:identity,elman,lstm:orthogonal,gru", "--hidden", 4,
                  "--length", 6, "--batch", 2, "--forget-bias", 0.5, "--out", tmp_path / "n", "--no-plot")
    assert rc == 0
    _, rows = read_csv(tmp_path / "n.csv")
    assert list(dict.fromkeys(r["config"] for r in rows)) == [  # "elman" = elman:tanh:uniform, a repeat
        "elman/tanh/uniform", "elman/relu/identity", "lstm/orthogonal", "gru/uniform"]
    rng = np.random.default_rng([0, 1])
    X, D = rng.standard_normal((6, 2, 1)), rng.standard_normal((6, 2, 1))
    for label, net in [("elman/relu/identity", bptt.Elman(1, 4, 1, g1="relu", init="identity")),
                       ("lstm/orthogonal", bptt.LSTM(1, 4, 1, init="orthogonal", forget_bias=0.5))]:
        got = [float(r["grad_norm_dS"]) for r in rows if r["config"] == label]
        np.testing.assert_allclose(got, dg.gradient_by_lag(net, X, D).grad_norm, rtol=1e-15)
    assert capsys.readouterr().out.count("effective memory") == 4
    for bad, msg in [(("--nets", "lstm:tanh:uniform"), "lstm[:INIT]"), (("--nets", "elman:tanh:identity:x"), "G1"),
                     (("--nets", "elman,,lstm"), "empty"), (("--nets", "lstm", "--cell", "gru"), "not both"),
                     (("--nets", "rnn:x"), "unknown cell")]:
        assert diagnose(*bad, "--out", tmp_path / "bad") == 2
        assert msg in capsys.readouterr().err
    assert not (tmp_path / "bad.csv").exists()


def test_cli_diagnose_errors(diagnose, tmp_path, capsys):
    (tmp_path / "f").write_text("")
    assert diagnose("--out", tmp_path / "f" / "x") == 2  # the folder would be a file
    assert "is a file" in capsys.readouterr().err
    (tmp_path / "f").unlink()
    assert diagnose(tmp_path, "--cell", "lstm", "--out", tmp_path / "x") == 2
    assert "--cell: only for fresh nets" in capsys.readouterr().err
    assert diagnose(tmp_path / "nomodel", "--out", tmp_path / "x") == 2
    assert capsys.readouterr().err.count("\n") == 1
    assert diagnose("--cell", "transformer", "--out", tmp_path / "x") == 2
    assert "unknown cell" in capsys.readouterr().err
    assert diagnose("--hidden", "4,x", "--out", tmp_path / "x") == 2
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    assert diagnose("--arrays", tmp_path / "bad.npz", "--out", tmp_path / "x") == 2
    assert "--arrays" in capsys.readouterr().err
    assert diagnose("--data", tmp_path / "bad.npz", "--out", tmp_path / "x") == 2
    assert "without a saved model" in capsys.readouterr().err
    np.savez(tmp_path / "a.npz", X=np.zeros((4, 1, 1)))
    assert diagnose("--arrays", tmp_path / "a.npz", "--length", 9, "--out", tmp_path / "x") == 2
    assert "--length" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.npz", "bad.npz"]


def _train(tmp_path, name, **kw):
    from bptt.config import resolve
    from bptt.train import train

    train(resolve({}, {"hidden": 3, "steps": 2, "heldout": 4, **kw}), tmp_path / name, quiet=True, log=lambda *a: None)
    return tmp_path / name


def test_cli_diagnose_saved_model_on_its_task(diagnose, tmp_path, capsys):
    """DIR: the run's model (bptt.load) on --batch held-out sequences of its own task, with the task's loss,
    followed back from the task's last loss step."""
    from bptt.data import get_task

    run = _train(tmp_path, "run1", task="order", cell="gru", length=8)
    assert diagnose(run, "--batch", 3, "--seed", 2, "--out", tmp_path / "g", "--no-plot") == 0
    cols, rows = read_csv(tmp_path / "g.csv")
    assert [r["config"] for r in rows] == ["run1"] * 8 and "term_W_hh" in cols
    X, D = get_task("order", length=8).heldout(3, 2)
    net = bptt.load(run / "model.npz")
    prof = dg.gradient_by_lag(net, X, D, loss="cross_entropy", at=7)
    np.testing.assert_allclose([float(r["grad_norm_dS"]) for r in rows], prof.grad_norm, rtol=1e-15)
    np.testing.assert_allclose([float(r["jacobian_product_norm"]) for r in rows], dg.jacobian_products(net, X),
                               rtol=1e-15)
    out = capsys.readouterr().out
    assert out.startswith("run1: 3 held-out sequences of its order task (T = 8, seed 2), cross_entropy loss at step 7\n"
                          "run1: the gradient")
    # the model file works as well as its folder; options of fresh nets are refused
    assert diagnose(run / "model.npz", "--batch", 3, "--seed", 2, "--out", tmp_path / "h", "--no-plot") == 0
    assert read_csv(tmp_path / "h.csv")[1] == [dict(r, config="model") for r in rows]
    capsys.readouterr()
    assert diagnose(run, "--length", 20, "--nets", "lstm", "--out", tmp_path / "x") == 2
    assert "--nets, --length: only for fresh nets" in capsys.readouterr().err
    assert diagnose(run, "--data", tmp_path / "g.csv", "--out", tmp_path / "x") == 2
    assert "generates its own held-out data" in capsys.readouterr().err


def test_cli_diagnose_saved_model_data_file(diagnose, tmp_path, capsys):
    """--data FILE puts a series model's task on another file, as bptt evaluate does."""
    from bptt.commands._load import task_for

    rng = np.random.default_rng(0)
    for name in ("a.csv", "b.csv"):
        (tmp_path / name).write_text("y\n" + "".join(f"{v:.6f}\n" for v in rng.standard_normal(60).cumsum()))
    run = _train(tmp_path, "s", task="series", data=str(tmp_path / "a.csv"), length=6)
    assert diagnose(run, "--data", tmp_path / "b.csv", "--batch", 2, "--out", tmp_path / "g", "--no-plot") == 0
    net = bptt.load(run / "model.npz")
    X, D = task_for(net, tmp_path / "b.csv").heldout(2, 0)
    prof = dg.gradient_by_lag(net, X, D, at=5)  # squared loss at every step: the last is followed back
    np.testing.assert_allclose([float(r["grad_norm_dS"]) for r in read_csv(tmp_path / "g.csv")[1]], prof.grad_norm,
                               rtol=1e-15)
    assert f"series task on {tmp_path / 'b.csv'} (T = 6, seed 0), squared loss at step 5" in capsys.readouterr().out
