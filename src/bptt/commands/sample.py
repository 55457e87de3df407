"""``bptt sample DIR --length N [--prime TEXT] [--temperature X] [--seed S]``: text from a character model."""

from __future__ import annotations

import numpy as np


def add_parser(sub):
    p = sub.add_parser("sample", help="generate text from a character model", description=__doc__)
    p.add_argument("dir", help="run folder (or model .npz file) of a text model")
    p.add_argument("--length", type=int, default=300, help="characters to generate (default 300)")
    p.add_argument("--prime", default="", help="text to start from (its characters must be in the vocabulary)")
    p.add_argument("--temperature", type=float, default=0.8, help="> 0; lower is more conservative (default 0.8)")
    p.add_argument("--seed", type=int, default=0, help="seed of the sampling (default 0)")
    p.set_defaults(run=run)


def sample_text(net, length: int, prime: str = "", temperature: float = 1.0, seed: int = 0) -> str:
    """Feed ``prime`` through the net with ``net.step``, then draw ``length`` characters one at a time
    from softmax(log p / temperature). Uses the same cell code as training: no forward pass copied here."""
    from ..errors import InputError

    vocab = net.meta["task"]["vocab"]
    if not length >= 1:
        raise InputError(f"--length: got {length}, expected a positive number of characters")
    if not (temperature > 0 and np.isfinite(temperature)):
        raise InputError(f"--temperature: got {temperature}, expected a finite number > 0")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InputError(f"--seed: got {seed!r}, expected an integer >= 0")
    index = {c: i for i, c in enumerate(vocab)}
    for i, c in enumerate(prime):
        if c not in index:
            raise InputError(f"--prime: character {c!r} (U+{ord(c):04X}) at position {i} is not in the model's "
                             f"vocabulary of {len(vocab)} characters; remove or replace it")
    rng = np.random.default_rng(seed)
    V = len(vocab)
    x = np.zeros((1, V), net.dtype)
    state = None
    code = int(rng.integers(V)) if not prime else None
    y = None
    for c in prime:
        x[:] = 0
        x[0, index[c]] = 1
        y, state = net.step(x, state)
    out = []
    for _ in range(length):
        if y is not None:
            logits = np.log(np.maximum(y[0].astype(np.float64), 1e-300)) / temperature
            p = np.exp(logits - logits.max())
            code = int(rng.choice(V, p=p / p.sum()))
        out.append(vocab[code])
        x[:] = 0
        x[0, code] = 1
        y, state = net.step(x, state)
    return "".join(out)


def run(args) -> int:
    from ..errors import InputError
    from ._load import load_model

    net = load_model(args.dir)
    if net.meta["task"]["name"] != "text":
        raise InputError(f"{args.dir!r} holds a model of the {net.meta['task']['name']} task; sample needs a text model "
                         "(bptt train text ...)")
    print(args.prime + sample_text(net, args.length, args.prime, args.temperature, args.seed))
    return 0
