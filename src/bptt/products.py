"""Matrix products whose inner dimension is 1, as broadcast products.

``A (M, 1) @ B (1, N)`` is an outer product: every entry is one multiplication, so the broadcast
``A * B`` gives the same numbers bit for bit. OpenBLAS's ``?gemm`` is slow at K = 1 (measured, 2-core AMD
EPYC, float32: (100, 1) @ (1, 128) 12.8 us, the broadcast 3.0 us), and such products occur whenever a
net has one input or one output (the adding and series tasks, config A of the benchmarks): the input
projection ``X W_in^T`` with I = 1 and the output layer's backward ``dZ Wy`` with O = 1.
"""

from __future__ import annotations

import numpy as np


def matmul(A: np.ndarray, B: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """A (M, K) @ B (K, N) -> (M, N) (into ``out`` when given); K == 1 as the broadcast product A * B."""
    if A.shape[-1] == 1 and B.shape[0] == 1:
        return np.multiply(A, B, out=out)
    return np.matmul(A, B, out=out)


__all__ = ["matmul"]
