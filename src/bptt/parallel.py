"""Data-parallel training: the global batch split by position over the ranks of a communicator.

Step n's data stays a function of (seed, n) and of the global batch B: every rank draws step n's batch
(or reads its streams' windows) as one process with batch B would, and keeps the columns
``[rank*b, (rank+1)*b)``, b = B / R. Each rank back-propagates its b sequences with the ordinary time
loop; then ONE allreduce over a single flat buffer sums ``b * gradient`` of every parameter, ``b * E``,
the batch counts and the stop flag (a signal caught on any rank). Dividing by the summed count gives the
gradient and loss of the whole batch (``bptt.losses`` averages over the batch), so every rank applies
the same optimiser update to the same weights: the model one process trains with batch B, up to the
order of floating-point sums. A cheap checksum allreduce every CHECK_EVERY steps (and at every
checkpoint) turns ranks that drifted apart into an error instead of a silently wrong model.

In stream mode (``--tbptt``) each rank carries its own streams' state; a checkpoint stores the carried
state whole, in global stream order (gathered on the root), so it resumes with any number of ranks.

With one rank (:class:`bptt.comm.Single`) every method here returns its input: single-process training
runs exactly the code it ran before.

Shapes: X (T, B, I) and D (T, B, O) or (T, B) split on axis 1; carried states (B, H) on axis 0, or
(L*D, B, H) on axis 1; a tuple of those for LSTM.
"""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np

from .errors import BPTTError, InputError

#: Steps between two checksum comparisons of the ranks' parameters.
CHECK_EVERY = 50

#: Variables by which a user chooses the BLAS's threads; when one is set, the ranks keep the user's choice.
THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS")


def threads_per_rank(comm, env=None, cores: int | None = None) -> int | None:
    """BLAS threads for each rank so that the ranks on this machine do not oversubscribe its cores
    (cores // ranks here, at least 1); None with one rank or when the user set one of THREAD_VARS.

    Measured: ``mpiexec -n 2 bptt train text`` on 2 cores with each rank's OpenBLAS on its default 2 threads ran
    4-5 steps/s; with one BLAS thread per rank, 76 steps/s (one process: 86)."""
    import os

    from .comm import local_ranks

    env = os.environ if env is None else env
    if comm.size == 1 or any(env.get(k) for k in THREAD_VARS):
        return None
    return max(1, (cores or os.cpu_count() or 1) // local_ranks(comm.size, env))


@contextmanager
def rank_blas_threads(comm):
    """Limit this rank's BLAS threads to ``threads_per_rank`` inside (threadpoolctl, in the [mpi] extra); yields
    the words for ``bptt train``'s first line (None when nothing is limited)."""
    n = threads_per_rank(comm)
    if n is None:
        yield None
        return
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        yield (f"{comm.size} ranks share this machine's cores and threadpoolctl is not installed: set "
               f"OPENBLAS_NUM_THREADS={n} (or pip install \"bptt[mpi]\")")
        return
    with threadpool_limits(n, user_api="blas"):
        yield f"{n} BLAS thread{'s' if n > 1 else ''} each"


class RanksDiverged(BPTTError):
    """The ranks' parameters are no longer equal (their allreduce results differed)."""


def _state_axis(a) -> int:
    return 0 if np.ndim(a) == 2 else 1


def _parts(state):
    return state if isinstance(state, tuple) else (state,)


def _whole(parts):
    return parts[0] if len(parts) == 1 else tuple(parts)


class DataParallel:
    """The split of a global batch of ``batch`` rows over ``comm``'s ranks, and the collectives of a
    training step. ``lo, hi``: this rank's rows; ``b``: how many."""

    def __init__(self, comm, batch: int):
        R = comm.size
        if R > batch:
            raise InputError(f"--batch: {batch} sequences cannot be split over {R} MPI ranks (each needs at least "
                             f"one); expected --batch >= {R} and a multiple of {R}, or fewer ranks (mpiexec -n)")
        if batch % R:
            lower, upper = batch - batch % R, batch + R - batch % R
            raise InputError(f"--batch: {batch} is not a multiple of the {R} MPI ranks; expected a multiple of {R} "
                             f"(e.g. {lower} or {upper}), or a number of ranks (mpiexec -n) that divides {batch}")
        self.comm, self.B, self.b = comm, batch, batch // R
        self.lo, self.hi = comm.rank * self.b, (comm.rank + 1) * self.b
        self.split = R > 1
        self._buf = None

    # ---- data -------------------------------------------------------------------------------------
    def columns(self, X, D):
        """The whole batch's (X (T, B, ...), D (T, B, ...)) -> this rank's columns (T, b, ...)."""
        if not self.split:
            return X, D
        return np.ascontiguousarray(X[:, self.lo:self.hi]), np.ascontiguousarray(D[:, self.lo:self.hi])

    def stream(self, task, seed: int):
        """The task's B streams, this rank's columns."""
        from .data.streams import stream_for

        return stream_for(task, self.B, seed, columns=(self.lo, self.hi) if self.split else None)

    # ---- carried state ----------------------------------------------------------------------------
    def local_state(self, state):
        """The whole carried state (B rows, global order) -> this rank's rows."""
        if not self.split:
            return state
        return _whole(tuple(np.ascontiguousarray(np.take(a, np.arange(self.lo, self.hi), axis=_state_axis(a)))
                            for a in _parts(state)))

    def whole_state(self, state):
        """This rank's rows -> the whole carried state on the root (None elsewhere). A collective."""
        if not self.split:
            return state
        out = []
        for a in _parts(state):
            ax = _state_axis(a)
            g = self.comm.gather_rows(np.moveaxis(a, ax, 0))
            out.append(None if g is None else np.ascontiguousarray(np.moveaxis(g, 0, ax)))
        return None if out[0] is None else _whole(tuple(out))

    def whole_batch(self, X, D, s0):
        """This rank's (X, D, s0) -> the whole batch on the root (None elsewhere), for measurements that
        are not sums over the batch (--track-gradients). A collective."""
        if not self.split:
            return X, D, s0
        Xw, Dw = (self.comm.gather_rows(np.moveaxis(a, 1, 0)) for a in (X, D))
        sw = None if s0 is None else self.whole_state(s0)
        if Xw is None:
            return None
        return np.moveaxis(Xw, 0, 1), np.moveaxis(Dw, 0, 1), sw

    # ---- the step's collective --------------------------------------------------------------------
    def reduce(self, E, grads, stop):
        """THE allreduce of a step: this rank's (E, grads) of its b rows and its stop flag -> the whole
        batch's (E, grads) and whether any rank wants to stop. grads None: this rank has no loss in
        this window (then none has: the loss positions are the same on every rank)."""
        if not self.split:
            return E, grads, bool(stop)
        names = None if grads is None else [k for k in grads if k != "s0"]
        if self._buf is None:
            if grads is None:  # no gradient yet to size the buffer by: only the flags travel
                flags = np.array([0.0, 0.0, 1.0 if stop else 0.0])
                self.comm.allreduce_sum(flags)
                return None, None, bool(flags[2])
            self._names = names
            self._shapes = [grads[k].shape for k in names]
            n = sum(grads[k].size for k in names)
            self._buf = np.empty(n + 3, dtype=np.result_type(*(grads[k].dtype for k in names)))
        buf = self._buf
        if grads is None:
            buf[:] = 0.0
        else:
            o = 0
            for k in self._names:
                a = grads[k]
                np.multiply(a.reshape(-1), self.b, out=buf[o:o + a.size])
                o += a.size
            buf[-3] = E * self.b
            buf[-2] = self.b
        buf[-1] = 1.0 if stop else 0.0
        self.comm.allreduce_sum(buf)
        stop_any = bool(buf[-1] > 0)
        count = buf[-2]
        if count == 0:
            return None, None, stop_any
        out, o = type(grads)(), 0
        for k, shape in zip(self._names, self._shapes):
            size = int(np.prod(shape))
            out[k] = (buf[o:o + size] / count).reshape(shape)
            o += size
        return float(buf[-3] / count), out, stop_any

    def check_same(self, params, step: int, every: int = CHECK_EVERY, force: bool = False) -> None:
        """Every ``every`` steps (or when ``force``): raise RanksDiverged unless all ranks hold the same
        parameters (compares two checksums, their max and min over the ranks, in one small allreduce)."""
        if not self.split or not (force or step % every == 0):
            return
        s = sum(float(a.sum(dtype=np.float64)) for a in params.values())
        q = sum(float(np.vdot(a, a)) for a in params.values())
        v = np.array([s, q, -s, -q])
        self.comm.allreduce_max(v)
        if v[0] != -v[2] or v[1] != -v[3]:
            raise RanksDiverged(f"the {self.comm.size} MPI ranks hold different parameters at step {step} (checksums "
                                f"from {-v[2]!r} to {v[0]!r}): their gradient sums differed. The MPI library must "
                                "give every rank the same allreduce result; resume from the last checkpoint with "
                                "--resume, or with fewer ranks")
        return


__all__ = ["DataParallel", "RanksDiverged", "CHECK_EVERY", "THREAD_VARS", "rank_blas_threads", "threads_per_rank"]
