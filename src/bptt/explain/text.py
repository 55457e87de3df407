"""The text walk-through that ``bptt explain`` prints, formula by formula, from :func:`seed_example`."""

from __future__ import annotations

import numpy as np

from .example import SeedExample, chain_text, rel_err, term_steps

WIDTH = 100


def _fmt(a) -> str:
    a = np.atleast_1d(np.asarray(a, float))
    if a.ndim == 1:
        return "[" + " ".join(f"{v: .6f}" for v in a) + "]"
    return "[" + "\n".join((" " if i else "") + _fmt(r) for i, r in enumerate(a)) + "]"


def _indent(s: str, n: int = 6) -> str:
    return "\n".join(" " * n + line for line in s.splitlines())


def explain_text(ex: SeedExample) -> str:
    """The walk-through of ``ex`` as one string (what ``bptt explain`` prints)."""
    n, H, p = ex.steps, ex.hidden, ex.net.params
    S, Y, X, D, g, terms = ex.S, ex.Y, ex.X, ex.D, ex.grads, ex.terms
    out = []
    w = out.append
    w("=" * WIDTH)
    w("bptt explain: backpropagation through time on the seed tutorial's example")
    w("=" * WIDTH)
    w(f"An Elman RNN with I=1 input, H={H} hidden units, O=1 output, g1={ex.g1}, g2={ex.g2}, seed={ex.seed}, "
      f"N={n} steps.")
    w(f"The tutorial counts steps 1..{n}; the library's arrays are 0-based, so its E_{n} is `at={n - 1}` in code.")
    w("")
    w("1. Forward: S_t = g1(Wx X_t + Ws S_{t-1} + bs),  Y_t = g2(Wy S_t + by)")
    w("   (the tutorial leaves out the biases bs, by; they change nothing below)")
    for name in ("Wx", "Ws", "bs", "Wy", "by"):
        w(f"   {name} =\n{_indent(_fmt(p[name]))}")
    w(f"   S_0 = {_fmt(ex.s0[0])} (the initial state, `s0` in code)")
    for t in range(n):
        w(f"   t={t + 1}: X_{t + 1} = {X[t, 0, 0]: .6f}   S_{t + 1} = {_fmt(S[t])}   Y_{t + 1} = {_fmt(Y[t])}")
    w("")
    w(f"2. Error at t={n} only: E_{n} = (d_{n} - Y_{n})^2")
    w(f"   d_{n} = {D[-1, 0, 0]: .6f},  Y_{n} = {Y[-1, 0]: .6f},  E_{n} = {ex.E:.9f}   "
      f"[net.gradients(X, D, at={n - 1})]")
    w("")
    w(f"3. Adjusting Wy:  dE_{n}/dWy = dE_{n}/dY_{n} . dY_{n}/dWy")
    w(f"   dE_{n}/dY_{n} = 2 (Y_{n} - d_{n}) = {_fmt(ex.dE_dY)}")
    w(f"   dY_{n}/dWy = g2'(Wy S_{n} + by) S_{n}^T, so dE_{n}/dWy = {_fmt(ex.hand['Wy'][-1])}")
    w(f"   library: {_fmt(g['Wy'])}   finite differences: {_fmt(ex.numeric['Wy'])}   "
      f"rel. err. {rel_err(g['Wy'], ex.numeric['Wy']):.1e}")
    w("")
    for k, name in enumerate(("Ws", "Wx")):
        label = "Ws (the tutorial calls it W_V on the left-hand side)" if name == "Ws" else "Wx"
        w(f"{4 + k}. Adjusting {label}:")
        w(f"   dE_{n}/d{name} = sum over i = {', '.join(str(i) for i in term_steps(name, n))} of  "
          f"dE_{n}/dY_{n} . dY_{n}/dS_{n} . dS_{n}/dS_{n - 1} ... dS_(i+1)/dS_i . dS_i/d{name}")
        if name == "Ws":
            w("   !! The tutorial's second term writes dY_3/dS_2; the output Y_3 depends on S_2 only through S_3,")
            w("   !! so the correct factor is dY_3/dS_3 . dS_3/dS_2, as in its first and third terms.")
        else:
            w("   !! The tutorial's general formula for Wx keeps dE_N/dW_S on its left-hand side; it is dE_N/dW_X.")
        w(f"   Here dS_i/d{name} is the immediate derivative (S_(i-1) held fixed): "
          f"diag(g1'(z_i)) (x) {'S_(i-1)' if name == 'Ws' else 'X_i'}.")
        for i in term_steps(name, n):
            hand = ex.hand[name][i - 1]
            w(f"   term i={i}: {chain_text(name, i, n)}")
            w(_indent(f"= {_fmt(hand)}  (|term| = {np.linalg.norm(hand):.3e})", 6))
            w(_indent(f"library row {i - 1} of gradient_terms(...)['{name}']: "
                      f"rel. err. {rel_err(terms[name][i - 1], hand):.1e}", 6))
        w(f"   sum of the {n} terms:\n{_indent(_fmt(ex.hand[name].sum(axis=0)))}")
        w(f"   library dE_{n}/d{name} [net.gradients(X, D, at={n - 1})]:\n{_indent(_fmt(g[name]))}")
        w(f"   central finite differences (rel. err. {rel_err(g[name], ex.numeric[name]):.1e}):\n"
          f"{_indent(_fmt(ex.numeric[name]))}")
        w("")
    w(f"6. dE_{n}/dS_i, the gradient that travels back in time  [gradient_terms(...)['dS']]")
    for i in range(n, 0, -1):
        w(f"   |dE_{n}/dS_{i}| = {np.linalg.norm(terms['dS'][i - 1]):.6e}   "
          f"(by hand: {np.linalg.norm(ex.dE_dS[i - 1]):.6e})")
    w("   Each step back multiplies by dS_t/dS_(t-1) = diag(g1'(z_t)) Ws. When its norm stays below 1 the terms")
    w("   shrink geometrically with the lag: the vanishing gradient the tutorial ends on. `bptt diagnose` measures")
    w("   it on longer sequences; truncated BPTT (`truncate=k`) keeps only the k newest terms of each sum.")
    w("   Pictures of these numbers: `bptt explain --figures DIR`; all of it on one page: `bptt explain --html FILE`.")
    return "\n".join(out)
