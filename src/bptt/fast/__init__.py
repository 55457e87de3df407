"""Backend choice for ``Network.gradients``: the NumPy time loop, compiled numba loops, or the
memory-budgeted loop (``max_states``).

``backend="numpy"`` is the generic loop in ``bptt.loop``. ``backend="numba"`` runs ``bptt.fast.compiled``:
the two recurrences as compiled loops (per step one product on weights packed once per pass, or on the
weights as they are for one row (``onerow``), and one fused pass over the units; no Python between steps;
large batches split over threads), everything else as whole-sequence NumPy products, for the case it covers: a
single-layer unidirectional Elman (g1 tanh, sigmoid, relu or identity), LSTM or GRU net, any g2 and loss,
with full BPTT (no ``lengths``, ``resets``; ``truncate`` only if it reaches every step).
``backend="auto"`` (the default) takes numba when it is installed (``pip install "bptt[fast]"``) and the
case is covered, and the NumPy loop otherwise, silently; both give the same results to rounding
(float64: relative differences around 1e-15). ``backend_for`` says which one a call will run. numba is
imported only here, only when a call may use it: ``import bptt`` never loads it.
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

# Without NumPy's BLAS (``bptt.fast.blas`` finds none; no such NumPy build on our machines) "auto" picks
# numba only when the recurrent work per step, B * H * H multiply-adds, is at most this. Measured when the
# loops multiplied with their own triple loops there (2-core AVX-512 VM, float32, NumPy loop vs numba: B=1,
# H=32 0.97 vs 0.30 ms; B=1, H=256 2.2 vs 2.0; B=8, H=64 1.9 vs 2.1; B=32, H=128 7.0 vs 18); they now run
# ``microkernel`` there too (one-row products included), but the limit stays until measured on such a build.
AUTO_MAX_WORK = 30_000

# With NumPy's BLAS found, "auto" takes numba at every size of the cases it covers: since the loops run one
# vectorised pass per formula and their products in BLAS (then ``microkernel``, and ?gemv for one row, now
# ``onerow``), they
# measured faster than the NumPy loop everywhere (idle 2-core AMD EPYC VM, forward + backward,
# T=50 (30 at H=512, 10 at H=1024), min of 5, NumPy loop / compiled; float32, OpenBLAS's own SkylakeX kernel):
# Elman B=1 H=32 4.7x, B=1 H=256 2.3x, B=8 H=64 2.3x, B=32 H=128 1.6x, B=64 H=256 1.7x, B=64 H=512 1.5x,
# B=128 H=1024 1.3x; LSTM 17x, 2.8x, 6.7x, 2.6x, 2.5x, 2.0x, 1.35x; GRU 16x, 2.7x, 4.6x, 2.2x, 2.5x, 1.9x,
# 1.24x; float64 alike (smallest: Elman B=128 H=1024 1.19x), with OPENBLAS_CORETYPE=Haswell alike (smallest:
# Elman B=128 H=1024 1.10x); short sequences too (T=5-20, B=1-64, H=32-128: 1.6x-8x; the default `bptt train`,
# adding, B=64, H=32, T=10: 1.8x). Before that rework they lost from B=32 H=128 on, and size limits
# (B*H*H <= 131,072, H <= 128) held them back. With ``microkernel`` and the split (issue 11, second session),
# fresh processes, float64, T=20: GRU B=16 H=512 30.6 ms (NumPy loop) / 17.2 (compiled, one thread) / 12.7
# (split); Elman B=64 H=128 3.38 / 1.48 / 1.04; Elman B=16 H=512 7.45 / 4.37 / 3.22. Alternated with NumPy-loop
# calls in one process, whose multi-threaded products leave OpenBLAS's workers spinning for ~100 ms, the
# split lost up to 0.83x against the NumPy loop in those three cases (a sweep of B = 1-64, H = 4-512); see
# ``compiled.shards``.

_numba_module = None
_numba_error = None


def numba_kernel():
    """The compiled backend (``bptt.fast.compiled``), imported on first use; InputError saying how to
    install numba if it is missing."""
    global _numba_module, _numba_error
    if _numba_module is None and _numba_error is None:
        try:
            _numba_module = importlib.import_module(".compiled", __name__)
        except ImportError as e:  # numba absent, or present but unusable with this NumPy
            _numba_error = e
    if _numba_module is None:
        raise InputError(f"backend='numba': numba is not available ({_numba_error}); install it with "
                         'pip install "bptt[fast]", or use backend="numpy"')
    return _numba_module


def numba_available() -> bool:
    """True when the compiled backend can be imported (imports numba; call only when it may be used)."""
    try:
        numba_kernel()
    except InputError:
        return False
    return True


def blas_available() -> bool:
    """True when the compiled loops call NumPy's own BLAS for their products (``bptt.fast.blas``)."""
    return numba_available() and importlib.import_module(".blas", __name__).HAVE_BLAS


def numba_unsupported(net, truncate_reaches_all: bool, lengths, resets) -> str | None:
    """Why the numba kernel cannot run this case, or None when it can."""
    if net.cell.name not in ("elman", "lstm", "gru"):
        return f"the kernels cover the Elman, LSTM and GRU cells; got cell={net.cell.name!r}"
    if net.layers != 1 or net.bidirectional:
        return f"the kernel covers one unidirectional layer; got layers={net.layers}, bidirectional={net.bidirectional}"
    if net.cell.name == "elman" and net.cell.g1.name not in G1_CODES:
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


def _reaches_all(truncate, lmask) -> bool:
    return truncate is None or truncate > int(np.flatnonzero(lmask.any(axis=1)).max())


def _choose(net, B, reaches_all, lengths, resets, backend, max_states) -> str:
    """'numba', 'numpy' or 'memory' for a call; raises InputError for an unknown backend and for a
    numba request that cannot run."""
    if not isinstance(backend, str) or backend not in BACKENDS:
        raise InputError(f"backend: got {backend!r}, expected one of {', '.join(map(repr, BACKENDS))}")
    if max_states is not None:
        if backend == "numba":
            raise InputError("max_states: memory-budgeted BPTT runs on the NumPy loop; got backend='numba'. "
                             "Use backend='numpy' (or 'auto') with max_states.")
        return "memory"
    if backend == "numpy":
        return "numpy"
    why = numba_unsupported(net, reaches_all, lengths, resets)
    if backend == "numba":
        if why is not None:
            raise InputError(f"backend='numba': {why}. Use backend='numpy' (or 'auto', which falls back).")
        numba_kernel()  # InputError saying how to install numba when it is missing
        return "numba"
    if why is None and _auto_size(net, B) and numba_available():
        return "numba"
    return "numpy"


def _auto_size(net, B: int) -> bool:
    """Whether "auto" takes the compiled loops at this size: always with NumPy's BLAS (see the figures
    above), up to AUTO_MAX_WORK without it."""
    return blas_available() or work_per_step(net, B) <= AUTO_MAX_WORK


def backend_for(net, B: int, *, T: int | None = None, truncate=None, lengths=None, resets=None,
                backend: str = "auto", max_states=None) -> str:
    """The backend ``net.gradients`` runs for a batch of B streams with these options: 'numba' (compiled
    loops), 'numpy' (the NumPy time loop) or 'memory' (the memory-budgeted NumPy loop, ``max_states``).
    ``truncate`` counts as reaching every step when it is at least T (the loss at every step)."""
    reaches_all = truncate is None or (T is not None and truncate >= T)
    return _choose(net, B, reaches_all, lengths, resets, backend, max_states)


def threads_for(net, B: int, T: int) -> int:
    """How many threads the compiled loops split a batch of B streams of T steps over
    (``compiled.shards``); call where ``backend_for`` says 'numba'."""
    return numba_kernel().shards(net, B, T)


def forward(net, X, s0, lengths, resets, backend):
    """``Network.forward``/``loss``'s recurrence by the compiled loops: (S (T, B, H), final carry tuple), or
    None when the NumPy loop should run (backend 'numpy', or 'auto' choosing it). X validated (T, B, I) or
    (T, B) codes. InputError for backend='numba' on a case the loops do not cover."""
    if backend == "numpy":
        return None
    B = X.shape[1]
    if _choose(net, B, True, lengths, resets, backend, None) != "numba":
        return None
    return numba_kernel().forward_states(net, X, net._carry0(s0, B)[0][0])


def gradients(net, X, D, loss, at, truncate, s0, lengths, resets, backend, max_states, bound="soft"):
    """``Network.gradients`` for backend != 'numpy' or max_states set. Returns (E, Gradients), or None
    when the caller's NumPy loop should run (backend 'auto' choosing NumPy)."""
    if max_states is not None or backend not in ("numba", "auto"):
        if _choose(net, 1, True, lengths, resets, backend, max_states) == "memory":  # validates backend
            from .. import memory

            return memory.gradients(net, X, D, loss=loss, at=at, truncate=truncate, s0=s0, lengths=lengths,
                                    resets=resets, max_states=max_states, bound=bound)
        return None
    X, D = net._inputs(X, D, loss)  # X (T, B, I), or (T, B) integer class codes
    T, B = X.shape[:2]
    lens, _, _ = net._masks(T, B, lengths, resets)
    lmask = validate.loss_mask(at, T, B, lens, net.dtype)
    truncate = validate.integer("truncate", truncate, low=1, allow_none=True)
    if _choose(net, B, _reaches_all(truncate, lmask), lengths, resets, backend, None) != "numba":
        return None
    carry = net._carry0(s0, B)[0][0]  # tuple of (B, H)
    E, g, ds0 = numba_kernel().gradients(net, X, D, loss, lmask, carry)
    out = Gradients()
    for name in (*net.cell.names, "Wy", "by"):
        out[name] = g[name]
    out["s0"] = net._state_out([[ds0]], B)
    return E, out


__all__ = ["AUTO_MAX_WORK", "BACKENDS", "forward", "backend_for", "blas_available", "gradients", "numba_available",
           "numba_kernel", "numba_unsupported", "threads_for", "work_per_step"]
