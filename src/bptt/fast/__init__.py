"""Backend choice for ``Network.gradients``: the NumPy time loop, compiled numba loops, or the
memory-budgeted loop (``max_states``).

``backend="numpy"`` (the default) is the generic loop in ``bptt.loop``. ``backend="numba"`` runs
``bptt.fast.numba_elman``: the two recurrences as compiled loops, everything else as whole-sequence
NumPy products, for the case it covers: a single-layer unidirectional Elman net (g1 tanh, sigmoid,
relu or identity; any g2 and loss) with full BPTT (no ``lengths``, ``resets``; ``truncate`` only if it
reaches every step). ``backend="auto"`` takes numba when it is installed, the case is covered and the
recurrent product is small (B * H * H <= ``AUTO_MAX_WORK``), where per-step overhead, not arithmetic,
decides the time; otherwise the NumPy loop. numba is imported only here, only when a call asks for
it: ``import bptt`` never loads it.
"""

from __future__ import annotations

import importlib

import numpy as np

from .. import validate
from ..errors import InputError
from ..gradients import Gradients

BACKENDS = ("numpy", "numba", "auto")
# the hidden activations the numba loops cover, with the integer codes they use (g2 and the loss
# run in NumPy with the library's own code, so every g2 and loss is covered)
G1_CODES = {"tanh": 0, "sigmoid": 1, "relu": 2, "identity": 3}

# "auto" picks numba when the recurrent work per step, B * H * H multiply-adds, is at most this.
# Measured with ``bptt bench --only numpy,numba`` (2-core AVX-512 VM, OpenBLAS, min of 15; float32 ms,
# NumPy loop vs numba): A (B=1, H=32) 0.97 vs 0.30; B (B=1, H=100) 0.58 vs 0.43; I,H,O,B,T = 10,64,10,4,50
# 0.75 vs 0.66; 10,256,10,1,100 2.2 vs 2.0 (float64: 3.3 vs 3.5, a tie); 16,64,16,8,100 1.9 vs 2.1;
# 32,128,32,32,100 (config C) 7.0 vs 18. The compiled loops do one stream at a time, so BLAS's blocked
# products win once the batch grows.
AUTO_MAX_WORK = 30_000

_numba_module = None
_numba_error = None


def numba_kernel():
    """The numba kernel module, imported on first use; InputError saying how to install it if missing."""
    global _numba_module, _numba_error
    if _numba_module is None and _numba_error is None:
        try:
            _numba_module = importlib.import_module(".numba_elman", __name__)
        except ImportError as e:  # numba absent, or present but unusable with this NumPy
            _numba_error = e
    if _numba_module is None:
        raise InputError(f"backend='numba': numba is not available ({_numba_error}); install it with "
                         'pip install "bptt[fast]", or use backend="numpy"')
    return _numba_module


def numba_available() -> bool:
    """True when the numba kernel can be imported (imports numba; call only when it may be used)."""
    try:
        numba_kernel()
    except InputError:
        return False
    return True


def numba_unsupported(net, truncate_reaches_all: bool, lengths, resets) -> str | None:
    """Why the numba kernel cannot run this case, or None when it can."""
    if net.cell.name != "elman":
        return f"the kernel covers the Elman cell only; got cell={net.cell.name!r}"
    if net.layers != 1 or net.bidirectional:
        return f"the kernel covers one unidirectional layer; got layers={net.layers}, bidirectional={net.bidirectional}"
    if net.cell.g1.name not in G1_CODES:
        return f"the kernel does not cover g1={net.cell.g1.name!r}"
    if not truncate_reaches_all:
        return "truncated BPTT is not covered (truncate must be None or reach every step)"
    if lengths is not None:
        return "lengths (padded sequences) are not covered"
    if resets is not None:
        return "resets are not covered"
    return None


def work_per_step(net, B: int) -> int:
    """Multiply-adds of one step's recurrent product over the batch: B * H * H."""
    return B * net.n_hidden * net.n_hidden


def gradients(net, X, D, loss, at, truncate, s0, lengths, resets, backend, max_states, bound="soft"):
    """``Network.gradients`` for backend != 'numpy' or max_states set. Returns (E, Gradients), or None
    when the caller's NumPy loop should run (backend 'auto' choosing NumPy)."""
    if not isinstance(backend, str) or backend not in BACKENDS:
        raise InputError(f"backend: got {backend!r}, expected one of {', '.join(map(repr, BACKENDS))}")
    if max_states is not None:
        if backend == "numba":
            raise InputError("max_states: memory-budgeted BPTT runs on the NumPy loop; got backend='numba'. "
                             "Use backend='numpy' (or 'auto') with max_states.")
        from .. import memory

        return memory.gradients(net, X, D, loss=loss, at=at, truncate=truncate, s0=s0, lengths=lengths,
                                resets=resets, max_states=max_states, bound=bound)
    if backend == "numpy":
        return None
    X, D = net._inputs(X, D, loss)
    T, B = X.shape[:2]
    lens, _, _ = net._masks(T, B, lengths, resets)
    lmask = validate.loss_mask(at, T, B, lens, net.dtype)
    truncate = validate.integer("truncate", truncate, low=1, allow_none=True)
    reaches_all = truncate is None or truncate > int(np.flatnonzero(lmask.any(axis=1)).max())
    why = numba_unsupported(net, reaches_all, lengths, resets)
    if backend == "numba":
        if why is not None:
            raise InputError(f"backend='numba': {why}. Use backend='numpy' (or 'auto', which falls back).")
        kernel = numba_kernel()
    else:  # auto
        if why is not None or work_per_step(net, B) > AUTO_MAX_WORK or not numba_available():
            return None
        kernel = numba_kernel()
    if X.ndim == 2:  # integer class codes: the compiled kernels take the one-hot inputs they stand for
        from ..codes import one_hot

        X = one_hot(X, net.n_in, net.dtype)
    carry = net._carry0(s0, B)[0][0][0]  # (B, H)
    E, g = kernel.gradients(X, D, loss, lmask, net.params, net.cell.g1.name, net.g2, carry)
    out = Gradients()
    for name in (*net.cell.shapes(1, 1), "Wy", "by"):
        out[name] = g[name]
    out["s0"] = net._state_out([[(g["s0"],)]], B)
    return E, out


__all__ = ["AUTO_MAX_WORK", "BACKENDS", "gradients", "numba_available", "numba_kernel", "numba_unsupported",
           "work_per_step"]
