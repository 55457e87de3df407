"""Memory-budgeted BPTT for ``Network.gradients(..., max_states=M)``: two checkpointing schemes.

Full BPTT keeps everything the backward pass needs for all T steps: the hoisted input projection
(T, B, G*H), the hidden states (T, B, H), the cells' caches, the output layer's (T, B, O) arrays, the
injected dE/dh (T, B, H) and the pre-activation gradients (T, B, G*H): memory O(T).

``bound="soft"`` (the default): sqrt checkpointing (Chen, Xu, Zhang & Guestrin 2016, "Training Deep Nets
with Sublinear Memory Cost"). The T steps are cut into K = ceil(T / L) segments of L = ceil(T / M) steps
(the last may be shorter), so K <= M. A first pass runs the recurrence alone (input projection and
cell steps; no output layer, no loss) and keeps only the carry entering each segment (the checkpoints:
at most M carries, i.e. h, and c for LSTM) plus the last segment's whole trace. The backward pass then
visits the segments last to first; for each it recomputes, from its checkpoint, the input projection
and the L states with their caches (the last segment is not recomputed: its trace is kept from the
first pass), runs the output layer and the loss on them, back-propagates with the gradient arriving
from the later segment, adds the segment's weight gradients (one GEMM each per segment) and frees it.
What M bounds: at most M checkpoints for the whole pass, and besides them one live segment of
ceil(T / M) steps (its projection, states, caches, output-layer arrays and gradients). So at most
M + ceil(T / M) hidden states exist at once, against T for full BPTT (T = 10,000, M = 100: 100 + 100).
Work: one extra pass of the recurrence (not of the output layer or the loss, which run once, in the
backward pass), less the last segment.

``bound="hard"``: M counts every hidden state held at any time, as in Gruslys, Munos, Danihelka, Lanctot
& Graves 2016 ("Memory-Efficient Backpropagation Through Time"): checkpoints, the states of the steps
held for back-propagation, and the running state of a recomputation sweep. One "state" is one step's
carry (h, and c for LSTM) together with the cell's cache of that step. Recursive checkpointing over
d levels: at each level a stretch of steps is cut into at most k pieces; a sweep from the stretch's
checkpoint stores the carry entering each piece, then the pieces are processed last to first, each one
recursively; at the bottom, pieces of at most L steps are recomputed with their caches and
back-propagated. The states held never exceed 1 + d (k - 1) + L (the initial state, k - 1 checkpoints
per level, one live piece), and the plan (``hard_plan``) takes the fewest levels d whose equal split
k^d * L >= T fits in M: every level costs one more sweep of the recurrence, so the work is about
(d + 1) forward passes plus one backward pass (T = 10,000, M = 100: d = 2, k = 22, L = 21, at most 64
states; three passes of the recurrence). Gruslys et al. choose each split by dynamic programming to
minimise the recomputation for exactly M slots; the equal splits here are simpler and use no more than
M states, at the price of some extra recomputation. The gradients (B, H) flowing back are not states
and are not counted; neither are the weights and their gradient accumulators.

Gradients equal full BPTT's to rounding in both schemes (float64: relative error ~1e-15, tests check
<= 1e-12). They are not bitwise equal: the weight gradients are summed piece by piece instead of in one
GEMM over all steps, and the loss is summed per piece.

Covered: one unidirectional layer of any cell, full BPTT (``truncate`` None or reaching every step),
``at``, ``lengths``, ``resets``, ``s0``, float or integer (class-code) inputs. Several layers or
directions, and truncation, raise InputError.
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


BOUNDS = ("soft", "hard")


def hard_plan(T: int, max_states: int) -> tuple[int, int, int]:
    """(d, k, L) for ``bound="hard"``: d levels of at most k pieces, pieces of at most L = ceil(T / k^d)
    steps at the bottom, holding at most 1 + d (k - 1) + L states. The fewest levels d that fit in M
    (each level is one more sweep of the recurrence), and for that d the k holding the fewest states.
    d = 0 (no recomputation) when T + 1 <= M. InputError naming the smallest M that fits otherwise."""
    if T + 1 <= max_states:
        return 0, 1, T
    best = None  # (states, d, k, L), the smallest over every plan: for the error message
    for d in range(1, max(1, T.bit_length()) + 1):
        fits = []
        for k in range(2, math.ceil(T ** (1 / d)) + 2):
            L = math.ceil(T / k**d)
            states = 1 + d * (k - 1) + L
            fits.append((states, d, k, L))
        here = min(fits)
        best = here if best is None or here < best else best
        if here[0] <= max_states:
            return here[1:]
    raise InputError(f"max_states: got {max_states} with bound='hard', too few for T = {T} steps (the initial "
                     f"state, the checkpoints of every level and one live step must fit); expected at least "
                     f"{best[0]}, or bound='soft'")


class StateCounter:
    """Instrumentation of ``bound="hard"``: hidden states held now and at most (``peak``)."""

    def __init__(self):
        self.now = self.peak = 0

    def take(self, n: int = 1):
        self.now += n
        self.peak = max(self.peak, self.now)

    def give(self, n: int = 1):
        self.now -= n


def gradients(net, X, D, loss="squared", at=None, truncate=None, s0=None, lengths=None, resets=None,
              *, max_states, bound="soft", counter: StateCounter | None = None):
    """``net.gradients(X, D, ..., max_states=M, bound=...)``: the same (E, Gradients) as full BPTT under
    a memory budget of M (see the module docstring). Arguments as ``Network.gradients``; max_states an
    int >= 1; ``counter``: a StateCounter to record the states held (bound="hard")."""

    M = validate.integer("max_states", max_states, low=1)
    if not isinstance(bound, str) or bound not in BOUNDS:
        raise InputError(f"bound: got {bound!r}, expected 'soft' (M checkpoints plus one segment of ceil(T/M) "
                         "steps) or 'hard' (at most M states in all)")
    if net.layers != 1 or net.bidirectional:
        raise InputError(f"max_states: memory-budgeted BPTT covers one unidirectional layer; got layers="
                         f"{net.layers}, bidirectional={net.bidirectional}. Use max_states=None.")
    X, D = net._inputs(X, D, loss)
    T, B = X.shape[:2]
    lens, mask, res = net._masks(T, B, lengths, resets)
    lmask = validate.loss_mask(at, T, B, lens, net.dtype)
    truncate = validate.integer("truncate", truncate, low=1, allow_none=True)
    if truncate is not None and truncate <= int(np.flatnonzero(lmask.any(axis=1)).max()):
        raise InputError(f"max_states: memory-budgeted BPTT computes full BPTT; got truncate={truncate}, "
                         "which cuts some terms short. Use truncate=None with max_states, or max_states=None.")
    plan_hard = hard_plan(T, M) if bound == "hard" else None
    run = _Run(net, X, D, loss, lmask, mask, res)
    carry0 = net._carry0(s0, B)[0][0]
    if bound == "soft":
        dcarry = _soft(run, T, M, carry0)
    else:
        counter = counter if counter is not None else StateCounter()
        counter.take()  # the initial state
        d, k, L = plan_hard
        dcarry = _hard(run, 0, T, carry0, d, k, L, counter, None)
        counter.give()
    out = Gradients(run.g)
    out["Wy"], out["by"] = run.dWy, run.dby
    out["s0"] = net._state_out([[dcarry]], B)
    return run.E, out


class _Run:
    """What every piece of a budgeted pass shares: the net's arrays, the data and the accumulators."""

    def __init__(self, net, X, D, loss, lmask, mask, res):
        self.net, self.X, self.D, self.loss, self.lmask, self.mask, self.res = net, X, D, loss, lmask, mask, res
        self.cell = net.cell
        self.p = net.cell.prepare(net.views()[0][0])
        self.Wy, self.by = net.params["Wy"], net.params["by"]
        self.g = {name: np.zeros(shape, net.dtype) for name, shape in self.cell.shapes(net.n_in, net.n_hidden).items()}
        self.dWy, self.dby = np.zeros_like(self.Wy), np.zeros_like(self.by)
        self.E = 0.0

    def sl(self, a, lo, hi):
        return None if a is None else a[lo:hi]

    def forward(self, lo, hi, carry, keep=True):
        """The recurrence over steps lo..hi-1 from ``carry``: (h (n, B, H) or None, final carry, trace)."""
        GX = self.cell.project(self.p, self.X[lo:hi])
        return loop.forward_layer(self.cell, self.p, GX, carry, self.sl(self.mask, lo, hi), self.sl(self.res, lo, hi),
                                  keep=keep)

    def backward(self, lo, hi, h, trace, dcarry):
        """Output layer, loss and back-propagation of the kept steps lo..hi-1 (trace from ``forward``),
        with ``dcarry`` arriving from step hi; adds to the gradients and E. Returns dE/d(carry at lo)."""
        net, n, B = self.net, hi - lo, h.shape[1]
        Z = (h.reshape(n * B, -1) @ self.Wy.T).reshape(n, B, -1) + self.by
        E, _, dZ = losses.output_loss(self.loss, net.g2, Z, self.D[lo:hi], self.lmask[lo:hi])
        self.E += E
        acc = loop.new_accum(self.cell, n, B, net.n_hidden, net.dtype, carries=False, empty=True)
        dtop = dZ @ self.Wy  # (n, B, H) injected dE/dh, consumed by the backward pass
        loop.backward_layer(self.cell, self.p, trace, dtop, 0, n - 1, acc, self.sl(self.mask, lo, hi),
                            self.sl(self.res, lo, hi), need_dgx=False, dcarry0=dcarry, fresh=True)
        for name, val in self.cell.weight_grads(self.X[lo:hi], loop.hidden_prev(trace), acc.dGX, acc.dGH,
                                                net.n_in).items():
            self.g[name] += val
        self.dWy += dZ.reshape(n * B, -1).T @ h.reshape(n * B, -1)
        self.dby += dZ.sum(axis=(0, 1))
        return tuple(acc.ds0)


def _detach(carry):
    return tuple(c.copy() for c in carry)  # h_t may be a view of a segment's state buffer


def _soft(run: _Run, T: int, M: int, carry) -> tuple:
    segments = plan(T, M)
    # pass 1: the recurrence alone, keeping the carry entering every segment and the last segment whole
    checkpoints = []
    for lo, hi in segments[:-1]:
        checkpoints.append(carry)
        _, carry, _ = run.forward(lo, hi, carry, keep=False)
    checkpoints.append(carry)
    lo, hi = segments[-1]
    last = run.forward(lo, hi, carry)
    # pass 2: segments last to first, recomputed from their checkpoints (the last one is at hand)
    dcarry = None  # gradient reaching the end of the current segment from the later ones
    for k in range(len(segments) - 1, -1, -1):
        lo, hi = segments[k]
        h, _, trace = last if k == len(segments) - 1 else run.forward(lo, hi, checkpoints[k])
        last = checkpoints[k] = None  # no longer needed
        dcarry = run.backward(lo, hi, h, trace, dcarry)
    return dcarry


def _hard(run: _Run, lo: int, hi: int, carry, d: int, k: int, L: int, counter: StateCounter, dcarry) -> tuple:
    """Back-propagate steps lo..hi-1 from ``carry`` (a checkpoint the caller holds and has counted) with
    d levels left; returns dE/d(carry)."""
    n = hi - lo
    if d == 0 or n <= L:
        counter.take(n)  # the live piece: n states with their caches
        h, _, trace = run.forward(lo, hi, carry)
        dcarry = run.backward(lo, hi, h, trace, dcarry)
        counter.give(n)
        return dcarry
    size = math.ceil(n / k)
    starts = list(range(lo, hi, size))
    # sweep: from the checkpoint to the start of the last piece, storing the carry entering each piece;
    # the running state is projected and stepped in stretches of at most L steps
    ckpts = [carry]
    counter.take()  # the running state
    run_carry = carry
    for a, b in zip(starts[:-1], starts[1:]):
        for c in range(a, b, L):
            _, run_carry, _ = run.forward(c, min(b, c + L), run_carry, keep=False)
        run_carry = _detach(run_carry)
        ckpts.append(run_carry)
        counter.take()
    counter.give()  # the sweep ends on the last checkpoint: no running state apart from it
    for i in range(len(starts) - 1, -1, -1):
        end = starts[i + 1] if i + 1 < len(starts) else hi
        dcarry = _hard(run, starts[i], end, ckpts[i], d - 1, k, L, counter, dcarry)
        if i > 0:
            ckpts[i] = None
            counter.give()
    return dcarry


__all__ = ["BOUNDS", "StateCounter", "gradients", "hard_plan", "plan"]
