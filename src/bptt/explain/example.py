"""The seed tutorial's worked example as data: one seeded Elman net, N steps, one loss term E_N.

:func:`seed_example` is the single source of every number that ``bptt explain`` prints, draws
(:mod:`bptt.explain.figures`) and puts on its page (:mod:`bptt.explain.page`): the library's
gradient and its terms (``Network.gradients`` / ``Network.gradient_terms``), the same terms written
out by hand with the seed's chain rule, and central finite differences.

Steps are 1-based in the seed's notation (S_1 ... S_N); arrays are 0-based (row i-1 is step i).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..errors import InputError
from ..gradients import Gradients
from ..network import Elman

#: Largest N: beyond it the unrolled picture and the factor chains stop being readable.
MAX_STEPS = 8
#: The weights of the seed's system, in the order the tutorial adjusts them.
WEIGHTS = ("Wy", "Ws", "Wx")


class SeedExample(NamedTuple):
    """Everything about one run of the seed's example. Shapes: N steps, H hidden units, I = O = 1.

    net: the Elman net (its ``params``: Wx (H, 1), Ws (H, H), bs (H,), Wy (1, H), by (1,)).
    X, D: (N, 1, 1) inputs X_1..X_N and targets d_1..d_N (only d_N enters E_N).
    s0: (1, H) the initial state S_0.   S: (N, H) states S_1..S_N.   Y: (N, 1) outputs Y_1..Y_N.
    E: E_N = (d_N - Y_N)^2.   grads: ``net.gradients(X, D, at=N-1, s0=s0)``.
    terms: ``net.gradient_terms(...)`` (row i-1: the term of step i; ``terms["dS"]`` (N, 1, H): dE_N/dS_i).
    numeric: name -> central finite differences of E_N (eps 1e-6) for Wx, Ws, Wy.
    dE_dY: (1,) dE_N/dY_N = 2 (Y_N - d_N).   dE_dS: (N, H) dE_N/dS_i by the seed's chain rule.
    hand: name -> (N, *shape) every term by the chain rule, written out here (not by the library).
    """

    seed: int
    hidden: int
    g1: str
    g2: str
    steps: int
    net: Elman
    X: np.ndarray
    D: np.ndarray
    s0: np.ndarray
    S: np.ndarray
    Y: np.ndarray
    E: float
    grads: Gradients
    terms: Gradients
    numeric: dict
    dE_dY: np.ndarray
    dE_dS: np.ndarray
    hand: dict

    @property
    def command(self) -> str:
        """The ``bptt explain`` command line that prints this example."""
        return (f"bptt explain --seed {self.seed} --hidden {self.hidden} --steps {self.steps}"
                + (f" --g1 {self.g1}" if self.g1 != "tanh" else "")
                + (f" --g2 {self.g2}" if self.g2 != "identity" else ""))


def check_steps(steps) -> int:
    """N for the example: an int in 1..MAX_STEPS, else InputError."""
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or not 1 <= steps <= MAX_STEPS:
        raise InputError(f"--steps: got {steps!r}, expected a whole number of steps from 1 to {MAX_STEPS} "
                         f"(the seed's example uses 3; longer chains stop being readable)")
    return int(steps)


def factors(weight: str, i: int, n: int) -> list[tuple[str, str]]:
    """The seed's factor chain of term i (1-based) of dE_n/d``weight``, as (numerator, denominator) pairs.

    ``factors("Ws", 2, 3)`` -> [("E_3", "Y_3"), ("Y_3", "S_3"), ("S_3", "S_2"), ("S_2", "Ws")]:
    dE_3/dY_3 . dY_3/dS_3 . dS_3/dS_2 . dS_2/dWs. dWy has the one term i = n.
    """
    if weight == "Wy":
        return [(f"E_{n}", f"Y_{n}"), (f"Y_{n}", "Wy")]
    return ([(f"E_{n}", f"Y_{n}"), (f"Y_{n}", f"S_{n}")] + [(f"S_{t}", f"S_{t - 1}") for t in range(n, i, -1)]
            + [(f"S_{i}", weight)])


def chain_text(weight: str, i: int, n: int) -> str:
    """'dE_3/dY_3 . dY_3/dS_3 . dS_3/dWs': the factor chain in the seed's plain-text notation."""
    return " . ".join(f"d{a}/d{b}" for a, b in factors(weight, i, n))


def term_steps(weight: str, n: int) -> list[int]:
    """The 1-based steps i that carry a term of dE_n/d``weight``, newest first (Wy: only n)."""
    return [n] if weight == "Wy" else list(range(n, 0, -1))


def _finite_differences(net, X, D, s0, name, at, eps=1e-6):
    p = net.params[name]
    g = np.zeros_like(p)
    for idx in np.ndindex(p.shape):
        old = p[idx]
        p[idx] = old + eps
        ep = net.loss(X, D, at=at, s0=s0)
        p[idx] = old - eps
        em = net.loss(X, D, at=at, s0=s0)
        p[idx] = old
        g[idx] = (ep - em) / (2 * eps)
    return g


def seed_example(seed: int = 0, hidden: int = 2, g1: str = "tanh", g2: str = "identity",
                 steps: int = 3) -> SeedExample:
    """Build the seed's example: Elman(1, hidden, 1) with uniform init doubled (so every term is visible
    at 6 decimals), X, d uniform in [-1, 1], S_0 uniform in [-0.5, 0.5] (non-zero, so the i = 1 term of
    Ws is not zero), all drawn from ``numpy.random.default_rng(seed)``; the loss E_N at the last step.

    Raises InputError for hidden < 1, steps outside 1..MAX_STEPS or an unknown activation.
    """
    n = check_steps(steps)
    if isinstance(hidden, bool) or not isinstance(hidden, (int, np.integer)) or hidden < 1:
        raise InputError(f"--hidden: got {hidden!r}, expected a positive number of hidden units")
    rng = np.random.default_rng(seed)
    net = Elman(1, hidden, 1, g1=g1, g2=g2, seed=seed, init="uniform")
    for k in ("Wx", "Ws", "Wy"):
        net.params[k] = net.params[k] * 2.0
    X = rng.uniform(-1, 1, (n, 1, 1))
    D = rng.uniform(-1, 1, (n, 1, 1))
    s0 = rng.uniform(-0.5, 0.5, (1, hidden))
    at = n - 1
    fw = net.forward(X, s0=s0)
    S, Y = fw.S[:, 0], fw.Y[:, 0]
    E, grads = net.gradients(X, D, at=at, s0=s0)
    terms = net.gradient_terms(X, D, at=at, s0=s0)
    numeric = {k: _finite_differences(net, X, D, s0, k, at) for k in WEIGHTS}

    # the seed's chain rule, by hand: dE_N/dS_N, then one step back at a time through
    # dS_t/dS_{t-1} = diag(g1'(z_t)) Ws; dS_i/dW is the immediate derivative diag(g1'(z_i)) (x) input
    p, act1 = net.params, net.cell.g1
    dE_dY = 2 * (Y[at] - D[at, 0])
    dZ_out = net.g2.backward(Y[at], dE_dY)  # dE_N/d(Wy S_N + by)
    dE_dS = np.zeros((n, hidden))
    dE_dS[at] = dZ_out @ p["Wy"]
    for t in range(at, 0, -1):
        dE_dS[t - 1] = (dE_dS[t] * act1.grad_from_output(S[t])) @ p["Ws"]
    prev = np.vstack([s0, S[:-1]])
    hand = {"Wy": np.zeros((n, *p["Wy"].shape)), "Ws": np.zeros((n, *p["Ws"].shape)),
            "Wx": np.zeros((n, *p["Wx"].shape))}
    hand["Wy"][at] = np.outer(dZ_out, S[at])
    for t in range(n):
        dz = dE_dS[t] * act1.grad_from_output(S[t])
        hand["Ws"][t] = np.outer(dz, prev[t])
        hand["Wx"][t] = np.outer(dz, X[t, 0])
    return SeedExample(int(seed), int(hidden), g1, g2, n, net, X, D, s0, S, Y, float(E), grads, terms,
                       numeric, dE_dY, dE_dS, hand)


def rel_err(a, b) -> float:
    """||a - b|| / max(||a||, ||b||), 0 when both are zero."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    den = max(np.linalg.norm(a), np.linalg.norm(b))
    return 0.0 if den == 0 else float(np.linalg.norm(a - b) / den)
