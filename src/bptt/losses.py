"""Losses over time, with a (T, B) mask that says which steps carry a loss term.

``squared``:        E = (1/B) sum_b sum_{t in at} sum_k (d_tbk - y_tbk)^2  (the seed's E_t = (d_t - Y_t)^2)
``cross_entropy``:  E = -(1/B) sum_b sum_{t in at} log y_tb[d_tb], y = softmax(z) (fused backward: y - onehot)

Both return dE/dZ, the gradient at the output layer's pre-activation Z = Wy S + by, so the caller
never has to know whether the output activation was fused into the loss.
"""

from __future__ import annotations

import numpy as np

from .activations import Activation
from .errors import InputError

LOSSES = ("squared", "cross_entropy")


def check_pair(loss: str, g2: Activation) -> None:
    """Which loss / output activation pairs are allowed.

    cross_entropy is defined on probabilities and is fused with softmax, so it needs g2='softmax'.
    squared works with every g2, softmax included (its backward uses the full softmax Jacobian).
    """
    if loss not in LOSSES:
        raise InputError(f"loss: unknown loss {loss!r}; expected one of {', '.join(LOSSES)}")
    if loss == "cross_entropy" and g2.name != "softmax":
        raise InputError(
            f"loss='cross_entropy' needs g2='softmax' (the two are fused); got g2={g2.name!r}. "
            "Build the net with g2='softmax' or use loss='squared'."
        )


def output_loss(loss: str, g2: Activation, Z, D, mask, batch: int | None = None):
    """Loss and dE/dZ.

    Z    (T, B, O) output pre-activations Wy S_t + by
    D    (T, B, O) float targets (squared) or (T, B) integer classes (cross_entropy)
    mask (T, B) 0/1 weights: which (step, stream) pairs carry a loss term
    batch: the B the loss is divided by, when these B streams are one part of a larger batch
    Returns (E: float, Y (T,B,O), dZ (T,B,O)).
    """
    B = Z.shape[1] if batch is None else batch
    w = (mask / B)[:, :, None]  # (T, B, 1)
    if loss == "squared":
        Y = g2.forward(Z)
        diff = Y - D
        dY = w * diff
        E = float(np.vdot(dY, diff))  # sum of w diff^2 (one call, no temporary)
        dY *= 2.0  # 2 w diff, bit for bit (a factor of 2 is exact)
        return E, Y, (dY if g2.name == "identity" else g2.backward(Y, dY))  # identity: g2' = 1
    # cross-entropy with softmax, computed stably: shift by the row maximum, exp, normalise, scale by
    # the weights; the picked log-probabilities are a gather (no full log-softmax array, no copy of Y)
    Zs = Z - Z.max(axis=-1, keepdims=True)  # (T, B, O) shifted logits
    Y = np.exp(Zs)
    total = Y.sum(axis=-1, keepdims=True)  # (T, B, 1)
    picked = np.take_along_axis(Zs, D[:, :, None], axis=-1) - np.log(total)  # (T, B, 1) log y[d]
    E = float(-np.sum(w * picked))
    Y /= total  # softmax probabilities
    dZ = Y * w  # (y - onehot(d)) w: the one-hot part subtracted at the picked entries only
    np.put_along_axis(dZ, D[:, :, None], np.take_along_axis(dZ, D[:, :, None], axis=-1) - w, axis=-1)
    return E, Y, dZ
