"""NumPy's own BLAS, callable from compiled (numba) loops.

The compiled time loops call the matrix product of each step, ``C = A B`` or ``C = A B^T`` (``beta``:
``C`` overwritten or added to), without going back to Python. They call the very ``?gemm`` NumPy's
``matmul`` calls, found in the BLAS library NumPy was built with (the OpenBLAS bundled with NumPy's
wheels, ``scipy_cblas_?gemm64_``; or a system BLAS exporting ``cblas_?gemm64_``): no second BLAS is
loaded, the thread settings stay NumPy's. The symbols are registered with LLVM under fixed names
(``bptt_sgemm``, ``bptt_dgemm``), so the compiled loops can be cached on disk and stay valid in any
process that registers the same names.

Where no such library is found (another NumPy build), the names point to compiled triple loops instead
(``HAVE_BLAS`` is False): still correct, fast only at small sizes; ``bptt.fast`` then sends large cases
to the NumPy loop.
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

ROW_MAJOR, NO_TRANS, TRANS = 101, 111, 112
_SYMBOLS = ("scipy_cblas_{}gemm64_", "cblas_{}gemm64_")  # ILP64 interfaces: 64-bit integer arguments

_i64, _vp = types.int64, types.voidptr
_SIG = {p: types.void(_i64, _i64, _i64, _i64, _i64, _i64, t, _vp, _i64, _vp, _i64, t, _vp, _i64)
        for p, t in (("s", types.float32), ("d", types.float64))}
_sgemm = types.ExternalFunction("bptt_sgemm", _SIG["s"])
_dgemm = types.ExternalFunction("bptt_dgemm", _SIG["d"])
# ?gemv(order, trans, M, N, alpha, A, lda, x, incx, beta, y, incy): for products of one row (B = 1),
# where ?gemm is slow (OpenBLAS's Haswell sgemm with M = 1: LSTM B=1 H=256 took 5.5 ms against 3.1 ms
# for NumPy's loop, which calls ?gemv there)
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
    """(library path, {'s': ?gemm, 'd': ?gemm, 'sv': ?gemv, 'dv': ?gemv addresses}) of NumPy's ILP64 BLAS, or None."""
    for path in _candidates():
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for pattern in _SYMBOLS:
            try:
                addrs = {p: ctypes.cast(getattr(lib, pattern.format(p)), ctypes.c_void_p).value for p in "sd"}
                addrs.update({p + "v": ctypes.cast(getattr(lib, pattern.format(p).replace("gemm", "gemv")),
                                                   ctypes.c_void_p).value for p in "sd"})
            except AttributeError:
                continue
            return path, addrs, _thread_control(lib)
    return None


def _fallback(dtype):
    """A compiled row-major ?gemm with the cblas signature (no transposed A), for when no BLAS is found."""
    carray = numba.carray

    @numba.cfunc(_SIG["s" if dtype == np.float32 else "d"], error_model="numpy")
    def gemm(order, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc):
        a = carray(A, (M * lda,), dtype)
        b = carray(B, ((N if tb == TRANS else K) * ldb,), dtype)
        c = carray(C, (M * ldc,), dtype)
        zero = dtype(0)
        for m in range(M):
            for n in range(N):
                c[m * ldc + n] = zero if beta == zero else beta * c[m * ldc + n]
            for k in range(K):
                s = alpha * a[m * lda + k]
                if tb == TRANS:
                    for n in range(N):
                        c[m * ldc + n] += s * b[n * ldb + k]
                else:
                    for n in range(N):
                        c[m * ldc + n] += s * b[k * ldb + n]

    return gemm


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
    for _p in ("s", "d", "sv", "dv"):
        llb.add_symbol(f"bptt_{_p[0]}gem{'v' if _p.endswith('v') else 'm'}", _found[1][_p])
else:
    _fallbacks = {p: _fallback(dt) for p, dt in (("s", np.float32), ("d", np.float64))}  # kept alive
    llb.add_symbol("bptt_sgemm", _fallbacks["s"].address)
    llb.add_symbol("bptt_dgemm", _fallbacks["d"].address)


@intrinsic
def _ptr(typingctx, arr):
    """The data pointer of an array, as void*."""
    def codegen(context, builder, sig, args):
        a = context.make_array(sig.args[0])(context, builder, args[0])
        return builder.bitcast(a.data, cgutils.voidptr_t)

    return types.voidptr(arr), codegen


def gemm(A, B, C, trans_b, alpha, beta):
    """C (M, N) = alpha A (M, K) @ (B^T if trans_b else B) + beta C, all C-contiguous 2-D arrays of one
    dtype, alpha and beta scalars of that dtype (beta 0: C overwritten). Callable from compiled code only."""
    raise NotImplementedError("bptt.fast.blas.gemm runs inside numba-compiled functions only")


@overload(gemm)
def _gemm_impl(A, B, C, trans_b, alpha, beta):
    f = _sgemm if A.dtype == types.float32 else _dgemm

    def impl(A, B, C, trans_b, alpha, beta):
        M, K = A.shape
        N = C.shape[1]
        tb = TRANS if trans_b else NO_TRANS
        f(ROW_MAJOR, NO_TRANS, tb, M, N, K, alpha, _ptr(A), K, _ptr(B), B.shape[1], beta, _ptr(C), N)

    return impl


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


# products of more than this many multiply-adds go to NumPy's BLAS (?gemv for one row, ?gemm otherwise),
# smaller ones run as compiled axpy loops. Measured (float32, forward + backward, compiled loops, us): one
# row, config A (H=32): Elman 74 -> 65, LSTM 139 -> 106 with ?gemv instead of the loops; several rows, T=50:
# Elman B=8 H=64 290 -> 118, LSTM B=8 H=64 1051 -> 343, Elman B=64 H=32 749 -> 305, Elman B=2 H=32 63 -> 52
# (the loops had been used up to 131,072 multiply-adds, which made the compiled Elman slower than the NumPy
# loop at the default `bptt train`: adding, B=64, H=32). Without NumPy's BLAS every product runs the loops.
SMALL = 512


@numba.njit(inline="always")
def _library_size(M, K, N):
    """Whether an (M, K) x (K, N) product goes to the BLAS library (else the compiled axpy loops)."""
    return M * K * N > SMALL


@numba.njit(inline="always", error_model="numpy")
def matmul(A, B, C, alpha, beta):
    """C (M, N) = alpha A (M, K) @ B (K, N) + beta C, C-contiguous arrays of one dtype, beta 0 or 1:
    compiled axpy loops (over rows of B, so they vectorise without reassociating sums) for small
    products, NumPy's BLAS otherwise. Callable from compiled code only."""
    M, K = A.shape
    N = B.shape[1]
    if HAVE_BLAS and _library_size(M, K, N):
        if M == 1:
            gemv(B, True, A, C, alpha, beta)
        else:
            gemm(A, B, C, False, alpha, beta)
        return
    for m in range(M):
        c = C[m]
        if beta == alpha - alpha:  # beta 0: C overwritten
            c[:] = beta
        for k in range(K):
            s = alpha * A[m, k]
            b = B[k]
            for n in range(N):
                c[n] += s * b[n]


__all__ = ["HAVE_BLAS", "LIBRARY", "SMALL", "gemm", "gemv", "library_threads", "matmul", "matmul_t", "needs_wt",
           "single_threaded"]


@numba.njit(inline="always", error_model="numpy")
def matmul_t(A, W, WT, C, alpha, beta):
    """C (M, N) = alpha A (M, K) @ W^T + beta C for W (N, K), beta 0 or 1. With NumPy's BLAS a one-row
    product (M = 1) is ?gemv reading W itself, so that a kernel holding W for its backward product keeps
    one copy of the weights in cache (LSTM, B=1, H=1024, float32: W and W^T, 32 MB, did not fit the 32 MB
    L3, and the compiled loop took 4x NumPy's); every other product reads WT = W^T contiguous (?gemm
    without transposes: config C's 100 forward products took 1.72 ms so, 2.33 ms as ?gemm of A and W
    transposed; the axpy loops need it too). ``needs_wt`` says when WT is read. Callable from compiled
    code only."""
    M, K = A.shape
    N = W.shape[0]
    if M == 1 and HAVE_BLAS and _library_size(M, K, N):
        gemv(W, False, A, C, alpha, beta)
        return
    matmul(A, WT, C, alpha, beta)


def needs_wt(M: int, W) -> bool:
    """Whether ``matmul_t`` of an (M, K) operand with W (N, K) reads WT (else an empty (0, 0) array will do)."""
    return not (M == 1 and HAVE_BLAS and _library_size(M, W.shape[1], W.shape[0]))


def library_threads() -> int:
    """The threads NumPy's BLAS runs a product on now (OpenBLAS's setting, which ``OPENBLAS_NUM_THREADS``,
    threadpoolctl and ``bptt.parallel`` change); 1 when it cannot be read (no OpenBLAS found)."""
    return max(1, int(_THREADS[0]())) if _THREADS else 1


_single_lock = threading.Lock()
_single_depth = [0, 0]  # [callers inside single_threaded, OpenBLAS's thread count before the first]


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
