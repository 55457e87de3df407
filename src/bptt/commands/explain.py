"""bptt explain: the worked example of the tutorial bptt follows (backpropagation through time for an Elman
network, its notation X, S, Y, d, E, Wx, Ws, Wy, g1, g2): N = 3 steps, one loss term E_3, formula by formula.

Every number comes from the library (Elman.gradients and gradient_terms) and is checked against central
finite differences, so a reader can map each formula of the tutorial to a value and a line of code.
"""

from __future__ import annotations

import numpy as np

from ..network import Elman

WIDTH = 100


def add_parser(sub):
    p = sub.add_parser("explain", help="walk through a worked BPTT example (N=3, E_3) with real numbers",
                       description=__doc__)
    p.add_argument("--seed", type=int, default=0, help="seed of the weights, inputs and target (default 0)")
    p.add_argument("--hidden", type=int, default=2, help="hidden units H (default 2, so matrices stay readable)")
    p.add_argument("--g1", default="tanh", help="hidden activation g1 (default tanh)")
    p.add_argument("--g2", default="identity", help="output activation g2 (default identity)")
    p.set_defaults(run=run)


def _fmt(a) -> str:
    a = np.atleast_1d(np.asarray(a, float))
    if a.ndim == 1:
        return "[" + " ".join(f"{v: .6f}" for v in a) + "]"
    return "[" + "\n".join((" " if i else "") + _fmt(r) for i, r in enumerate(a)) + "]"


def _indent(s: str, n: int = 6) -> str:
    return "\n".join(" " * n + line for line in s.splitlines())


def _numeric(net, X, D, name, s0, eps=1e-6):
    p = net.params[name]
    g = np.zeros_like(p)
    for i in np.ndindex(p.shape):
        old = p[i]
        p[i] = old + eps
        ep = net.loss(X, D, at=2, s0=s0)
        p[i] = old - eps
        em = net.loss(X, D, at=2, s0=s0)
        p[i] = old
        g[i] = (ep - em) / (2 * eps)
    return g


def _rel(a, b) -> float:
    den = max(np.linalg.norm(a), np.linalg.norm(b))
    return 0.0 if den == 0 else float(np.linalg.norm(a - b) / den)


def run(args) -> int:
    if args.hidden < 1:
        from ..errors import InputError
        raise InputError(f"--hidden: got {args.hidden}, expected a positive number of hidden units")
    rng = np.random.default_rng(args.seed)
    H = args.hidden
    net = Elman(1, H, 1, g1=args.g1, g2=args.g2, seed=args.seed, init="uniform")
    # larger weights than the default init, so every term is visible at 6 decimals
    for k in ("Wx", "Ws", "Wy"):
        net.params[k] = net.params[k] * 2.0
    X = rng.uniform(-1, 1, (3, 1, 1))  # X_1, X_2, X_3 (one stream, one input)
    D = rng.uniform(-1, 1, (3, 1, 1))  # only d_3 is used: the loss sits at step 3
    s0 = rng.uniform(-0.5, 0.5, (1, H))  # a non-zero S_0, so that the i=1 term of Ws is visible too
    p = net.params
    fw = net.forward(X, s0=s0)
    S, Y = fw.S[:, 0], fw.Y[:, 0]
    E, g = net.gradients(X, D, at=2, s0=s0)
    terms = net.gradient_terms(X, D, at=2, s0=s0)
    g1 = net.cell.g1
    out = []
    w = out.append
    w("=" * WIDTH)
    w("bptt explain: backpropagation through time on the seed tutorial's example")
    w("=" * WIDTH)
    w(f"An Elman RNN with I=1 input, H={H} hidden units, O=1 output, g1={args.g1}, g2={args.g2}, seed={args.seed}.")
    w("The tutorial counts steps 1..3; the library's arrays are 0-based, so its E_3 is `at=2` in code.")
    w("")
    w("1. Forward: S_t = g1(Wx X_t + Ws S_{t-1} + bs),  Y_t = g2(Wy S_t + by)")
    w("   (the tutorial leaves out the biases bs, by; they change nothing below)")
    for name in ("Wx", "Ws", "bs", "Wy", "by"):
        w(f"   {name} =\n{_indent(_fmt(p[name]))}")
    w(f"   S_0 = {_fmt(s0[0])} (the initial state, `s0` in code)")
    for t in range(3):
        w(f"   t={t + 1}: X_{t + 1} = {X[t, 0, 0]: .6f}   S_{t + 1} = {_fmt(S[t])}   Y_{t + 1} = {_fmt(Y[t])}")
    w("")
    w("2. Error at t=3 only: E_3 = (d_3 - Y_3)^2")
    w(f"   d_3 = {D[2, 0, 0]: .6f},  Y_3 = {Y[2, 0]: .6f},  E_3 = {E:.9f}   [net.gradients(X, D, at=2)]")
    w("")
    dE_dY3 = 2 * (Y[2] - D[2, 0])  # (O,)
    dY3_dZ = net.g2.grad_from_output(Y[2]) if net.g2.elementwise else None
    w("3. Adjusting Wy:  dE_3/dWy = dE_3/dY_3 . dY_3/dWy")
    w(f"   dE_3/dY_3 = 2 (Y_3 - d_3) = {_fmt(dE_dY3)}")
    if dY3_dZ is not None:
        hand = np.outer(dE_dY3 * dY3_dZ, S[2])
        w(f"   dY_3/dWy = g2'(Wy S_3 + by) S_3^T, so dE_3/dWy = {_fmt(hand)}")
    num = _numeric(net, X, D, "Wy", s0)
    w(f"   library: {_fmt(g['Wy'])}   finite differences: {_fmt(num)}   rel. err. {_rel(g['Wy'], num):.1e}")
    w("")
    # the chain dE3/dS_i, written out with the step Jacobians dS_t/dS_{t-1} = diag(g1'(z_t)) Ws
    dS3 = (dE_dY3 * (dY3_dZ if dY3_dZ is not None else 1.0)) @ p["Wy"]
    J = [g1.grad_from_output(S[t])[:, None] * p["Ws"] for t in range(3)]  # J[t] = dS_{t+1}/dS_t
    chain = [None, None, dS3]
    chain[1] = chain[2] @ J[2]
    chain[0] = chain[1] @ J[1]
    for name, other in (("Ws", "Wx"), ("Wx", None)):
        label = "Ws (the tutorial calls it W_V on the left-hand side)" if name == "Ws" else "Wx"
        w(f"{4 if name == 'Ws' else 5}. Adjusting {label}:")
        w(f"   dE_3/d{name} = sum over i = 3, 2, 1 of  dE_3/dY_3 . dY_3/dS_3 . dS_3/dS_2 ... dS_(i+1)/dS_i . dS_i/d{name}")
        if name == "Ws":
            w("   !! The tutorial's second term writes dY_3/dS_2; the output Y_3 depends on S_2 only through S_3,")
            w("   !! so the correct factor is dY_3/dS_3 . dS_3/dS_2, as in its first and third terms.")
        else:
            w("   !! The tutorial's general formula for Wx keeps dE_N/dW_S on its left-hand side; it is dE_N/dW_X.")
        w(f"   Here dS_i/d{name} is the immediate derivative (S_(i-1) held fixed): "
          f"diag(g1'(z_i)) (x) {'S_(i-1)' if name == 'Ws' else 'X_i'}.")
        total = np.zeros_like(p[name])
        for i in (2, 1, 0):
            prev = (S[i - 1] if i > 0 else s0[0]) if name == "Ws" else X[i, 0]
            hand = np.outer(chain[i] * g1.grad_from_output(S[i]), prev)
            total += hand
            j = i + 1  # the tutorial's 1-based step
            path = " . ".join(["dE_3/dY_3", "dY_3/dS_3"] + [f"dS_{t}/dS_{t - 1}" for t in range(3, j, -1)]
                              + [f"dS_{j}/d{name}"])
            w(f"   term i={i + 1}: {path}")
            w(_indent(f"= {_fmt(hand)}  (|term| = {np.linalg.norm(hand):.3e})", 6))
            w(_indent(f"library row {i} of gradient_terms(...)['{name}']: rel. err. {_rel(terms[name][i], hand):.1e}", 6))
        num = _numeric(net, X, D, name, s0)
        w(f"   sum of the three terms:\n{_indent(_fmt(total))}")
        w(f"   library dE_3/d{name} [net.gradients(X, D, at=2)]:\n{_indent(_fmt(g[name]))}")
        w(f"   central finite differences (rel. err. {_rel(g[name], num):.1e}):\n{_indent(_fmt(num))}")
        w("")
    w("6. dE_3/dS_i, the gradient that travels back in time  [gradient_terms(...)['dS']]")
    for i in (2, 1, 0):
        w(f"   |dE_3/dS_{i + 1}| = {np.linalg.norm(terms['dS'][i]):.6e}   (by hand: {np.linalg.norm(chain[i]):.6e})")
    w("   Each step back multiplies by dS_t/dS_(t-1) = diag(g1'(z_t)) Ws. When its norm stays below 1 the terms")
    w("   shrink geometrically with the lag: the vanishing gradient the tutorial ends on. `bptt diagnose` measures")
    w("   it on longer sequences; truncated BPTT (`truncate=k`) keeps only the k newest terms of each sum.")
    print("\n".join(out))
    return 0
