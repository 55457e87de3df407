"""``backend="numba"``: one forward + backward pass with the recurrences as compiled loops.

Only the two recurrences must walk time step by step; they run compiled (``numba_elman``, ``numba_lstm``,
``numba_gru``: per step one product on the recurrent weights packed once per pass (``microkernel``;
for one row ``onerow`` on the weights as they are; ``blas``) and one fused pass over the (B, H) units, no
Python in between), split over threads by rows of the batch (``shards``). Everything else is done once for
all steps with the library's own NumPy code, as in ``bptt.loop``: the hoisted input projection
(``Cell.project``), the output layer and its loss (``losses.output_loss``), and the weight gradients as
single GEMMs (``Cell.weight_grads``):

    NumPy     GX = Cell.project(X)                                 (T, B, G*H)
    compiled  h_t = step(GX_t, h_{t-1}),  t = 0 .. T-1
    NumPy     Z = S Wy^T + by; E, dZ = losses.output_loss(...); dH = dZ Wy
    compiled  dE/dGX_t, dE/dGH_t = step_back(...),  t = T-1 .. 0
    NumPy     Cell.weight_grads(X, h_{t-1}, dGX, dGH); dWy = dZ^T S; dby = sum dZ

Summation orders differ from the NumPy loop's, and tanh and the sigmoid come from ``bptt.fast.mathfn``
(within 2 ulp of NumPy's), so results equal ``backend="numpy"`` to rounding (float64: relative error
around 1e-15), not bitwise. Every array is in the net's dtype.
"""

from __future__ import annotations

import os
import threading

import numpy as np

from .. import codes, losses, products
from . import G1_CODES, blas, kernel_cache, microkernel, numba_codes, numba_elman, numba_gru, numba_lstm
from .mathfn import consts

# before the first call: drop cached kernels compiled from other sources (see kernel_cache)
kernel_cache.drop_stale([numba_elman.forward_recurrence, numba_elman.backward_recurrence, numba_lstm.forward,
                         numba_lstm.backward, numba_gru.forward, numba_gru.backward, numba_codes.scatter_rows,
                         microkernel.pack])


class _Scratch(threading.local):
    key = None
    arrays: dict = {}


_SCRATCH = _Scratch()


def workspace(key):
    """The scratch arrays of a call (GX, the states, dE/dh, ...), kept per thread for the next call with
    the same ``key`` (cell, T, B, H, G*H, dtype), so that a training loop reuses them. Fresh arrays cost
    a page fault per 4 KiB page on every call (numba's and NumPy's large allocations are new memory
    mappings): 2,457 faults a call at config C, 22,887 at E (LSTM), 8-10 % of E's time. The arrays hold
    nothing a caller keeps: every returned gradient is a new array. Returns ``buf(name, shape)``."""
    s = _SCRATCH
    if s.key != key:
        s.key, s.arrays = key, {}
    arrays = s.arrays

    def buf(name, shape):
        a = arrays.get(name)
        if a is None or a.shape != shape:
            a = arrays[name] = np.empty(shape, np.dtype(key[-1]))
        return a

    return buf


def _project(cell, p, X, GX):
    """GX (T, B, G*H) = x_t W_in^T + the biases the loops expect (into the given array): the cell's
    projection; for the LSTM both biases, a_t = x_t W_ih^T + (b_ih + b_hh) + h_{t-1} W_hh^T, in one pass
    (or in the integer inputs' lookup table)."""
    if cell.name != "lstm":
        return cell.project(p, X, out=GX)
    T, B, G = GX.shape
    bias = p["b_ih"] + p["b_hh"]
    if codes.is_codes(X):
        return codes.project(p["W_ih"], bias, X, out=GX)
    products.matmul(X.reshape(T * B, -1), p["W_ih"].T, out=GX.reshape(T * B, G))
    GX += bias
    return GX


def _forward(net, X, carry, buf):
    """The forward recurrence, into arrays from ``buf(name, shape)``. Returns (W_rec, C, GX, hs, saved):
    GX (T, B, G*H) overwritten with what the backward loop reads (the gates), hs (T+1, B, H) with hs[0] the
    initial h, saved what else it reads: (cs, tcs) for the LSTM, (ghn,) for the GRU, () for Elman."""
    cell, p = net.cell, net.views()[0][0]
    T, B = X.shape[:2]
    C = consts(net.dtype)
    W = np.ascontiguousarray(p[cell.w_rec])
    # W^T packed for the forward products (blas.matmul_t; one-row ones read W itself)
    WT = blas.packed(B, W.T, lambda shape: buf("WTp", shape))
    h0 = np.ascontiguousarray(carry[0])
    H, G = h0.shape[1], W.shape[0]  # G = gates * H
    GX = _project(cell, p, X, buf("GX", (T, B, G)))
    hs = buf("hs", (T + 1, B, H))
    if cell.name == "elman":
        numba_elman.forward_recurrence(GX, W, WT, h0, G1_CODES[cell.g1.name], C, hs)
        return W, C, GX, hs, ()
    if cell.name == "lstm":
        cs, tcs = buf("cs", (T + 1, B, H)), buf("tcs", (T, B, H))
        numba_lstm.forward(GX, W, WT, h0, np.ascontiguousarray(carry[1]), C, hs, cs, tcs)
        return W, C, GX, hs, (cs, tcs)
    ghn = buf("ghn", (T, B, H))
    numba_gru.forward(GX, W, WT, p["b_hh"], h0, C, hs, ghn)
    return W, C, GX, hs, (ghn,)


def _states(net, X, carry):
    _, _, _, hs, saved = _forward(net, X, carry, lambda name, shape: np.empty(shape, net.dtype))
    T = hs.shape[0] - 1
    final = (hs[T].copy(), saved[0][T].copy()) if net.cell.name == "lstm" else (hs[T].copy(),)
    return hs[1:], final


def forward_states(net, X, carry):
    """The forward pass alone, compiled: S (T, B, H) of the net's one layer and the final carry tuple of
    (B, H), for ``Network.forward`` and ``Network.loss``. X (T, B, I) or (T, B) codes, validated, in the
    net's dtype; carry: the initial carry tuple. Fresh arrays (S is returned to the caller). Split over
    ``shards`` threads like ``gradients``."""
    T, B = X.shape[:2]
    parts = _split(B, T, lambda rows: _states(net, _rows(X, rows), tuple(_rows(c, rows, 0) for c in carry)), net)
    if len(parts) == 1:
        return parts[0]
    return (np.concatenate([S for S, _ in parts], axis=1),
            tuple(np.concatenate(c) for c in zip(*(f for _, f in parts))))


def _gradients(net, X, D, loss, lmask, carry, batch):
    """``gradients`` of the B streams given, the loss divided by ``batch`` (the whole batch's B, when these
    are one shard of it)."""
    cell = net.cell
    T, B = X.shape[:2]
    H = net.n_hidden
    G = cell.gates * H
    buf = workspace((cell.name, T, B, H, G, net.dtype.str))
    W, C, GX, hs, saved = _forward(net, X, carry, buf)
    Wy, by = net.params["Wy"], net.params["by"]
    Sf = hs[1:].reshape(T * B, -1)
    Z = (Sf @ Wy.T).reshape(T, B, -1)
    Z += by
    E, _, dZ = losses.output_loss(loss, net.g2, Z, D, lmask, batch)
    dZf = dZ.reshape(T * B, -1)
    dH = products.matmul(dZf, Wy, out=buf("dH", (T, B, H)).reshape(T * B, H)).reshape(T, B, H)
    Wp = blas.packed(B, W, lambda shape: buf("Wp", shape))  # for the backward products
    if cell.name == "elman":
        ds0 = (numba_elman.backward_recurrence(dH, hs, W, Wp, G1_CODES[cell.g1.name], C),)
        dGX = dGH = dH
    elif cell.name == "lstm":
        dc = np.zeros((B, H), net.dtype)
        ds0 = (numba_lstm.backward(dH, GX, W, Wp, *saved, dc, C), dc)
        dGX = dGH = GX
    else:
        dGH = buf("dGH", (T, B, G))
        dh0 = numba_gru.backward(dH, GX, W, Wp, hs, *saved, C, dGH)
        ds0 = (dh0,)
        dGX = GX
    g = cell.weight_grads(X, hs[:-1], dGX, dGH, n_in=net.n_in, scatter=numba_codes.weight_grad)
    g["Wy"] = dZf.T @ Sf
    g["by"] = dZf.sum(axis=0)
    return E, g, ds0


# A batch's streams are independent until the weight gradients are summed, so one call can run on
# several threads, each the whole pass over its own rows (its own products and per-step passes, the
# compiled loops releasing the GIL), the parts summed at the end. OpenBLAS's own threads speed up little
# of a pass: the per-step passes run on one core, and the per-step products run ``microkernel.gemm`` on
# the calling thread. Measured (2 cores, float32, forward + backward, fresh process each, one thread /
# split in two, ms): LSTM H=128 B=32 T=50 3.5 / 2.2, T=100 7.7 / 4.8; H=512 B=64 171 / 109; H=1024
# B=128 693 / 459; GRU H=64 B=16 T=50 0.80 / 0.58; Elman H=128 B=32 T=50 1.20 / 0.72. Handing a part to
# another thread costs ~0.1 ms, which small calls do not win back: Elman H=32 B=64 T=10 0.10 / 0.20 ms,
# LSTM H=32 B=16 T=50 0.28 / 0.31, Elman H=32 B=64 T=50 0.36 / 0.33. So a call splits when its per-step
# products come to at least SHARD_WORK multiply-adds (T B G H; the last three: 0.7M, 3.3M, 3.3M) and
# each part gets at least SHARD_ROWS rows, in as many parts as OpenBLAS has threads (1 where the user
# or ``bptt.parallel`` set one thread). Parts of 4 rows still gain (each runs the kernel's 4-row
# blocks, reading the weights once a step): T=50, one thread / split, ms, LSTM H=200 B=8 2.3-2.5 /
# 1.7, H=300 B=8 5.3-5.5 / 3.5-3.7, H=100 B=8 0.81 / 0.68-0.78; GRU H=200 B=8 2.2 / 1.5. The parts run
# best on otherwise idle cores: OpenBLAS's workers keep spinning for a while after a multi-threaded
# NumPy product and compete with the parts.
SHARD_ROWS = 4
SHARD_WORK = 8_000_000
_POOL: list = [None, 0]  # [ThreadPoolExecutor, its workers]


def shards(net, B: int, T: int) -> int:
    """How many threads a call of ``gradients`` or ``forward_states`` splits its B streams of T steps over
    (1: the calling thread alone), in parts of at least SHARD_ROWS rows. (One-row parts for B = 2 were
    measured: a gain with 1-row kernel blocks, a loss since the 2-row block, except at H = 512: B=2 T=50,
    ms, one thread / split, LSTM H=200 0.92-0.98 / 1.27-1.36, H=512 8.4-8.9 / 7.1-7.6.)"""
    if T * B * net.cell.gates * net.n_hidden ** 2 < SHARD_WORK:
        return 1
    return max(1, min(blas.library_threads(), B // SHARD_ROWS))


def _forget_pool():
    """In a forked child: the parent's pool threads do not exist there (submitting would wait forever)."""
    _POOL[0], _POOL[1] = None, 0


os.register_at_fork(after_in_child=_forget_pool)


def _pool(workers: int):
    if _POOL[1] < workers:
        from concurrent.futures import ThreadPoolExecutor

        _POOL[0], _POOL[1] = ThreadPoolExecutor(workers, thread_name_prefix="bptt-shard"), workers
    return _POOL[0]


def _rows(a, rows, axis=1):
    """Rows ``rows`` (a slice of the batch) of a time-major array (axis 1) or of a (B, ...) one (axis 0),
    C-contiguous."""
    return np.ascontiguousarray(a[:, rows] if axis == 1 else a[rows])


def _split(B: int, T: int, part, net) -> list:
    """[part(slice of rows) for each of ``shards(net, B, T)`` parts of the batch, in order]: the first on
    the calling thread, the others on the pool's, OpenBLAS on one thread while they run. Waits for every
    part; a part's error is raised."""
    n = shards(net, B, T)
    if n == 1:
        return [part(slice(0, B))]
    cut = [B * k // n for k in range(n + 1)]
    rows = [slice(cut[k], cut[k + 1]) for k in range(n)]
    with blas.single_threaded():
        futures = [_pool(n - 1).submit(part, r) for r in rows[1:]]
        try:
            results = [part(rows[0])]
        finally:
            results += [f.result() for f in futures]  # waits for every part, re-raises a part's error
    return results


def gradients(net, X, D, loss, lmask, carry):
    """E and the gradients of a one-layer unidirectional net. X (T, B, I) or (T, B) integer class codes
    (``bptt.codes``: the projection is a row lookup), D targets, lmask (T, B) the
    loss mask, carry the initial carry tuple of (B, H); all validated, in the net's dtype.
    Returns (E float, dict of the net's gradients, the carry's gradients as a tuple). Runs on ``shards``
    threads, each on its rows of the batch, with OpenBLAS on one thread meanwhile; the parts are summed in
    shard order, so a given thread count gives the same result on every call."""
    T, B = X.shape[:2]
    if shards(net, B, T) == 1:
        return _gradients(net, X, D, loss, lmask, carry, None)
    results = _split(B, T, lambda rows: _gradients(net, _rows(X, rows), _rows(D, rows), loss, _rows(lmask, rows),
                                                tuple(_rows(c, rows, 0) for c in carry), B), net)
    E = sum(r[0] for r in results)
    g = results[0][1]
    for r in results[1:]:
        for name, v in r[1].items():
            g[name] += v
    ds0 = tuple(np.concatenate(parts) for parts in zip(*(r[2] for r in results)))
    return E, g, ds0
