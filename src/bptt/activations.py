"""Activation functions g1 and g2, each paired with its derivative written from the forward output.

Writing the derivative from the output (``1 - Y**2`` for tanh, as scikit-learn does) means the backward
pass needs only what the forward pass already stored: no pre-activation has to be kept.

Registry: ``tanh``, ``sigmoid``, ``relu``, ``identity`` (for g1 and g2) and ``softmax`` (g2 only).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from .errors import InputError


def _tanh(z, out=None):
    return np.tanh(z, out=out)


def _tanh_grad(y):
    # d tanh(z)/dz = 1 - tanh(z)^2, from the output y = tanh(z)
    return 1.0 - y * y


def _sigmoid(z, out=None):
    # numerically safe logistic: exp of a non-positive number only
    out = np.empty_like(z) if out is None else out
    pos = z >= 0
    ez = np.exp(-np.abs(z))
    np.divide(1.0, 1.0 + ez, out=out, where=pos)
    np.divide(ez, 1.0 + ez, out=out, where=~pos)
    return out


def _sigmoid_grad(y):
    return y * (1.0 - y)


def _relu(z, out=None):
    return np.maximum(z, 0, out=out)


def _relu_grad(y):
    # the derivative at 0 is taken as 0, as in PyTorch
    return (y > 0).astype(y.dtype)


def _identity(z, out=None):
    if out is None:
        return z.copy()
    out[...] = z
    return out


def _identity_grad(y):
    return np.ones_like(y)


def _softmax(z, out=None):
    # over the last axis (the output features); shift by the max for stability
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    e /= e.sum(axis=-1, keepdims=True)
    if out is None:
        return e
    out[...] = e
    return out


@dataclass(frozen=True)
class Activation:
    """An activation g and its derivative g'(z) computed from y = g(z).

    ``elementwise`` is False only for softmax, whose Jacobian is not diagonal; its vector-Jacobian
    product is :func:`backward`.
    """

    name: str
    forward: Callable
    grad_from_output: Callable | None
    elementwise: bool = True
    bound: float = 1.0  # sup |g'(z)|: gamma in Pascanu et al. 2013 (inf for an unbounded slope)

    def backward(self, y, dy):
        """dE/dz given y = g(z) and dE/dy; shapes (..., n)."""
        if self.elementwise:
            return dy * self.grad_from_output(y)
        # softmax: J^T dy = y * (dy - <dy, y>)
        return y * (dy - np.sum(dy * y, axis=-1, keepdims=True))


ACTIVATIONS: dict[str, Activation] = {
    "tanh": Activation("tanh", _tanh, _tanh_grad, bound=1.0),
    "sigmoid": Activation("sigmoid", _sigmoid, _sigmoid_grad, bound=0.25),
    "relu": Activation("relu", _relu, _relu_grad, bound=1.0),
    "identity": Activation("identity", _identity, _identity_grad, bound=1.0),
    "softmax": Activation("softmax", _softmax, None, elementwise=False, bound=1.0),
}

HIDDEN_ACTIVATIONS = ("tanh", "sigmoid", "relu", "identity")


def get(name: str, *, role: str = "g1") -> Activation:
    """Look up an activation by name; ``role`` is 'g1' (hidden) or 'g2' (output) for the message."""
    if isinstance(name, Activation):
        return name
    allowed = HIDDEN_ACTIVATIONS if role == "g1" else tuple(ACTIVATIONS)
    if not isinstance(name, str) or name not in allowed:
        hint = " (softmax is an output activation: use it as g2)" if name == "softmax" else ""
        raise InputError(f"{role}: unknown activation {name!r}{hint}; expected one of {', '.join(allowed)}")
    return ACTIVATIONS[name]
