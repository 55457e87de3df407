"""The per-step products of one stream (B = 1): ``y = W x`` and ``y = x W`` on the weights as they are.

With one row there is nothing to reuse a packed copy of the weights for (``microkernel`` packs them once
per pass to feed many rows), so these kernels read W (N, K) row-major in place, once per product, as a
``?gemv`` does, but with no library call in between and with the vector width of the machine:

- ``dot(W, x, y, add)``, y (N,) = W x (+ y): the forward product ``h_{t-1} W_hh^T``. A block of V rows (V
  = the lanes of one vector) keeps one accumulator per row, each summing V-wide slices of its row times
  the same slice of x (the last slice of a row loaded under a mask when K is not a multiple of V); the V
  accumulators are then folded into one vector of V row sums by log2(V) rounds of "add the two halves of
  a pair" (a transposing reduction), so no row needs a horizontal sum of its own. Rows past the last
  full block run the same loop with one accumulator.
- ``vecmat(x, W, y, add)``, y (N,) = x W (+ y) with W (K, N): the backward product ``da_t W_hh``. A block of
  NB vectors of columns is held in registers while every row of W adds ``x[k] * W[k, cols]`` to it (the
  block's last vectors under masks past N).

Measured (AMD EPYC Zen 5, one core, float32, W 400 x 100 as LSTM config B's W_hh, in L2): see the module
``blas`` for the figures against OpenBLAS's ``?gemv``. Sums run in another order than NumPy's (the dot
products in V interleaved parts, then pairwise), one rounding per multiply-add.
"""

from __future__ import annotations

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic, overload

from .vectors import VECTOR_BYTES, Vec, at, lanes

NB = 8  # vectors of columns ``vecmat`` holds in registers (8 of 32 with AVX-512, of 16 with AVX2)
NB64 = 16 if VECTOR_BYTES == 64 else 8  # float64: the same 128 columns per block where registers allow
_i64 = ir.IntType(64)


def _dot_block(rows: int, is32: bool):
    """Intrinsic ``block(w, ldw, x, K, y, add)``: y[0:rows] (+)= W[0:rows, 0:K] (row stride ldw) @ x[0:K];
    rows = V (one vector of results) or 1."""

    @intrinsic
    def block(typingctx, w, ldw, x, K, y, add):
        sig = types.void(types.voidptr, types.int64, types.voidptr, types.int64, types.voidptr, types.boolean)

        def codegen(context, builder, sig, args):
            w_ptr, ldw, x_ptr, K, y_ptr, add = args
            v = Vec(builder, is32)
            wp, xp, yp = (builder.bitcast(p, v.fty.as_pointer()) for p in (w_ptr, x_ptr, y_ptr))
            accs = [cgutils.alloca_once_value(builder, v.zero) for _ in range(rows)]
            vw = ir.Constant(_i64, v.vw)
            full = builder.sdiv(K, vw)

            def add_slice(off, mask):
                xv = v.load(xp, off) if mask is None else v.mload(xp, off, mask)
                for r in range(rows):
                    at = builder.add(builder.mul(ir.Constant(_i64, r), ldw), off)
                    wv = v.load(wp, at) if mask is None else v.mload(wp, at, mask)
                    builder.store(v.fma(wv, xv, builder.load(accs[r])), accs[r])

            with cgutils.for_range(builder, full) as loop:
                add_slice(builder.mul(loop.index, vw), None)
            off = builder.mul(full, vw)
            rest = builder.sub(K, off)
            with builder.if_then(builder.icmp_signed(">", rest, ir.Constant(_i64, 0))):
                add_slice(off, v.below(0, rest))
            out = v.fold([builder.load(a) for a in accs])
            if rows == 1:
                q = builder.gep(yp, [ir.Constant(_i64, 0)])
                out = builder.select(add, builder.fadd(builder.load(q), out), out)
                builder.store(out, q)
            else:
                out = builder.select(add, builder.fadd(v.load(yp, ir.Constant(_i64, 0)), out), out)
                v.store(out, yp, ir.Constant(_i64, 0))
            return context.get_dummy_value()

        return sig, codegen

    return block


def _vecmat_block(is32: bool, NB: int):
    """Intrinsic ``block(w, ldw, x, R, y, n, add)``: y[0:n] (+)= x[0:R] @ W[0:R, 0:n] (row stride ldw),
    n <= NB * V (lanes past n masked off: nothing is read or written there)."""

    @intrinsic
    def block(typingctx, w, ldw, x, R, y, n, add):
        sig = types.void(types.voidptr, types.int64, types.voidptr, types.int64, types.voidptr, types.int64,
                         types.boolean)

        def codegen(context, builder, sig, args):
            w_ptr, ldw, x_ptr, R, y_ptr, n, add = args
            v = Vec(builder, is32)
            wp, xp, yp = (builder.bitcast(p, v.fty.as_pointer()) for p in (w_ptr, x_ptr, y_ptr))
            masks = [v.below(j * v.vw, n) for j in range(NB)]
            accs = [cgutils.alloca_once_value(builder, v.zero) for _ in range(NB)]
            with cgutils.for_range(builder, R) as loop:
                k = loop.index
                s = v.splat(builder.load(builder.gep(xp, [k])))
                row = builder.mul(k, ldw)
                for j in range(NB):
                    wv = v.mload(wp, builder.add(row, ir.Constant(_i64, j * v.vw)), masks[j])
                    builder.store(v.fma(s, wv, builder.load(accs[j])), accs[j])
            for j in range(NB):
                off = ir.Constant(_i64, j * v.vw)
                out = builder.load(accs[j])
                out = builder.select(add, builder.fadd(v.mload(yp, off, masks[j]), out), out)
                v.mstore(out, yp, off, masks[j])
            return context.get_dummy_value()

        return sig, codegen

    return block


_DOT = {True: (_dot_block(lanes(True), True), _dot_block(1, True)),
        False: (_dot_block(lanes(False), False), _dot_block(1, False))}
_VECMAT = {True: (_vecmat_block(True, NB), NB), False: (_vecmat_block(False, NB64), NB64)}


def _check(name, *arrays):
    if not all(isinstance(a, types.Array) and a.layout == "C" for a in arrays):
        raise numba.core.errors.TypingError(f"onerow.{name}: the arrays must be C-contiguous (row strides "
                                            "are read from their shapes)")
    if len({a.dtype for a in arrays}) != 1 or arrays[0].dtype not in (types.float32, types.float64):
        raise numba.core.errors.TypingError(f"onerow.{name}: the arrays must all be float32 or all float64")


def dot(W, x, y, add):
    """y (N,) = W (N, K) @ x (K,) (+ y when ``add``); C-contiguous arrays of one float dtype (x and y may
    be (1, K) and (1, N) rows). Callable from compiled code only."""
    raise NotImplementedError("bptt.fast.onerow.dot runs inside numba-compiled functions only")


@overload(dot, inline="always")
def _dot_impl(W, x, y, add):
    _check("dot", W, x, y)
    many, one = _DOT[W.dtype == types.float32]
    V = lanes(W.dtype == types.float32)

    def impl(W, x, y, add):
        N, K = W.shape
        n = N // V * V
        for r in range(0, n, V):
            many(at(W, r * K), K, at(x, 0), K, at(y, r), add)
        for r in range(n, N):
            one(at(W, r * K), K, at(x, 0), K, at(y, r), add)

    return impl


def vecmat(x, W, y, add):
    """y (N,) = x (K,) @ W (K, N) (+ y when ``add``); C-contiguous arrays of one float dtype (x and y may
    be (1, K) and (1, N) rows). Callable from compiled code only."""
    raise NotImplementedError("bptt.fast.onerow.vecmat runs inside numba-compiled functions only")


@overload(vecmat, inline="always")
def _vecmat_impl(x, W, y, add):
    _check("vecmat", x, W, y)
    block, nb = _VECMAT[W.dtype == types.float32]
    cols = nb * lanes(W.dtype == types.float32)

    def impl(x, W, y, add):
        K, N = W.shape
        for c in range(0, N, cols):
            block(at(W, c), N, at(x, 0), K, at(y, c), min(cols, N - c), add)

    return impl


__all__ = ["NB", "dot", "vecmat"]
