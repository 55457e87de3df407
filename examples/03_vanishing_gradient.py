"""How far back does the gradient reach? The seed's limit, measured on three fresh nets.

Run: python examples/03_vanishing_gradient.py
"""

import numpy as np

import bptt
from bptt.diagnostics import gradient_by_lag, recurrent_spectrum

rng = np.random.default_rng(0)
X = rng.standard_normal((50, 16, 1))  # 50 steps of noise, 16 streams
D = rng.standard_normal((50, 16, 1))
nets = {
    "tanh, uniform init (the seed)": bptt.Elman(1, 32, 1, g1="tanh", init="uniform"),
    "tanh, orthogonal Ws": bptt.Elman(1, 32, 1, g1="tanh", init="orthogonal"),
    "IRNN: relu, Ws = I": bptt.Elman(1, 32, 1, g1="relu", init="identity"),
}
for name, net in nets.items():
    prof = gradient_by_lag(net, X, D, at=-1)  # one loss term at the last step, followed back
    spec = recurrent_spectrum(net)
    print(f"{name:32s} rate {prof.decay_rate:.3f}/step, half-life {prof.half_life:.1f} steps, "
          f"effective memory {prof.effective_memory}{'+' if prof.censored else ''} steps, "
          f"largest singular value of Ws {spec['max_singular_value']:.2f}")
