"""NumPy's own BLAS, callable from compiled (numba) loops, and the per-step products.

The compiled time loops run the matrix product of each step, ``C = A W`` or ``C = A W^T`` (``beta``:
``C`` overwritten or added to), without going back to Python (``matmul``, ``matmul_t``):
``microkernel.gemm`` on weights packed once per pass; for a single row (B = 1) ``onerow`` on the weights
as they are, or, for weights over ONEROW_BYTES, the very ``?gemv`` NumPy's ``matmul`` calls, found in the
BLAS library NumPy was built with (the OpenBLAS bundled with NumPy's wheels, ``scipy_cblas_?gemv64_``;
or a system BLAS exporting ``cblas_?gemv64_``): no second BLAS is loaded. The symbols are registered
with LLVM under fixed names (``bptt_sgemv``, ``bptt_dgemv``), so the compiled loops can be cached on
disk and stay valid in any process that registers the same names. Where no such library is found
(another NumPy build), the names point to compiled loops instead (``HAVE_BLAS`` is False).

``library_threads`` and ``single_threaded`` read and set the thread count of that OpenBLAS, for the
calls that split their batch over threads of their own (``compiled.shards``).
"""

from __future__ import annotations

import contextlib
import ctypes
import glob
import os
import threading

import llvmlite.binding as llb
import numba
import numpy as np
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic, overload

from . import microkernel, onerow

ROW_MAJOR, NO_TRANS, TRANS = 101, 111, 112
_SYMBOLS = ("scipy_cblas_{}gemv64_", "cblas_{}gemv64_")  # ILP64 interfaces: 64-bit integer arguments

_i64, _vp = types.int64, types.voidptr
# ?gemv(order, trans, M, N, alpha, A, lda, x, incx, beta, y, incy): for products of one row (B = 1)
_SIGV = {p: types.void(_i64, _i64, _i64, _i64, t, _vp, _i64, _vp, _i64, t, _vp, _i64)
         for p, t in (("s", types.float32), ("d", types.float64))}
_sgemv = types.ExternalFunction("bptt_sgemv", _SIGV["s"])
_dgemv = types.ExternalFunction("bptt_dgemv", _SIGV["d"])


def _candidates() -> list[str]:
    """Shared libraries that may hold NumPy's BLAS: the ones bundled with NumPy, then those loaded."""
    root = os.path.dirname(np.__file__)
    found = []
    for pattern in ("../numpy.libs/*blas*", ".dylibs/*blas*", "../numpy.libs/*", ".dylibs/*"):
        found += sorted(glob.glob(os.path.join(root, pattern)))
    try:
        with open("/proc/self/maps") as f:
            paths = {ln.split()[-1] for ln in f if "/" in ln}
        found += sorted(p for p in paths if "blas" in os.path.basename(p).lower() and ".so" in p)
    except OSError:
        pass
    return list(dict.fromkeys(found))


_THREAD_SYMBOLS = ("scipy_openblas_{}_num_threads64_", "openblas_{}_num_threads64_", "openblas_{}_num_threads")


def _thread_control(lib):
    """(get, set) of OpenBLAS's global thread count in ``lib``, as ctypes functions, or None."""
    for pattern in _THREAD_SYMBOLS:
        try:
            get, put = getattr(lib, pattern.format("get")), getattr(lib, pattern.format("set"))
        except AttributeError:
            continue
        get.restype, get.argtypes = ctypes.c_int, []
        put.restype, put.argtypes = None, [ctypes.c_int]
        return get, put
    return None


def _find_blas():
    """(library path, {'s': ?gemv, 'd': ?gemv addresses}, thread control) of NumPy's ILP64 BLAS, or None."""
    for path in _candidates():
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for pattern in _SYMBOLS:
            try:
                addrs = {p: ctypes.cast(getattr(lib, pattern.format(p)), ctypes.c_void_p).value for p in "sd"}
            except AttributeError:
                continue
            return path, addrs, _thread_control(lib)
    return None


def _fallback(dtype):
    """A compiled row-major ?gemv with the cblas signature, for when no BLAS is found (never called then:
    ``matmul`` sends one-row products to ?gemv only with ``HAVE_BLAS``; registered so that the kernels link)."""
    carray = numba.carray

    @numba.cfunc(_SIGV["s" if dtype == np.float32 else "d"], error_model="numpy")
    def gemv(order, trans, M, N, alpha, A, lda, x, incx, beta, y, incy):
        a = carray(A, (M * lda,), dtype)
        ny = M if trans == NO_TRANS else N  # y = A x (M) or A^T x (N), A (M, N) row-major
        nx = N if trans == NO_TRANS else M
        xs, ys = carray(x, (nx,), dtype), carray(y, (ny,), dtype)
        for i in range(ny):
            s = dtype(0)
            for j in range(nx):
                s += (a[i * lda + j] if trans == NO_TRANS else a[j * lda + i]) * xs[j]
            ys[i] = alpha * s + (beta * ys[i] if beta != 0 else dtype(0))

    return gemv


# The fused per-step passes read and write five to eight arrays; LLVM vectorises such a loop behind
# runtime checks that the arrays do not overlap, but by default gives up beyond 8 checks (the LSTM's
# passes then ran scalar: 3x slower at config B). This raises that limit for numba's compilations in
# this process (it only lets more loops vectorise; results are unchanged).
llb.set_option("", "-runtime-memory-check-threshold=64")

_found = _find_blas()
HAVE_BLAS = _found is not None
LIBRARY = _found[0] if _found else None
_THREADS = _found[2] if _found else None  # (get, set) of OpenBLAS's thread count, or None
if _found:
    for _p in "sd":
        llb.add_symbol(f"bptt_{_p}gemv", _found[1][_p])
else:
    _fallbacks = {p: _fallback(dt) for p, dt in (("s", np.float32), ("d", np.float64))}  # kept alive
    for _p in "sd":
        llb.add_symbol(f"bptt_{_p}gemv", _fallbacks[_p].address)


@intrinsic
def _ptr(typingctx, arr):
    """The data pointer of an array, as void*."""
    def codegen(context, builder, sig, args):
        a = context.make_array(sig.args[0])(context, builder, args[0])
        return builder.bitcast(a.data, cgutils.voidptr_t)

    return types.voidptr(arr), codegen


def gemv(A, trans, x, y, alpha, beta):
    """y (1, n) = alpha x (1, k) @ (A if trans else A^T) + beta y, A (k, n) or (n, k) C-contiguous, as ?gemv;
    NumPy's BLAS only (HAVE_BLAS). Callable from compiled code only."""
    raise NotImplementedError("bptt.fast.blas.gemv runs inside numba-compiled functions only")


@overload(gemv)
def _gemv_impl(A, trans, x, y, alpha, beta):
    f = _sgemv if A.dtype == types.float32 else _dgemv

    def impl(A, trans, x, y, alpha, beta):
        R, Cn = A.shape
        f(ROW_MAJOR, TRANS if trans else NO_TRANS, R, Cn, alpha, _ptr(A), Cn, _ptr(x), 1, beta, _ptr(y), 1)

    return impl


# A one-row product (B = 1) runs ``onerow`` on W as it is (no packing: nothing else reads it), except
# where W is over ONEROW_BYTES: there NumPy's ?gemv, which OpenBLAS spreads over its threads, streams W
# from L3 or memory faster than one core. Measured (2-core AMD EPYC Zen 5, float32, us per product,
# onerow / ?gemv): W (400, 100) forward 1.35 / 1.46, backward 1.19 / 1.31; (1024, 256) 10.2 / 11.0 and
# 8.7 / 10.8; (2048, 256) 20.2 / 10.1 (?gemv on two threads). Every other per-step product runs
# ``microkernel.gemm`` on weights packed once per pass (see there: 2-3x OpenBLAS's ?gemm at the per-step
# sizes, which packs the weights again on every call).
ONEROW_BYTES = 1 << 20


@numba.njit(inline="always")
def _library_size(W):
    """Whether a one-row product with W goes to ?gemv (else ``onerow``)."""
    return HAVE_BLAS and W.size * W.itemsize > ONEROW_BYTES


@numba.njit(inline="always", error_model="numpy")
def matmul(A, W, Wp, C, alpha, beta):
    """C (M, N) = A (M, K) @ W (K, N) + beta C, beta 0 or 1 (alpha must be 1), C-contiguous arrays of one
    dtype; Wp = ``microkernel.pack(W)``, or empty where ``needs_packed`` says it is not read (one row:
    ``onerow`` or ?gemv on W). Callable from compiled code only."""
    add = beta != alpha - alpha
    if A.shape[0] == 1:
        if _library_size(W):
            gemv(W, True, A, C, alpha, beta)
        else:
            onerow.vecmat(A, W, C, add)
        return
    microkernel.gemm(A, Wp, C, add)


@numba.njit(inline="always", error_model="numpy")
def matmul_t(A, W, WTp, C, alpha, beta):
    """C (M, N) = A (M, K) @ W^T + beta C for W (N, K), beta 0 or 1 (alpha must be 1); WTp =
    ``microkernel.pack(W.T)``, or empty where ``needs_packed`` says it is not read: a one-row product
    reads W itself (``onerow.dot`` or ?gemv), so that a kernel holding W for its backward product keeps
    one copy of the weights in cache (LSTM, B=1, H=1024, float32: W and W^T, 32 MB, did not fit the 32 MB
    L3, and the compiled loop took 4x NumPy's). Callable from compiled code only."""
    add = beta != alpha - alpha
    if A.shape[0] == 1:
        if _library_size(W):
            gemv(W, False, A, C, alpha, beta)
        else:
            onerow.dot(W, A, C, add)
        return
    microkernel.gemm(A, WTp, C, add)


def needs_packed(M: int, W) -> bool:
    """Whether the products of an (M, K) operand with W or W^T read packed weights (not for one row:
    ``onerow`` or ?gemv read W itself, and an empty (0, 0, 0) array will do)."""
    return M != 1


def packed(M: int, W, array=None):
    """``microkernel.pack(W)`` into ``array(shape)`` (a fresh array when not given), or an empty array where
    ``needs_packed`` says it is not read (then ``array`` is not called). W (K, N) any layout (W.T for
    ``matmul_t``)."""
    if not needs_packed(M, W):
        return np.empty((0, 0, 0), W.dtype)
    shape = microkernel.packed_shape(*W.shape, W.dtype)
    return microkernel.pack(W, np.empty(shape, W.dtype) if array is None else array(shape))


__all__ = ["HAVE_BLAS", "LIBRARY", "ONEROW_BYTES", "gemv", "library_threads", "matmul", "matmul_t", "needs_packed",
           "packed", "single_threaded"]


def library_threads() -> int:
    """The threads NumPy's BLAS runs a product on (OpenBLAS's setting, which ``OPENBLAS_NUM_THREADS``,
    threadpoolctl and ``bptt.parallel`` change; inside ``single_threaded``, the setting it put aside); 1 when
    it cannot be read (no OpenBLAS found)."""
    if not _THREADS:
        return 1
    with _single_lock:
        n = _single_depth[1] if _single_depth[0] else _THREADS[0]()
    return max(1, int(n))


_single_lock = threading.Lock()
_single_depth = [0, 0]  # [callers inside single_threaded, OpenBLAS's thread count before the first]


def _after_fork():
    """In a forked child no caller is inside ``single_threaded`` (the parent's threads are gone): a fresh
    lock, and OpenBLAS's thread count put back if a parent's caller had set it to one."""
    global _single_lock
    _single_lock = threading.Lock()
    if _single_depth[0] and _THREADS:
        _THREADS[1](_single_depth[1])
    _single_depth[:] = [0, 0]


os.register_at_fork(after_in_child=_after_fork)


@contextlib.contextmanager
def single_threaded():
    """OpenBLAS runs every product on the calling thread while inside (its global setting, put back when
    the last caller leaves; nested and concurrent callers are counted). For work split over our own
    threads, each calling BLAS on its part: a multi-threaded OpenBLAS called from two threads at once
    serialises them on its thread pool, and its idle workers spin on the cores our threads need."""
    if not _THREADS:
        yield
        return
    get, put = _THREADS
    with _single_lock:
        if _single_depth[0] == 0:
            _single_depth[1] = get()
            put(1)
        _single_depth[0] += 1
    try:
        yield
    finally:
        with _single_lock:
            _single_depth[0] -= 1
            if _single_depth[0] == 0:
                put(_single_depth[1])
