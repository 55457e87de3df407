"""Text from a character model: feed a prime through ``net.step``, then draw one character at a time.

Temperature ``tau``: the next character is drawn from softmax(log p / tau), computed in log space with
the largest term subtracted, so a tiny ``tau`` stays finite (it tends to the argmax); ``tau = 0`` is
greedy decoding (always the most likely character, ties to the lowest index). No copy of a cell's
math here: every step is ``net.step``, the code training uses.
"""

from __future__ import annotations

import math

import numpy as np

from .errors import InputError


def next_char_probabilities(y: np.ndarray, temperature: float) -> np.ndarray:
    """(V,) probabilities of the next character from the net's softmax output ``y`` (V,) at ``temperature``
    (> 0). Log space, max subtracted: no overflow, no 0/0, whatever the temperature."""
    logp = np.log(np.maximum(np.asarray(y, np.float64), 1e-300))
    with np.errstate(over="ignore"):  # a tiny temperature sends the others to -inf: exp gives exactly 0
        z = (logp - logp.max()) / temperature  # <= 0, the best is exactly 0
    p = np.exp(z)
    return p / p.sum()


def sample_text(net, length: int, prime: str = "", temperature: float = 1.0, seed: int = 0,
                vocab: str | None = None) -> str:
    """``length`` characters after ``prime`` (not included) from a text model whose vocabulary is ``vocab``
    (default: ``net.meta["task"]["vocab"]``, as a loaded model has it).

    temperature: 0 = greedy (argmax at every step), > 0 = softmax(log p / temperature) draws from a
    ``numpy`` Generator seeded with ``seed``. Without a prime, the first character is drawn uniformly
    (the argmax of nothing is undefined; greedy takes the vocabulary's first character)."""
    vocab = net.meta["task"]["vocab"] if vocab is None else vocab
    if isinstance(length, bool) or not isinstance(length, (int, np.integer)) or length < 1:
        raise InputError(f"--length: got {length!r}, expected a positive number of characters")
    if not (isinstance(temperature, (int, float)) and math.isfinite(temperature) and temperature >= 0):
        raise InputError(f"--temperature: got {temperature!r}, expected a finite number >= 0 (0 = always the most "
                         "likely character)")
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
    state, y = None, None
    code = (0 if temperature == 0 else int(rng.integers(V))) if not prime else None
    for c in prime:
        x[:] = 0
        x[0, index[c]] = 1
        y, state = net.step(x, state)
    out = []
    for _ in range(length):
        if y is not None:
            if temperature == 0:
                code = int(np.argmax(y[0]))
            else:
                code = int(rng.choice(V, p=next_char_probabilities(y[0], temperature)))
        out.append(vocab[code])
        x[:] = 0
        x[0, code] = 1
        y, state = net.step(x, state)
    return "".join(out)
