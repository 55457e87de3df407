"""Memory-budgeted BPTT: sqrt checkpointing (Chen, Xu, Zhang & Guestrin 2016, "Training Deep Nets with
Sublinear Memory Cost"), for ``Network.gradients(..., max_states=M)``.

Full BPTT keeps everything the backward pass needs for all T steps: the hoisted input projection
(T, B, G*H), the hidden states (T, B, H), the cells' caches, the output layer's (T, B, O) arrays, the
injected dE/dh (T, B, H) and the pre-activation gradients (T, B, G*H): memory O(T).

Here the T steps are cut into K = ceil(T / L) segments of L = ceil(T / M) steps (the last may be
shorter), so K <= M. The first forward pass keeps only the carry entering each segment (the
checkpoints: at most M carries of n_carry x (B, H), i.e. h, and c for LSTM) and the loss. The backward
pass then visits the segments last to first; for each it recomputes, from its checkpoint, the input
projection, the L states with their caches and the output layer, back-propagates through them with the
gradient arriving from the later segment, adds the segment's weight gradients (one GEMM each per
segment) and frees the segment.

What M bounds, exactly:
- stored for the whole pass: at most M checkpoints (each one carry, n_carry x B x H numbers);
- live at any time besides them: one segment of L = ceil(T / M) steps (its projection, states,
  caches, output-layer arrays and gradients, the same arrays full BPTT keeps for T steps).
So at most M + ceil(T / M) hidden states (plus one segment's other per-step arrays) exist at once,
against T for full BPTT: for T = 10,000 and M = 100, 100 checkpoints + 100 live steps. The sum is
smallest at M ~ sqrt(T). A hard bound of M states in all (below 2 sqrt(T)) needs recursive
checkpointing with more recomputation (Gruslys et al. 2016); that is not done here.

Recomputation: one extra forward pass over every step (projection, recurrence, output layer and loss),
so the work is about forward + forward + backward instead of forward + backward.

Gradients equal full BPTT's to rounding (float64: relative error ~1e-15, tests check <= 1e-12). They
are not bitwise equal: the weight gradients are summed segment by segment instead of in one GEMM over
all steps, and the loss is summed per segment.

Covered: one unidirectional layer of any cell, full BPTT (``truncate`` None or reaching every step),
``at``, ``lengths``, ``resets``, ``s0``. Several layers or directions, and truncation, raise InputError.
"""

from __future__ import annotations

import math

import numpy as np

from . import loop, losses, validate
from .errors import InputError
from .gradients import Gradients


def plan(T: int, max_states: int) -> list[tuple[int, int]]:
    """The segments [(lo, hi), ...] (hi exclusive) for T steps under a budget of M checkpoints:
    ceil(T / ceil(T / M)) <= M segments of ceil(T / M) steps, the last possibly shorter."""
    L = math.ceil(T / max_states)
    return [(lo, min(T, lo + L)) for lo in range(0, T, L)]


def gradients(net, X, D, loss="squared", at=None, truncate=None, s0=None, lengths=None, resets=None,
              *, max_states):
    """``net.gradients(X, D, ..., max_states=M)``: the same (E, Gradients) as full BPTT, holding at
    most M checkpointed carries and one segment of ceil(T / M) steps. Arguments as
    ``Network.gradients``; max_states an int >= 1."""

    M = validate.integer("max_states", max_states, low=1)
    if net.layers != 1 or net.bidirectional:
        raise InputError(f"max_states: memory-budgeted BPTT covers one unidirectional layer; got layers="
                         f"{net.layers}, bidirectional={net.bidirectional}. Use max_states=None.")
    X, D = net._inputs(X, D, loss)
    T, B, _ = X.shape
    lens, mask, res = net._masks(T, B, lengths, resets)
    lmask = validate.loss_mask(at, T, B, lens, net.dtype)
    truncate = validate.integer("truncate", truncate, low=1, allow_none=True)
    if truncate is not None and truncate <= int(np.flatnonzero(lmask.any(axis=1)).max()):
        raise InputError(f"max_states: memory-budgeted BPTT computes full BPTT; got truncate={truncate}, "
                         "which cuts some terms short. Use truncate=None with max_states, or max_states=None.")
    cell = net.cell
    p = cell.prepare(net.views()[0][0])
    Wy, by = net.params["Wy"], net.params["by"]
    sl = lambda a, lo, hi: None if a is None else a[lo:hi]  # noqa: E731

    def run(lo, hi, carry):
        """Forward over steps lo..hi-1 from ``carry``: (h (n, B, H), final carry, trace, E, dZ)."""
        GX = cell.project(p, X[lo:hi])
        h, final, trace = loop.forward_layer(cell, p, GX, carry, sl(mask, lo, hi), sl(res, lo, hi))
        n = hi - lo
        Z = (h.reshape(n * B, -1) @ Wy.T).reshape(n, B, -1) + by
        E, _, dZ = losses.output_loss(loss, net.g2, Z, D[lo:hi], lmask[lo:hi])
        return h, final, trace, E, dZ

    segments = plan(T, M)
    # pass 1: the loss and the carry entering every segment
    checkpoints, E = [], 0.0
    carry = net._carry0(s0, B)[0][0]
    for lo, hi in segments:
        checkpoints.append(carry)
        _, carry, _, Ek, _ = run(lo, hi, carry)
        carry = tuple(c.copy() for c in carry)  # h_t is a view of the segment's state buffer: detach it
        E += Ek
    # pass 2: segments last to first, recomputed from their checkpoints
    g = {name: np.zeros(shape, net.dtype) for name, shape in cell.shapes(net.n_in, net.n_hidden).items()}
    dWy, dby = np.zeros_like(Wy), np.zeros_like(by)
    dcarry = None  # gradient reaching the end of the current segment from the later ones
    for k in range(len(segments) - 1, -1, -1):
        lo, hi = segments[k]
        h, _, trace, _, dZ = run(lo, hi, checkpoints[k])
        checkpoints[k] = None  # no longer needed
        n = hi - lo
        acc = loop.new_accum(cell, n, B, net.n_hidden, net.dtype, carries=False, empty=True)
        dtop = dZ @ Wy  # (n, B, H) injected dE/dh, consumed by the backward pass
        loop.backward_layer(cell, p, trace, dtop, 0, n - 1, acc, sl(mask, lo, hi), sl(res, lo, hi),
                            need_dgx=False, dcarry0=dcarry, fresh=True)
        dcarry = tuple(acc.ds0)
        for name, val in cell.weight_grads(X[lo:hi], loop.hidden_prev(trace), acc.dGX, acc.dGH).items():
            g[name] += val
        dWy += dZ.reshape(n * B, -1).T @ h.reshape(n * B, -1)
        dby += dZ.sum(axis=(0, 1))
    out = Gradients(g)
    out["Wy"], out["by"] = dWy, dby
    out["s0"] = net._state_out([[dcarry]], B)
    return E, out


__all__ = ["gradients", "plan"]
