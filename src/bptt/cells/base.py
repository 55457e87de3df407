"""The cell interface: one step forward, one step backward. The time loop (``bptt.loop``) owns time.

A cell sees one layer and one direction. Its parameters come as a dict keyed by the cell's base names
(``Wx, Ws, bs`` for Elman; ``W_ih, W_hh, b_ih, b_hh`` for LSTM/GRU). The carry is a tuple of (B, H)
arrays whose first entry is the hidden output h (Elman: ``(S,)``; LSTM: ``(h, c)``; GRU: ``(h,)``).

Every cell splits its pre-activations into an input part ``GX = X W_ih^T + b_in`` (computed for all
steps at once, one GEMM: the hoisted projection) and a recurrent part ``GH = h_{t-1} W_hh^T + b_rec``.
``step_back`` returns dE/dGX_t and dE/dGH_t; the loop turns them into weight gradients with one GEMM
over all steps after the recursion, and into the seed's per-step terms when asked.
"""

from __future__ import annotations

import functools
from abc import ABC, abstractmethod
from typing import ClassVar

import numpy as np

from .. import codes, products
from ..errors import InputError

INITS = ("uniform", "orthogonal", "identity")


def uniform(rng: np.random.Generator, shape, bound: float, dtype) -> np.ndarray:
    return rng.uniform(-bound, bound, size=shape).astype(dtype)


def orthogonal(rng: np.random.Generator, n: int, dtype) -> np.ndarray:
    """A random (n, n) orthogonal matrix (QR of a Gaussian, signs fixed so the law is Haar)."""
    q, r = np.linalg.qr(rng.standard_normal((n, n)))
    return (q * np.sign(np.diag(r))).astype(dtype)


class Cell(ABC):
    """One recurrent step. Subclasses set the class variables and the four methods below."""

    name: ClassVar[str]
    gates: ClassVar[int]  # G: the pre-activation has G*H columns
    n_carry: ClassVar[int]  # 1 for (h,), 2 for (h, c)
    w_in: ClassVar[str]  # input weight (G*H, I)
    w_rec: ClassVar[str]  # recurrent weight (G*H, H)
    b_in: ClassVar[str | None]  # bias added to GX, or None
    b_rec: ClassVar[str | None]  # bias added to GH, or None
    # optional speed-ups the loop uses when a cell declares them (the defaults need nothing):
    tied_dgh: ClassVar[bool] = False  # step_back always returns one array as both dgx and dgh
    step_out: ClassVar[bool] = False  # step accepts out=: a (B, H) row to write h_t into

    @functools.cached_property
    def names(self) -> tuple[str, ...]:
        """The parameter names, in ``shapes``' order."""
        return tuple(n for n in (self.w_in, self.w_rec, self.b_in, self.b_rec) if n is not None)

    def shapes(self, n_in: int, H: int) -> dict[str, tuple]:
        s = {self.w_in: (self.gates * H, n_in), self.w_rec: (self.gates * H, H)}
        for b in (self.b_in, self.b_rec):
            if b is not None:
                s[b] = (self.gates * H,)
        return s

    def init(self, rng: np.random.Generator, n_in: int, H: int, scheme: str, dtype) -> dict:
        """Default: every entry uniform in +-1/sqrt(H) (PyTorch's default); 'orthogonal' and
        'identity' replace each (H, H) gate block of the recurrent weight."""
        if scheme not in INITS:
            raise InputError(f"init: unknown scheme {scheme!r}; expected one of {', '.join(INITS)}")
        k = 1.0 / np.sqrt(H)
        p = {name: uniform(rng, shape, k, dtype) for name, shape in self.shapes(n_in, H).items()}
        if scheme == "orthogonal":
            p[self.w_rec] = np.concatenate([orthogonal(rng, H, dtype) for _ in range(self.gates)])
        elif scheme == "identity":
            p[self.w_rec] = np.concatenate([np.eye(H, dtype=dtype)] * self.gates)
        return p

    def config(self) -> dict:
        """JSON-able settings that rebuild this cell with ``cells.make``."""
        return {"cell": self.name}

    # ---- the step pair -------------------------------------------------------------------------
    def prepare(self, p: dict) -> dict:
        """Called once per layer and pass before the steps: may add derived arrays to a copy of ``p``
        (e.g. a contiguous transposed weight). ``step`` and ``step_back`` must also work without them."""
        return p

    def project(self, p: dict, X: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """GX = X W_in^T + b_in for all steps at once. X (T, B, I) -> (T, B, G*H), one GEMM; integer
        X (T, B) (class codes, see ``bptt.codes``) -> the same as one row lookup of W_in^T + b_in.
        ``out``: a C-contiguous (T, B, G*H) array to write GX into (the compiled loops' reused buffer)."""
        if codes.is_codes(X):
            return codes.project(p[self.w_in], p[self.b_in] if self.b_in is not None else None, X, out=out)
        T, B, n_in = X.shape
        o2 = None if out is None else out.reshape(T * B, -1)
        GX = products.matmul(X.reshape(T * B, n_in), p[self.w_in].T, out=o2).reshape(T, B, -1)
        if self.b_in is not None:
            GX += p[self.b_in]
        return GX

    @abstractmethod
    def step(self, p: dict, gx: np.ndarray, carry: tuple):
        """One step. gx (B, G*H) this step's input part; carry: tuple of (B, H).
        Returns (new_carry, cache) with cache a NamedTuple of what ``step_back`` needs."""

    @abstractmethod
    def step_back(self, p: dict, cache, carry: tuple, dcarry: tuple):
        """Backward of ``step``. carry: the carry the step read; dcarry: dE/d(new carry), tuple of (B, H).
        Returns (dgx (B, G*H), dgh (B, G*H), dcarry_prev tuple of (B, H))."""

    @abstractmethod
    def jacobian(self, p: dict, cache, carry: tuple) -> np.ndarray:
        """d(new carry)/d(carry) for each stream: (B, n_carry*H, n_carry*H)."""

    # ---- weight gradients from the per-step pre-activation gradients ------------------------------
    def weight_grads(self, X, Hprev, dGX, dGH, n_in: int | None = None, scatter=codes.weight_grad) -> dict:
        """Sum over steps as single GEMMs. X (T,B,I), Hprev (T,B,H), dGX and dGH (T,B,G*H). Integer X
        (T,B) codes: dW_in as a scatter-add of dGX's rows (``scatter``: ``bptt.codes.weight_grad``, or the
        compiled one of ``bptt.fast``); ``n_in`` gives I then."""
        T, B = X.shape[:2]
        gx = dGX.reshape(T * B, -1)
        gh = dGH.reshape(T * B, -1)
        g = {
            self.w_in: scatter(dGX, X, n_in) if codes.is_codes(X) else gx.T @ X.reshape(T * B, -1),
            self.w_rec: gh.T @ Hprev.reshape(T * B, -1),
        }
        if self.b_in is not None:
            g[self.b_in] = gx.sum(axis=0)
        if self.b_rec is not None:
            # one sum when both gradients are one array (LSTM and Elman: dE/dgx = dE/dgh)
            g[self.b_rec] = g[self.b_in].copy() if dGH is dGX and self.b_in is not None else gh.sum(axis=0)
        return g

    def weight_terms(self, X, Hprev, dGX, dGH, n_in: int | None = None) -> dict:
        """The same, one row per step: each name -> (T, *shape). Row t is the seed's term for step t."""
        g = {
            self.w_in: codes.weight_terms(dGX, X, n_in) if codes.is_codes(X) else np.einsum("tbg,tbi->tgi", dGX, X),
            self.w_rec: np.einsum("tbg,tbh->tgh", dGH, Hprev),
        }
        if self.b_in is not None:
            g[self.b_in] = dGX.sum(axis=1)
        if self.b_rec is not None:
            g[self.b_rec] = dGH.sum(axis=1)
        return g
