"""LLVM vector code for the per-step product kernels (``microkernel``, ``onerow``): the machine's vector
width and helpers that emit vector loads, masked loads and stores, fused multiply-adds and reductions
inside numba intrinsics. The code is compiled for the CPU it runs on, like the rest of the loops."""

from __future__ import annotations

import llvmlite.binding as llb
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

AVX512 = "+avx512f" in llb.get_host_cpu_features().flatten()
VECTOR_BYTES = 64 if AVX512 else 32
_i32, _i64 = ir.IntType(32), ir.IntType(64)


def lanes(is32: bool) -> int:
    """Elements of one vector: float32 (``is32``) or float64."""
    return VECTOR_BYTES // (4 if is32 else 8)


@intrinsic
def at(typingctx, arr, offset):
    """void* to element ``offset`` (flat) of a C-contiguous array."""
    def codegen(context, builder, sig, args):
        a = context.make_array(sig.args[0])(context, builder, args[0])
        return builder.bitcast(builder.gep(a.data, [args[1]]), cgutils.voidptr_t)

    return types.voidptr(arr, offset), codegen


class Vec:
    """LLVM vector helpers for one builder: loads (plain and masked), masked stores, fma, splats."""

    def __init__(self, builder, is32: bool):
        self.b = builder
        self.fty = ir.FloatType() if is32 else ir.DoubleType()
        self.vw = lanes(is32)
        self.vty = ir.VectorType(self.fty, self.vw)
        self.mty = ir.VectorType(ir.IntType(1), self.vw)
        suffix = f"v{self.vw}{'f32' if is32 else 'f64'}"
        mod, vp = builder.module, self.vty.as_pointer()
        self._fma = cgutils.get_or_insert_function(
            mod, ir.FunctionType(self.vty, [self.vty] * 3), f"llvm.fma.{suffix}")
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


__all__ = ["AVX512", "VECTOR_BYTES", "Vec", "at", "lanes"]
