"""bptt.optim against torch.optim, torch lr_scheduler and torch.nn.utils clipping (float64)."""

import json
import math

import numpy as np
import pytest
import torch

from bptt.errors import InputError
from bptt import optim

SHAPES = {"W": (4, 3), "b": (5,), "U": (2, 3, 2)}
STEPS = 100
TOL = 1e-12

# (our optimizer, torch optimizer with the same hyperparameters, torch state key -> our slot).
# Hyperparameters are off the defaults so that a swapped or ignored argument shows.
CASES = {
    "sgd": (lambda: optim.sgd(0.1),
            lambda ps: torch.optim.SGD(ps, lr=0.1, foreach=False), {}),
    "momentum": (lambda: optim.momentum(0.05, beta=0.8),
                 lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.8, foreach=False),
                 {"momentum_buffer": "buf"}),
    "nesterov": (lambda: optim.nesterov(0.05, beta=0.7),
                 lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.7, nesterov=True,
                                            foreach=False),
                 {"momentum_buffer": "buf"}),
    "adagrad": (lambda: optim.adagrad(0.1, eps=1e-6),
                lambda ps: torch.optim.Adagrad(ps, lr=0.1, eps=1e-6, foreach=False),
                {"sum": "sum"}),
    "rmsprop": (lambda: optim.rmsprop(0.01, alpha=0.9, eps=1e-6),
                lambda ps: torch.optim.RMSprop(ps, lr=0.01, alpha=0.9, eps=1e-6, foreach=False),
                {"square_avg": "sq"}),
    "adam": (lambda: optim.adam(0.01, betas=(0.8, 0.99), eps=1e-7),
             lambda ps: torch.optim.Adam(ps, lr=0.01, betas=(0.8, 0.99), eps=1e-7,
                                         foreach=False),
             {"exp_avg": "m", "exp_avg_sq": "v"}),
    "adamw": (lambda: optim.adamw(0.01, betas=(0.85, 0.995), eps=1e-7, weight_decay=0.1),
              lambda ps: torch.optim.AdamW(ps, lr=0.01, betas=(0.85, 0.995), eps=1e-7,
                                           weight_decay=0.1, foreach=False),
              {"exp_avg": "m", "exp_avg_sq": "v"}),
}


def _params(rng):
    return {k: rng.standard_normal(s) for k, s in SHAPES.items()}


def _grads(rng):
    return {k: rng.standard_normal(s) * rng.uniform(0.1, 3.0) for k, s in SHAPES.items()}


def _close(ours, theirs):
    """Max abs error <= TOL, or relative error <= TOL where the values exceed 1."""
    err = np.max(np.abs(ours - theirs) / np.maximum(1.0, np.abs(theirs)))
    assert err <= TOL, f"max error {err:.3e} > {TOL}"
    return err


def _run_against_torch(opt, make_torch, slot_of, scheduler=None, steps=STEPS):
    rng = np.random.default_rng(1234)
    params = _params(rng)
    tparams = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True)
               for k, v in params.items()}
    topt = make_torch(list(tparams.values()))
    tsched = scheduler(topt) if scheduler else None
    state = opt.init(params)
    for _ in range(steps):
        grads = _grads(rng)
        params, state = opt.update(params, grads, state)
        for k, t in tparams.items():
            t.grad = torch.tensor(grads[k])
        topt.step()
        if tsched is not None:
            tsched.step()
    assert int(state["step"]) == steps
    for k, t in tparams.items():
        _close(params[k], t.detach().numpy())
        for tkey, slot in slot_of.items():
            _close(state[f"{slot}/{k}"], topt.state[t][tkey].numpy())


@pytest.mark.parametrize("name", list(CASES))
def test_matches_torch_optimizer(name):
    ours, theirs, slot_of = CASES[name]
    _run_against_torch(ours(), theirs, slot_of)


def test_adam_with_cosine_schedule_matches_torch_scheduler():
    # Checks the step convention: update t uses schedule(t), as torch with scheduler.step() after.
    _run_against_torch(
        optim.adam(optim.cosine(0.02, total_steps=STEPS, min_lr=1e-3)),
        lambda ps: torch.optim.Adam(ps, lr=0.02, foreach=False),
        {"exp_avg": "m", "exp_avg_sq": "v"},
        scheduler=lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=STEPS,
                                                                       eta_min=1e-3))


def test_momentum_with_step_decay_matches_torch_scheduler():
    _run_against_torch(
        optim.momentum(optim.step_decay(0.05, every=7, gamma=0.5), beta=0.9),
        lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.9, foreach=False),
        {"momentum_buffer": "buf"},
        scheduler=lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=7, gamma=0.5))


@pytest.mark.parametrize("make,ours", [
    (lambda: torch.optim.Adagrad([torch.zeros(1)]), optim.adagrad(1.0)),
    (lambda: torch.optim.RMSprop([torch.zeros(1)]), optim.rmsprop(1.0)),
    (lambda: torch.optim.Adam([torch.zeros(1)]), optim.adam(1.0)),
    (lambda: torch.optim.AdamW([torch.zeros(1)]), optim.adamw(1.0)),
])
def test_defaults_are_torch_defaults(make, ours):
    d = make().defaults
    for key, value in ours.hparams:
        assert d[key] == value, key


# ---------------------------------------------------------------- schedules


def _torch_lrs(make_sched, n):
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.3)
    sched = make_sched(opt)
    lrs = []
    for _ in range(n):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return np.array(lrs)


@pytest.mark.parametrize("ours,make_sched,n", [
    (optim.step_decay(0.3, every=5, gamma=0.3),
     lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=5, gamma=0.3), 40),
    (optim.cosine(0.3, total_steps=50, min_lr=0.01),
     lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=50, eta_min=0.01), 51),
    (optim.cosine(0.3, total_steps=37),
     lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=37), 38),
    (optim.warmup(optim.constant(0.3), warmup_steps=8),
     lambda o: torch.optim.lr_scheduler.LinearLR(o, start_factor=1 / 8, total_iters=7), 30),
    (optim.constant(0.3), lambda o: torch.optim.lr_scheduler.ConstantLR(o, factor=1.0), 10),
])
def test_schedule_matches_torch(ours, make_sched, n):
    _close(np.array([ours(t) for t in range(n)]), _torch_lrs(make_sched, n))


def test_schedule_closed_forms():
    cos = optim.cosine(0.5, total_steps=10, min_lr=0.1)
    assert cos(0) == 0.5 and cos(10) == pytest.approx(0.1, abs=1e-15)
    assert cos(11) == cos(1000) == 0.1  # held at min_lr after total_steps
    assert cos(5) == pytest.approx(0.3, abs=1e-15)
    wc = optim.schedule("warmup-cosine", 0.5, total_steps=100, warmup_steps=10)
    inner = optim.cosine(0.5, 100)
    assert wc == optim.warmup(inner, 10)
    for t in range(100):
        expected = inner(t) * min(1.0, (t + 1) / 10)
        assert abs(wc(t) - expected) <= 1e-15
    assert wc(0) == pytest.approx(0.05) and wc(9) == inner(9)
    assert optim.schedule("step", 1.0, 30) == optim.step_decay(1.0, every=10, gamma=0.1)
    assert optim.schedule("cosine", 1.0, 30, min_lr=0.2) == optim.cosine(1.0, 30, 0.2)
    assert optim.schedule("constant", 1.0, 30) == optim.constant(1.0)


def test_configs_round_trip_through_json():
    scheds = [optim.constant(0.1), optim.step_decay(0.1, 3, 0.5), optim.cosine(0.1, 9, 0.01),
              optim.warmup(optim.cosine(0.1, 9), 2)]
    for s in scheds:
        assert optim.schedule_from_config(json.loads(json.dumps(s.config()))) == s
    opts = [make() for make, _, _ in CASES.values()] + [optim.adam(scheds[-1])]
    for o in opts:
        assert optim.optimizer_from_config(json.loads(json.dumps(o.config()))) == o
    assert optim.get("adamw", 0.1, weight_decay=0.2) == optim.adamw(0.1, weight_decay=0.2)


# ---------------------------------------------------------------- clipping


def _torch_grads(grads):
    ps = []
    for g in grads.values():
        p = torch.zeros(g.shape, dtype=torch.float64, requires_grad=True)
        p.grad = torch.tensor(g)
        ps.append(p)
    return ps


@pytest.mark.parametrize("max_norm", [0.5, 3.0, 1e6])
def test_clip_by_global_norm_matches_torch(max_norm):
    grads = _grads(np.random.default_rng(7))
    clipped, norm = optim.clip_by_global_norm(grads, max_norm)
    ps = _torch_grads(grads)
    tnorm = torch.nn.utils.clip_grad_norm_(ps, max_norm, foreach=False)
    _close(np.array(norm), tnorm.numpy())
    assert norm == pytest.approx(math.sqrt(sum(np.sum(g * g) for g in grads.values())), rel=1e-14)
    for (k, g), p in zip(clipped.items(), ps):
        _close(g, p.grad.numpy())
    new_norm = optim.global_norm(clipped)
    assert new_norm <= max_norm or max_norm > norm


def test_clip_by_value_matches_torch():
    grads = _grads(np.random.default_rng(8))
    clipped = optim.clip_by_value(grads, 0.7)
    ps = _torch_grads(grads)
    torch.nn.utils.clip_grad_value_(ps, 0.7, foreach=False)
    for g, p in zip(clipped.values(), ps):
        np.testing.assert_array_equal(g, p.grad.numpy())
    assert max(np.abs(g).max() for g in clipped.values()) == 0.7


def test_clip_nonfinite_norm_returns_grads_unchanged():
    grads = {"W": np.array([1.0, np.inf])}
    clipped, norm = optim.clip_by_global_norm(grads, 1.0)
    assert norm == np.inf and clipped["W"] is not grads["W"]
    np.testing.assert_array_equal(clipped["W"], grads["W"])


# ---------------------------------------------------------------- purity and state files


@pytest.mark.parametrize("name", list(CASES))
def test_update_does_not_mutate_inputs(name):
    opt = CASES[name][0]()
    rng = np.random.default_rng(3)
    params = _params(rng)
    state = opt.update(params, _grads(rng), opt.init(params))[1]
    grads = _grads(rng)
    copies = [{k: v.copy() for k, v in d.items()} for d in (params, grads, state)]
    opt.update(params, grads, state)
    for original, copy in zip((params, grads, state), copies):
        for k in copy:
            np.testing.assert_array_equal(original[k], copy[k])


@pytest.mark.parametrize("name", list(CASES))
def test_state_round_trip_through_npz(name, tmp_path):
    opt = CASES[name][0]()
    rng = np.random.default_rng(5)
    params = _params(rng)
    state = opt.init(params)
    for _ in range(10):
        params, state = opt.update(params, _grads(rng), state)
    path = tmp_path / "state.npz"
    np.savez(path, **optim.state_to_arrays(state))
    with np.load(path, allow_pickle=False) as f:
        loaded = optim.state_from_arrays(f)
    again = optim.state_from_arrays(optim.state_to_arrays(state))
    assert loaded.keys() == state.keys() == again.keys()
    grads = [_grads(rng) for _ in range(10)]
    runs = []
    for st in (state, loaded, again):
        p = params
        for g in grads:
            p, st = opt.update(p, g, st)
        runs.append((p, st))
    for p, st in runs[1:]:
        for k in p:
            np.testing.assert_array_equal(p[k], runs[0][0][k])
        for k in st:
            np.testing.assert_array_equal(st[k], runs[0][1][k])


# ---------------------------------------------------------------- bad arguments

G = {"W": np.ones((2, 2))}

BAD = [
    (lambda: optim.sgd(0.0), "lr"),
    (lambda: optim.sgd(float("nan")), "lr must be finite"),
    (lambda: optim.sgd("0.1"), "lr must be a real number"),
    (lambda: optim.sgd(True), "lr must be a real number"),
    (lambda: optim.momentum(0.1, beta=1.0), r"beta must be in \[0, 1\)"),
    (lambda: optim.nesterov(0.1, beta=0.0), "beta must be > 0"),
    (lambda: optim.adagrad(0.1, eps=0.0), "eps must be > 0"),
    (lambda: optim.rmsprop(0.1, alpha=1.5), "alpha"),
    (lambda: optim.adam(0.1, betas=(0.9,)), "betas must be a pair"),
    (lambda: optim.adam(0.1, betas=(0.9, 1.0)), r"betas\[1\]"),
    (lambda: optim.adamw(0.1, weight_decay=-1.0), "weight_decay must be >= 0"),
    (lambda: optim.get("adamx", 0.1), "optimizer name must be one of sgd, momentum, nesterov, "
                                      "adagrad, rmsprop, adam, adamw; got 'adamx'"),
    (lambda: optim.get("adam", 0.1, beta=0.9), "'adam' does not take.*beta"),
    (lambda: optim.step_decay(0.1, every=0, gamma=0.5), "every must be an integer >= 1"),
    (lambda: optim.step_decay(0.1, every=2.5, gamma=0.5), "every must be an integer"),
    (lambda: optim.step_decay(0.1, every=5, gamma=2.0), r"gamma must be in \(0, 1\]"),
    (lambda: optim.cosine(0.1, total_steps=0), "total_steps"),
    (lambda: optim.cosine(0.1, 10, min_lr=0.2), "min_lr must be <= lr"),
    (lambda: optim.warmup(lambda s: 1.0, 5), "schedule must be a bptt.optim Schedule"),
    (lambda: optim.warmup(optim.constant(0.1), 0), "warmup_steps"),
    (lambda: optim.constant(0.1)(-1), "step must be an integer >= 0"),
    (lambda: optim.schedule("linear", 0.1, 10), "schedule name must be one of constant, step, "
                                                "cosine, warmup-cosine"),
    (lambda: optim.schedule("step", 0.1, 10, min_lr=0.0), r"unknown option\(s\) \['min_lr'\]"),
    (lambda: optim.schedule_from_config({"name": "cosine", "lr": 0.1}), "schedule config"),
    (lambda: optim.clip_by_global_norm(G, 0.0), "max_norm must be > 0"),
    (lambda: optim.clip_by_value(G, -1.0), "limit must be > 0"),
    (lambda: optim.clip_by_value({"W": [1.0]}, 1.0), r"grads\['W'\] must be a floating NumPy"),
    (lambda: optim.sgd(0.1).update({"W": np.ones(2, dtype=int)}, G, {"step": np.array(0)}),
     r"params\['W'\] must be a floating"),
    (lambda: optim.sgd(0.1).update(G, {}, {"step": np.array(0)}),
     r"grads must have the same names as params; missing \['W'\]"),
    (lambda: optim.sgd(0.1).update(G, {"W": np.ones(3)}, {"step": np.array(0)}),
     r"grads\['W'\] has shape \(3,\)"),
    (lambda: optim.adam(0.1).update(G, G, optim.momentum(0.1).init(G)),
     r"state does not fit optimizer 'adam'.*missing \['m/W', 'v/W'\].*unexpected \['buf/W'\]"),
    (lambda: optim.momentum(0.1).update(G, G, {"step": np.array(0), "buf/W": np.ones(3)}),
     r"state\['buf/W'\] must be an array of shape \(2, 2\)"),
    (lambda: optim.sgd(0.1).update(G, G, {"step": np.array(-1)}), r"state\['step'\]"),
    (lambda: optim.sgd(lambda t: float("nan")).update(G, G, {"step": np.array(0)}),
     "lr schedule value at step 0 must be finite"),
    (lambda: optim.sgd(lambda t: 0.1).config(), "plain callable"),
    (lambda: optim.state_from_arrays({}), "'step' entry"),
    (lambda: optim.state_from_arrays({"step": np.array(0), "m": np.ones(2)}),
     "entry 'm' must be named 'slot/param'"),
]


@pytest.mark.parametrize("call,match", BAD)
def test_bad_arguments_raise_input_error(call, match):
    with pytest.raises(InputError, match=match):
        call()
