"""Training with the library alone: a task, an optimiser, clipping, and a saved model.

Run: python examples/02_train_with_the_api.py [steps]
"""

import sys
import tempfile
from pathlib import Path

import numpy as np

import bptt
from bptt import optim
from bptt.data import get_task

steps = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
task = get_task("adding", length=10)  # Hochreiter & Schmidhuber's adding problem
net = bptt.Elman(task.n_in, 32, task.n_out, seed=0)
opt = optim.adam(optim.cosine(0.01, total_steps=steps))
state = opt.init(net.params)
rng = np.random.default_rng(0)  # all randomness from one explicit generator

for step in range(steps):
    X, D = task.batch(rng, 64)  # X (T, B, 2), D (T, B, 1); the loss sits at the last step
    E, g = net.gradients(X, D, loss=task.loss, at=task.at)
    g, norm = optim.clip_by_global_norm(g, 1.0)  # g's s0 (the initial state's gradient) is not a parameter: left out
    params, state = opt.update(net.params, g, state)
    net.set_params(params)
    if step % 500 == 0:
        print(f"step {step:5d}  E {E:.5f}  |grad| {norm:.3f}")

X, D = task.heldout(512, seed=0)
print("held-out:", {k: round(v, 4) for k, v in task.metric(net.forward(X).Y, D).items()})
with tempfile.TemporaryDirectory() as folder:  # removed with its file at the end of the block
    path = Path(folder) / "adding.npz"
    bptt.save(net, path, {"task": task.describe()})
    again = bptt.load(path)
same = all(np.array_equal(net.params[k], again.params[k]) for k in net.params)
print(f"saved and loaded {path.name}: identical = {same}")
