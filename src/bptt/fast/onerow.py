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

from .microkernel import VECTOR_BYTES, _at

NB = 8  # vectors of columns ``vecmat`` holds in registers (8 of 32 with AVX-512, of 16 with AVX2)
NB64 = 16 if VECTOR_BYTES == 64 else 8  # float64: the same 128 columns per block where registers allow
_i32, _i64 = ir.IntType(32), ir.IntType(64)


def _lanes(is32: bool) -> int:
    return VECTOR_BYTES // (4 if is32 else 8)


class _Vec:
    """LLVM vector helpers for one builder: loads (plain and masked), masked stores, fma, splats."""

    def __init__(self, builder, is32: bool):
        self.b = builder
        self.fty = ir.FloatType() if is32 else ir.DoubleType()
        self.vw = _lanes(is32)
        self.vty = ir.VectorType(self.fty, self.vw)
        self.mty = ir.VectorType(ir.IntType(1), self.vw)
        suffix = f"v{self.vw}{'f32' if is32 else 'f64'}"
        mod, vp = builder.module, self.vty.as_pointer()
        self._fma = cgutils.get_or_insert_function(mod, ir.FunctionType(self.vty, [self.vty] * 3), f"llvm.fma.{suffix}")
        self._mload = cgutils.get_or_insert_function(
            mod, ir.FunctionType(self.vty, [vp, _i32, self.mty, self.vty]), f"llvm.masked.load.{suffix}.p0")
        self._mstore = cgutils.get_or_insert_function(
            mod, ir.FunctionType(ir.VoidType(), [self.vty, vp, _i32, self.mty]), f"llvm.masked.store.{suffix}.p0")
        self.zero = ir.Constant(self.vty, [0.0] * self.vw)

    def ptr(self, base, offset):
        """<V x float>* at element ``offset`` of the float* ``base``."""
        return self.b.bitcast(self.b.gep(base, [offset]), self.vty.as_pointer())

    def load(self, base, offset):
        return self.b.load(self.ptr(base, offset), align=4)

    def store(self, value, base, offset):
        self.b.store(value, self.ptr(base, offset), align=4)

    def mload(self, base, offset, mask):
        return self.b.call(self._mload, [self.ptr(base, offset), ir.Constant(_i32, 4), mask, self.zero])

    def mstore(self, value, base, offset, mask):
        self.b.call(self._mstore, [value, self.ptr(base, offset), ir.Constant(_i32, 4), mask])

    def fma(self, a, b, c):
        return self.b.call(self._fma, [a, b, c])

    def splat(self, scalar, ty=None):
        ty = ty or self.vty
        undef = ir.Constant(ty, ir.Undefined)
        v = self.b.insert_element(undef, scalar, ir.Constant(_i32, 0))
        return self.b.shuffle_vector(v, undef, ir.Constant(ir.VectorType(_i32, ty.count), [0] * ty.count))

    def below(self, first: int, n):
        """Mask of lanes first, first + 1, ... that are < n (an i64)."""
        lanes = ir.Constant(ir.VectorType(_i64, self.vw), list(range(first, first + self.vw)))
        return self.b.icmp_signed("<", lanes, self.splat(n, ir.VectorType(_i64, self.vw)))

    def fold(self, accs):
        """One vector of the V accumulators' sums (lane r = the sum of accs[r]'s lanes), or for a single
        accumulator its sum as a scalar. Each round adds the first halves of a pair's segments to their
        second halves, halving the segment and the vectors."""
        b, vw = self.b, self.vw

        def shuffle(u, w, lanes):
            return b.shuffle_vector(u, w, ir.Constant(ir.VectorType(_i32, len(lanes)), lanes))

        if len(accs) == 1:  # halve the vector until one lane is left
            u, n = accs[0], vw
            while n > 1:
                n //= 2
                u = b.fadd(shuffle(u, u, list(range(n))), shuffle(u, u, list(range(n, 2 * n))))
            return b.extract_element(u, ir.Constant(_i32, 0))
        seg = vw  # lanes per row in each vector; vw // seg rows per vector, in order
        while seg > 1:
            half = seg // 2
            lo = [s + j for s in range(0, vw, seg) for j in range(half)]
            lo += [vw + i for i in lo]  # the first half of every row's segment, of u then of w
            hi = [i + half for i in lo]
            accs = [b.fadd(shuffle(u, w, lo), shuffle(u, w, hi)) for u, w in zip(accs[::2], accs[1::2])]
            seg = half
        return accs[0]


def _dot_block(rows: int, is32: bool):
    """Intrinsic ``block(w, ldw, x, K, y, add)``: y[0:rows] (+)= W[0:rows, 0:K] (row stride ldw) @ x[0:K];
    rows = V (one vector of results) or 1."""

    @intrinsic
    def block(typingctx, w, ldw, x, K, y, add):
        sig = types.void(types.voidptr, types.int64, types.voidptr, types.int64, types.voidptr, types.boolean)

        def codegen(context, builder, sig, args):
            w_ptr, ldw, x_ptr, K, y_ptr, add = args
            v = _Vec(builder, is32)
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
            v = _Vec(builder, is32)
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


_DOT = {True: (_dot_block(_lanes(True), True), _dot_block(1, True)),
        False: (_dot_block(_lanes(False), False), _dot_block(1, False))}
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
    V = _lanes(W.dtype == types.float32)

    def impl(W, x, y, add):
        N, K = W.shape
        n = N // V * V
        for r in range(0, n, V):
            many(_at(W, r * K), K, _at(x, 0), K, _at(y, r), add)
        for r in range(n, N):
            one(_at(W, r * K), K, _at(x, 0), K, _at(y, r), add)

    return impl


def vecmat(x, W, y, add):
    """y (N,) = x (K,) @ W (K, N) (+ y when ``add``); C-contiguous arrays of one float dtype (x and y may
    be (1, K) and (1, N) rows). Callable from compiled code only."""
    raise NotImplementedError("bptt.fast.onerow.vecmat runs inside numba-compiled functions only")


@overload(vecmat, inline="always")
def _vecmat_impl(x, W, y, add):
    _check("vecmat", x, W, y)
    block, nb = _VECMAT[W.dtype == types.float32]
    cols = nb * _lanes(W.dtype == types.float32)

    def impl(x, W, y, add):
        K, N = W.shape
        for c in range(0, N, cols):
            block(_at(W, c), N, _at(x, 0), K, _at(y, c), min(cols, N - c), add)

    return impl


__all__ = ["NB", "dot", "vecmat"]
