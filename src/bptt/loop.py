"""The time loop, written once for every cell: forward over time, and backward over time windows.

Full BPTT is one window [0, T-1] with the loss injected at every loss step. Truncated BPTT
(``truncate=k``) is one window per loss step t, [t-k+1, t], with only E_t injected; the state before a
window is a constant. Williams & Peng's BPTT(k1, k2) is a window of k2 steps with the loss of its last k1
steps injected. Stacked layers and both directions run through the same two functions.

Per (layer, direction) the backward accumulates dE/dGX_t and dE/dGH_t (T, B, G*H) and dE/dcarry_t; the
weight gradients are then single GEMMs over all steps (``Cell.weight_grads``), or per-step rows
(``Cell.weight_terms``) for the seed's term-by-term sum.

Masks: ``mask (T, B)`` bool, False where a step lies past a sequence's length: the carry passes through
unchanged and no gradient enters the step. ``reset (T, B)`` bool, True where a stream's state is reset to
zeros before step t: no gradient flows back across the reset.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class LayerTrace(NamedTuple):
    """What the forward pass of one layer and direction keeps for the backward pass."""

    caches: list  # per time index t: the cell's cache of step t
    prev: list  # per time index t: the carry tuple step t read (after any reset)
    hprev: np.ndarray | None = None  # (T, B, H) view: h_{t-1} read by step t, when no reset made a copy


class StackTrace(NamedTuple):
    inputs: list  # per layer: (T, B, I_l), the layer's input (X for layer 0)
    outputs: list  # per layer: (T, B, D*H), the layer's output (directions concatenated)
    traces: list  # per layer, per direction: LayerTrace
    final: list  # per layer, per direction: the carry tuple after the last processed step


class Accum(NamedTuple):
    """Backward accumulators of one layer and direction."""

    dGX: np.ndarray  # (T, B, G*H) dE/d(input part of the pre-activation)
    dGH: np.ndarray  # (T, B, G*H) dE/d(recurrent part); the same array as dGX when ``cell.tied_dgh``
    dcarry: list | None  # per carry component: (T, B, H), total dE/d(carry_t) (dS for h, dC for c);
    #                      None when not asked for (``gradients`` needs only dGX, dGH and ds0)
    ds0: list  # per carry component: (B, H), gradient reaching the initial carry


def _order(T: int, reverse: bool):
    return range(T - 1, -1, -1) if reverse else range(T)


def forward_layer(cell, p, GX, carry0, mask=None, reset=None, reverse=False, keep=True):
    """Run one layer over time.

    GX (T, B, G*H) the hoisted input part; carry0 tuple of (B, H); mask, reset (T, B) bool or None.
    Returns (H (T, B, H) the hidden outputs, the final carry, LayerTrace). ``keep=False`` keeps nothing
    but the running carry (for ``bptt.memory``'s sweeps): returns (None, the final carry, None).
    """
    T, B = GX.shape[:2]
    H = carry0[0].shape[1]
    if not keep:
        # a ``step_out`` cell writes h_t into two rows used in turn (step t reads the other one)
        rows = np.empty((2, B, H), dtype=GX.dtype) if cell.step_out and mask is None else None
        carry = carry0
        for i, t in enumerate(_order(T, reverse)):
            if reset is not None and reset[t].any():
                r = reset[t][:, None]
                carry = tuple(np.where(r, 0, c) for c in carry)
            new, _ = cell.step(p, GX[t], carry) if rows is None else cell.step(p, GX[t], carry, out=rows[i % 2])
            if mask is not None and not mask[t].all():
                m = mask[t][:, None]
                new = tuple(np.where(m, n, c) for n, c in zip(new, carry))
            carry = new
        return None, carry, None
    # one (T+1, B, H) buffer holds h_0 .. h_T with the initial h at the start (end when reverse), so
    # the output and the h_{t-1} of every step are views of it: no stacking copy for the weight GEMM
    hs = np.empty((T + 1, B, H), dtype=GX.dtype)
    out, hprev = (hs[:T], hs[1:]) if reverse else (hs[1:], hs[:T])
    hs[T if reverse else 0] = carry0[0]
    # a cell with ``step_out`` writes h_t straight into its row of the buffer (no per-step allocation)
    into = cell.step_out and mask is None
    caches, prev = [None] * T, [None] * T
    carry = carry0
    zeros = None
    for t in _order(T, reverse):
        if reset is not None and reset[t].any():
            r = reset[t][:, None]
            zeros = zeros or tuple(np.zeros_like(c) for c in carry0)
            carry = tuple(np.where(r, z, c) for z, c in zip(zeros, carry))
            hprev = None  # a reset step read zeros, not the buffer's h_{t-1}
        if into:
            new, caches[t] = cell.step(p, GX[t], carry, out=out[t])
        else:
            new, caches[t] = cell.step(p, GX[t], carry)
            if mask is not None and not mask[t].all():
                m = mask[t][:, None]
                new = tuple(np.where(m, n, c) for n, c in zip(new, carry))
            out[t] = new[0]
        prev[t] = carry
        carry = new
    return out, carry, LayerTrace(caches, prev, hprev)


def new_accum(cell, T, B, H, dtype, carries=True, empty=False) -> Accum:
    """Zeroed accumulators; ``carries=False`` skips the (T, B, H) dE/dcarry_t arrays; ``empty=True``
    leaves dGX and dGH uninitialised, for one window over all steps that writes every row once."""
    G = cell.gates * H
    new = np.empty if empty else np.zeros  # fresh pages are costly: do not zero what is overwritten
    dGX = new((T, B, G), dtype)
    return Accum(
        dGX,
        dGX if cell.tied_dgh else new((T, B, G), dtype),
        [np.zeros((T, B, H), dtype) for _ in range(cell.n_carry)] if carries else None,
        [np.zeros((B, H), dtype) for _ in range(cell.n_carry)],
    )


def backward_layer(cell, p, trace, dH, lo, hi, acc, mask=None, reset=None, reverse=False, need_dgx=True,
                   dcarry0=None, fresh=False):
    """Back-propagate one layer through the steps lo..hi (inclusive), states outside are constants.

    dH (hi-lo+1, B, H): dE/dh_t injected from above (loss or the next layer), aligned with lo..hi; it is
    overwritten in place with the total dE/dh_t (injected plus carried back), so pass a scratch array.
    dcarry0: tuple of (B, H), the gradient reaching the window's last carry from beyond it (zeros when
    None; ``bptt.memory`` chains segments with it). Adds into ``acc`` (writes, when ``fresh``: no other
    window has touched rows lo..hi of acc.dGX and acc.dGH); returns dGX over the window (hi-lo+1, B, G*H)
    for the layer below, or None when ``need_dgx`` is False (nothing below needs it).
    """
    n, B, H = dH.shape
    T = len(trace.caches)
    if fresh:
        dGX = acc.dGX[lo : hi + 1]  # the window's own values are what acc will hold
    else:
        dGX = np.empty((n, B, cell.gates * H), dtype=dH.dtype) if need_dgx else None
    dcarry = dcarry0 if dcarry0 is not None else tuple(np.zeros((B, H), dtype=dH.dtype) for _ in range(cell.n_carry))
    tied = acc.dGH is acc.dGX  # one accumulator serves both (``cell.tied_dgh``)
    # backward visits the window against the processing order
    steps = range(lo, hi + 1) if reverse else range(hi, lo - 1, -1)
    for t in steps:
        i = t - lo
        dh = dH[i]
        dh += dcarry[0]  # in place: dH[i] becomes the total dE/dh_t
        dcarry = (dh,) + dcarry[1:]
        if acc.dcarry is not None:
            for k, d in enumerate(dcarry):
                acc.dcarry[k][t] += d  # total dE/d(carry_t): dE/dS_t in the seed's notation
        if mask is not None and not mask[t].all():
            m = mask[t][:, None]
            keep = tuple(d * ~m for d in dcarry)  # streams past their length: pass straight through
            dgx, dgh, dprev = cell.step_back(p, trace.caches[t], trace.prev[t], tuple(d * m for d in dcarry))
            dprev = tuple(a + b for a, b in zip(dprev, keep))
        else:
            dgx, dgh, dprev = cell.step_back(p, trace.caches[t], trace.prev[t], dcarry)
        if reset is not None and reset[t].any():
            r = ~reset[t][:, None]  # the state before a reset is not used: no gradient to it
            dprev = tuple(d * r for d in dprev)
        if fresh:
            acc.dGX[t] = dgx
            if not tied:
                acc.dGH[t] = dgh
        else:
            if need_dgx:
                dGX[i] = dgx
            acc.dGX[t] += dgx
            if not tied:
                acc.dGH[t] += dgh
        dcarry = dprev
    first = T - 1 if reverse else 0
    if (hi if reverse else lo) == first:
        for k, d in enumerate(dcarry):
            acc.ds0[k][...] += d
    return dGX


def stack_forward(cell, views, X, carry0, mask=None, reset=None) -> StackTrace:
    """Forward through L layers x D directions. views[l][d]: the cell's params; carry0[l][d]: tuple."""
    inputs, outputs, traces, final = [], [], [], []
    inp = X
    views = [[cell.prepare(p) for p in dirs] for dirs in views]
    for l, dirs in enumerate(views):
        outs, trs, fin = [], [], []
        for d, p in enumerate(dirs):
            GX = cell.project(p, inp)
            h, cT, tr = forward_layer(cell, p, GX, carry0[l][d], mask, reset, reverse=d == 1)
            outs.append(h)
            trs.append(tr)
            fin.append(cT)
        inputs.append(inp)
        inp = outs[0] if len(outs) == 1 else np.concatenate(outs, axis=-1)
        outputs.append(inp)
        traces.append(trs)
        final.append(fin)
    return StackTrace(inputs, outputs, traces, final)


def stack_backward(cell, views, trace: StackTrace, windows, mask=None, reset=None, carries=True):
    """Backward through the stack over each window (lo, hi, dtop), dtop (hi-lo+1, B, D*H) the gradient
    injected into the top layer's output (overwritten: see ``backward_layer``). Returns accumulators per
    layer and direction; ``carries=False`` leaves out their per-step dE/dcarry arrays."""
    T, B = trace.inputs[0].shape[:2]
    H = trace.traces[0][0].prev[0][0].shape[1]
    dtype = trace.outputs[-1].dtype
    views = [[cell.prepare(p) for p in dirs] for dirs in views]
    single = len(windows) == 1 and windows[0][:2] == (0, T - 1)  # full BPTT: every row written once
    accs = [[new_accum(cell, T, B, H, dtype, carries, empty=single) for _ in dirs] for dirs in views]
    for lo, hi, dtop in windows:
        d_in = dtop
        for l in range(len(views) - 1, -1, -1):
            dX = None
            for d, p in enumerate(views[l]):
                dH = d_in if len(views[l]) == 1 else d_in[..., d * H : (d + 1) * H]
                dgx = backward_layer(cell, p, trace.traces[l][d], dH, lo, hi, accs[l][d], mask, reset, d == 1,
                                     need_dgx=l > 0, fresh=single)
                if l > 0:  # dE/d(input of this layer) = dGX W_in: the injection for the layer below
                    contrib = dgx @ p[cell.w_in]
                    dX = contrib if dX is None else dX + contrib
            d_in = dX
    return accs


def hidden_prev(trace: LayerTrace) -> np.ndarray:
    """(T, B, H): the hidden state each step read, h_{t-1} (after resets); a view when no reset."""
    if trace.hprev is not None:
        return trace.hprev
    return np.stack([c[0] for c in trace.prev])
