"""Online gradient algorithms on the library's own cells: the gradient computed forward in time.

    rtrl      RTRL, exact (Williams & Zipser 1989)                       every cell, O(H^4) a step
    snapN     SnAp-n, sparse n-step RTRL (Menick et al. 2021), biased    every cell; snap1 O(H^2)
    uoro      UORO, rank-one unbiased (Tallec & Ollivier 2018)           every cell, O(H^2)
    kf-rtrl   KF-RTRL, Kronecker-factored unbiased (Mujika et al. 2018)  Elman, O(H^3)
    artbp     ARTBP, unbiased random truncation (Tallec & Ollivier 2017) every cell; artbp:C sets c

One interface (``base``): ``state = alg.init(net, B)``; ``E_t, g, state = alg.step(net, state, x_t, d_t)``.
``make("uoro", rng=numpy.random.default_rng(0))`` builds one from its name. Layers = 1, unidirectional.
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError
from .artbp import ARTBP
from .base import Algorithm
from .kfrtrl import KFRTRL
from .rtrl import RTRL
from .snap import SnAp
from .uoro import UORO

NAMES = ("rtrl", "snap1", "snap2", "snapN", "uoro", "kf-rtrl", "artbp", "artbp:C")


def make(spec: str, rng: np.random.Generator | None = None) -> Algorithm:
    """'rtrl', 'snap1' (any snapN), 'uoro', 'kf-rtrl', 'artbp' or 'artbp:C' (truncation probability C)."""
    if not isinstance(spec, str):
        raise InputError(f"online algorithm: got {spec!r}, expected a name such as {', '.join(NAMES)}")
    s = spec.strip().lower()
    if s == "rtrl":
        return RTRL(rng)
    if s == "uoro":
        return UORO(rng)
    if s in ("kf-rtrl", "kfrtrl"):
        return KFRTRL(rng)
    if s.startswith("snap") and s[4:].isdigit() and int(s[4:]) >= 1:
        return SnAp(int(s[4:]), rng)
    if s == "artbp" or s.startswith("artbp:"):
        c = 0.1
        if ":" in s:
            try:
                c = float(s.split(":", 1)[1])
            except ValueError:
                raise InputError(f"online algorithm: got {spec!r}, expected artbp:C with C a truncation "
                                 "probability in (0, 1), e.g. artbp:0.1") from None
        return ARTBP(c, rng)
    raise InputError(f"online algorithm: unknown {spec!r}; expected one of rtrl, snap1, snap2 (snapN), uoro, "
                     "kf-rtrl, artbp (artbp:C)")


__all__ = ["ARTBP", "KFRTRL", "RTRL", "SnAp", "UORO", "Algorithm", "NAMES", "make"]
