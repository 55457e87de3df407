"""The per-step products of the compiled loops, ``C (M, N) = A (M, K) @ B (K, N) (+ C)``, with B packed once.

Each step of a recurrence multiplies the batch's (B, H) state by the same recurrent weights. A BLAS
``?gemm`` copies ("packs") its B operand into panels on every call; for the small products of one step
that copy costs as much as the arithmetic (OpenBLAS, one thread, float32, 16 x 128 x 512: 18.5 us, 114
GFLOP/s; 32 x 128 x 512: 24.5 us). Here B is packed once per pass (``pack``) and every step runs a
register-blocked kernel over the panels (``gemm``): 8.0 and 16.3 us, 260 GFLOP/s on one core (AMD EPYC,
Zen 5, AVX-512), and 4.6 ms at 128 x 1024 x 4096 against OpenBLAS's 5.7 on one thread.

Layout: panel p of ``pack(B)`` holds columns p*NR .. p*NR+NR-1 of B for every k, contiguous, (P, K, NR),
zero-padded past N. The kernel keeps an MR x NR block of C in vector registers (MR rows, NR = two
vectors of columns: 16 accumulators of 16 float32 with AVX-512), and per k loads two vectors of the
panel, broadcasts MR values of A and does 2 MR fused multiply-adds; it is written as LLVM vector code
(``llvm.fma``) through a numba intrinsic, so it is compiled for the machine it runs on like the rest of
the loops. Row blocks of fewer than MR rows use the same kernel with MR = 4, 2 and 1 (each block reads
the panel once: a 2-row block, not two 1-row ones, took a 3-stream LSTM at H = 256, T = 50 from 3.6-4.0 to
2.8-3.0 ms); the last panel, when N is not a multiple of NR, too, its C columns past N masked off (they
had run as a plain scalar loop: LSTM H=100, B=32, T=50, float32, one thread: 4.77 ms, against 3.61 at H=128
and 2.22 at H=96). Sums run over k in order, one rounding per multiply-add.
"""

from __future__ import annotations

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic, overload

from .vectors import AVX512, VECTOR_BYTES, Vec, at

MR = 8 if AVX512 else 4  # rows of a block: 2 MR accumulators + 3 registers fit 32 (AVX-512) or 16 (AVX2)
NV = 2  # vectors of columns in a panel
_jit = numba.njit(cache=True, nogil=True, error_model="numpy")


def panel_width(dtype) -> int:
    """NR: the columns of one panel for this dtype (two vectors)."""
    return NV * VECTOR_BYTES // np.dtype(dtype).itemsize


def packed_shape(K: int, N: int, dtype) -> tuple:
    """The shape of ``pack``'s output for a (K, N) B: (P, K, NR), P = ceil(N / NR)."""
    nr = panel_width(dtype)
    return (-(-N // nr), K, nr)


def _block(mr: int, is32: bool):
    """An intrinsic ``block(a, lda, b, c, ldc, K, n, add)``: C[0:mr, 0:n] (row stride ldc) = (C +) A[0:mr, 0:K]
    (row stride lda) @ the panel at b (K rows of NR, zero past n), n <= NR; the columns past n of C are
    neither read nor written (masked). Pointers as void*, strides in elements."""

    @intrinsic
    def block(typingctx, a, lda, b, c, ldc, K, n, add):
        sig = types.void(types.voidptr, types.int64, types.voidptr, types.voidptr, types.int64, types.int64,
                         types.int64, types.boolean)

        def codegen(context, builder, sig, args):
            a_ptr, lda, b_ptr, c_ptr, ldc, K, n, add = args
            v = Vec(builder, is32)
            i64, vw = ir.IntType(64), v.vw
            ap, bp, cp = (builder.bitcast(x, v.fty.as_pointer()) for x in (a_ptr, b_ptr, c_ptr))
            accs = [cgutils.alloca_once_value(builder, v.zero) for _ in range(mr * NV)]
            with cgutils.for_range(builder, K) as loop:
                k = loop.index
                row = builder.mul(k, ir.Constant(i64, NV * vw))
                bv = [v.load(bp, builder.add(row, ir.Constant(i64, j * vw))) for j in range(NV)]
                for i in range(mr):
                    a_ik = builder.gep(ap, [builder.add(builder.mul(ir.Constant(i64, i), lda), k)])
                    s = v.splat(builder.load(a_ik))
                    for j in range(NV):
                        acc = accs[i * NV + j]
                        builder.store(v.fma(s, bv[j], builder.load(acc)), acc)
            masks = [v.below(j * vw, n) for j in range(NV)]
            for i in range(mr):
                for j in range(NV):
                    off = builder.add(builder.mul(ir.Constant(i64, i), ldc), ir.Constant(i64, j * vw))
                    r = builder.load(accs[i * NV + j])
                    r = builder.select(add, builder.fadd(v.mload(cp, off, masks[j]), r), r)
                    v.mstore(r, cp, off, masks[j])
            return context.get_dummy_value()

        return sig, codegen

    return block


_s8, _s4, _s2, _s1 = (_block(m, True) for m in (MR, 4, 2, 1))
_d8, _d4, _d2, _d1 = (_block(m, False) for m in (MR, 4, 2, 1))


def gemm(A, Bp, C, add):
    """C (M, N) = A (M, K) @ B (+ C when ``add``), B given as ``pack(B)``, (P, K, NR); A, C C-contiguous
    2-D arrays of Bp's dtype. Callable from compiled code only."""
    raise NotImplementedError("bptt.fast.microkernel.gemm runs inside numba-compiled functions only")


@overload(gemm, inline="always")
def _gemm_impl(A, Bp, C, add):
    if not all(isinstance(x, types.Array) and x.layout == "C" for x in (A, Bp, C)):
        raise numba.core.errors.TypingError("microkernel.gemm: A, Bp and C must be C-contiguous arrays (the "
                                            "row strides are read from their shapes)")
    big, four, two, one = (_s8, _s4, _s2, _s1) if A.dtype == types.float32 else (_d8, _d4, _d2, _d1)

    def impl(A, Bp, C, add):
        M, K = A.shape
        N = C.shape[1]
        nr = Bp.shape[2]
        m8 = M // MR * MR  # rows in blocks of MR, then of 4, of 2, then one (each block reads the panel once)
        m4 = m8 + (M - m8) // 4 * 4
        m2 = m4 + (M - m4) // 2 * 2
        for p in range(Bp.shape[0]):
            b = at(Bp, p * K * nr)
            n = min(nr, N - p * nr)  # the last panel's columns past N are zeros, masked off in C
            for m in range(0, m8, MR):
                big(at(A, m * K), K, b, at(C, m * N + p * nr), N, K, n, add)
            for m in range(m8, m4, 4):
                four(at(A, m * K), K, b, at(C, m * N + p * nr), N, K, n, add)
            for m in range(m4, m2, 2):
                two(at(A, m * K), K, b, at(C, m * N + p * nr), N, K, n, add)
            for m in range(m2, M):
                one(at(A, m * K), K, b, at(C, m * N + p * nr), N, K, n, add)

    return impl


@_jit
def pack(B, out):
    """out (P, K, NR) = B (K, N) in panels of NR columns, zero past N (``packed_shape``). B any layout."""
    P, K, nr = out.shape
    N = B.shape[1]
    for p in range(P):
        for k in range(K):
            for j in range(nr):
                n = p * nr + j
                if n < N:
                    out[p, k, j] = B[k, n]
                else:
                    out[p, k, j] = 0
    return out
