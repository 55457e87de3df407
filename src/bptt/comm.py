"""The processes that work together: one small communicator interface, two implementations.

:func:`world` is this process's communicator. A process started on its own gets :class:`Single`: one
rank, every operation trivial, nothing imported. A process started by an MPI launcher (``mpiexec``,
``mpirun``, ``srun``; recognised by the variables they set: ``PMI_RANK``, ``PMI_SIZE``, ``PMIX_RANK``,
``OMPI_COMM_WORLD_SIZE``, ``MPI_LOCALRANKID``) gets :class:`MPIComm` over mpi4py (``pip install "bptt[mpi]"``);
only then is mpi4py imported. ``BPTT_MPI=1`` / ``BPTT_MPI=0`` forces the choice.

Training and the experiment grid talk to the other processes through these methods only:

    rank, size, is_root        this process's place (rank 0 is the root)
    allreduce_sum(buf)         in place, over a flat contiguous array (one collective)
    allreduce_max(buf)         in place
    bcast(obj), gather(obj)    small Python objects (root's value to all; everyone's to the root)
    gather_rows(a)             arrays whose first axis is split over the ranks, concatenated on the root
    barrier(), abort(code)
    root_only(fn)              fn on the root, a no-op elsewhere (printing, per-step file writes)
    on_root(fn)                fn on the root, its error (and with share=True its value) on every rank
    root_object(make)          make() on the root (errors shared); elsewhere a stand-in whose methods do nothing
    root_file(path, mode)      a file opened on the root, a sink that keeps nothing elsewhere

Waiting ranks sleep between polls instead of spinning (MPI's blocking calls busy-wait, which on a
machine with as many ranks as cores takes the core from the rank that still works).
"""

from __future__ import annotations

import os
import sys
import time

from .errors import BPTTError, InputError

#: Variables that MPI launchers set in every process they start (MPICH/Hydra, Intel MPI, Open MPI, PMIx, SLURM's PMI).
ENV_MARKERS = ("PMI_RANK", "PMI_SIZE", "PMIX_RANK", "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_RANK", "MPI_LOCALRANKID")
#: Seconds a rank that failed waits for the others to fail the same way before it aborts the whole job.
AGREE_SECONDS = 20.0


class PeerFailed(BPTTError):
    """Another rank (the root) failed; it reports the error. Raised on the ranks that only followed it."""


def launched_by_mpi(env=None) -> bool:
    """True when this process was started by an MPI launcher (or ``BPTT_MPI=1``)."""
    env = os.environ if env is None else env
    forced = env.get("BPTT_MPI", "").strip()
    if forced in ("0", "1"):
        return forced == "1"
    return any(k in env for k in ENV_MARKERS)


def env_rank(env=None) -> int:
    """This process's rank as the launcher's variables tell it (0 when they do not)."""
    env = os.environ if env is None else env
    for k in ("PMI_RANK", "PMIX_RANK", "OMPI_COMM_WORLD_RANK", "SLURM_PROCID"):
        v = env.get(k, "")
        if v.isdigit():
            return int(v)
    return 0


def local_ranks(size: int, env=None) -> int:
    """How many ranks of the job run on this machine: the launcher's count (MPICH/Hydra ``MPI_LOCALNRANKS``,
    Open MPI ``OMPI_COMM_WORLD_LOCAL_SIZE``, SLURM ``SLURM_NTASKS_PER_NODE``), else the job's size."""
    env = os.environ if env is None else env
    for k in ("MPI_LOCALNRANKS", "OMPI_COMM_WORLD_LOCAL_SIZE", "SLURM_NTASKS_PER_NODE"):
        v = env.get(k, "")
        if v.isdigit():
            return int(v)
    return size


class _Sink:
    """A write-only text file that keeps nothing (non-root ranks' metrics file)."""

    def write(self, s):
        return len(s)

    def flush(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


class _Nothing:
    """What the non-root ranks hold in place of the root's reporting object: every method does nothing
    and returns the stand-in itself; it is also a context manager."""

    def __getattr__(self, name):
        return lambda *a, **k: self

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


class Single:
    """One process: rank 0 of 1. Every collective returns its input."""

    rank, size, is_root = 0, 1, True

    def allreduce_sum(self, buf):
        return buf

    def allreduce_max(self, buf):
        return buf

    def bcast(self, obj):
        return obj

    def gather(self, obj):
        return [obj]

    def gather_rows(self, a):
        return a

    def barrier(self):
        pass

    def abort(self, code: int = 1):
        raise SystemExit(code)

    def root_only(self, fn):
        return fn

    def on_root(self, fn, *args, share=False, **kw):
        return fn(*args, **kw)

    def root_object(self, make):
        return make()

    def root_file(self, path, mode="a", **kw):
        return open(path, mode, **kw)

    def agree(self, rc: int, line: str | None, peer: bool = False) -> tuple[int, str | None]:
        return rc, line

    def __repr__(self):
        return "Single()"


class MPIComm(Single):
    """Ranks of an MPI job (mpi4py). ``side`` is a duplicate of the communicator for agreeing on the way
    out, so that it never mixes with a collective that another rank may still be inside."""

    #: Seconds a waiting rank polls without sleeping (when the node's ranks fit its cores), then the
    #: longest sleep between two polls.
    SPIN, PAUSE = 2e-3, 1e-3

    def __init__(self, mpi_comm):
        from mpi4py import MPI

        self.MPI, self.c = MPI, mpi_comm
        self.side = mpi_comm.Dup()
        self.rank, self.size = mpi_comm.Get_rank(), mpi_comm.Get_size()
        self.is_root = self.rank == 0
        self.spin = self.SPIN if local_ranks(self.size) <= (os.cpu_count() or 1) else 0.0

    def _wait(self, req, timeout=None) -> bool:
        """Poll a request: spinning for the first SPIN seconds when this node has no more ranks than cores
        (a spinning rank then takes no core from one that still works), then sleeping between polls,
        at most PAUSE seconds at a time; False if ``timeout`` seconds passed first.

        Why both: on the quiet 2-core machine, 2 ranks, a sleeping poll that started at 0.1 ms and doubled to
        5 ms made the barrier before each step's allreduce cost 3.3-3.6 ms (benchmarks/mpi_bench.py) against
        0.12 ms for the 0.94 MB allreduce itself, because the pause had grown past the moment the other rank
        arrived; oversubscribed (3 ranks on 2 cores, the tests) spinning would slow the rank that works."""
        t0 = time.perf_counter()
        spin_until = t0 + self.spin
        while time.perf_counter() < spin_until:
            if req.Test():
                return True
        pause = 5e-5
        while not req.Test():
            if timeout is not None and time.perf_counter() - t0 > timeout:
                return False
            time.sleep(pause)
            pause = min(pause * 2, self.PAUSE)
        return True

    # The reductions wait asleep at a barrier for the slowest rank, then reduce with a blocking call: a
    # non-blocking reduction polled with sleeps progresses only at each poll, and a 0.9 MB gradient buffer
    # took 26 ms that way (mpi_bench, 2 ranks, quiet machine) against a few ms blocking.
    def allreduce_sum(self, buf):
        self.barrier()
        self.c.Allreduce(self.MPI.IN_PLACE, buf, op=self.MPI.SUM)
        return buf

    def allreduce_max(self, buf):
        self.barrier()
        self.c.Allreduce(self.MPI.IN_PLACE, buf, op=self.MPI.MAX)
        return buf

    def barrier(self):
        self._wait(self.c.Ibarrier())

    def bcast(self, obj):
        self.barrier()  # the root may still be working: wait asleep, then the (short) object broadcast
        return self.c.bcast(obj, root=0)

    def gather(self, obj):
        self.barrier()
        return self.c.gather(obj, root=0)

    def gather_rows(self, a):
        """``a`` (n, ...) on every rank (the same n and trailing shape) -> (size*n, ...) on the root, rank
        order; None elsewhere."""
        import numpy as np

        a = np.ascontiguousarray(a)
        out = np.empty((self.size * a.shape[0],) + a.shape[1:], a.dtype) if self.is_root else None
        self._wait(self.c.Igather(a, out, root=0))
        return out

    def abort(self, code: int = 1):
        sys.stdout.flush()
        sys.stderr.flush()
        self.c.Abort(code)

    def root_only(self, fn):
        return fn if self.is_root else (lambda *a, **k: None)

    def on_root(self, fn, *args, share=False, **kw):
        """Run ``fn`` on the root; the root returns its value, the others None (``share=True``: the value,
        which must then be a small picklable object). If it raises, every rank raises: the root its own
        error, the others :class:`PeerFailed` with the same message (no rank is left in a collective)."""
        value, err = None, None
        if self.is_root:
            try:
                value = fn(*args, **kw)
            except BaseException as e:  # noqa: BLE001 - re-raised below, after the others are told
                err = e
        told = self.bcast(("err", str(err)) if err is not None else ("ok", value if share else None))
        if err is not None:
            raise err
        if told[0] == "err":
            raise PeerFailed(f"rank 0 failed: {told[1]}")
        return value if self.is_root else told[1]

    def root_object(self, make):
        """``make()`` on the root (its error is every rank's, as in on_root); a do-nothing stand-in elsewhere."""
        made = self.on_root(make)
        return made if self.is_root else _Nothing()

    def root_file(self, path, mode="a", **kw):
        return open(path, mode, **kw) if self.is_root else _Sink()

    def agree(self, rc: int, line: str | None, peer: bool = False) -> tuple[int, str | None]:
        """On the way out of a command: every rank brings its exit code and its error line (None if
        none; ``peer``: the error is a PeerFailed). When all ranks arrive within AGREE_SECONDS (a success,
        or an error every rank met at the same point), the first line that is not a mere PeerFailed (the
        root's, when it has one) is printed by the root alone and the worst exit code is everyone's. A rank
        whose error the others did not share (they are still computing, or waiting in a collective for
        it) prints its line and aborts the job, so nothing hangs. Successful ranks wait without a limit (the root may still be writing)."""
        if not self._wait(self.side.Ibarrier(), timeout=AGREE_SECONDS if rc else None):
            if line:
                print(f"{line} (rank {self.rank}; stopping the other ranks)", file=sys.stderr, flush=True)
            self.abort(rc or 1)
        everyone = self.side.allgather((rc, line, peer))
        lines = [(r, ln) for r, ln, peer in everyone if ln and not peer]
        worst = max(r for r, _, _ in everyone)
        if not lines:
            return worst, None
        r, ln = lines[0]
        return max(worst, r), (ln if self.is_root else None)

    def __repr__(self):
        return f"MPIComm(rank={self.rank}, size={self.size})"


_WORLD = None


def world():
    """This process's communicator (made once): Single, or MPIComm when launched by MPI.

    Raises InputError (one line naming the fix) when launched by MPI but mpi4py cannot be imported."""
    global _WORLD
    if _WORLD is None:
        if not launched_by_mpi():
            _WORLD = Single()
        else:
            try:
                from mpi4py import MPI
            except ImportError as e:
                raise InputError(f"started by an MPI launcher (mpiexec/srun) but mpi4py cannot be imported ({e}); "
                                 "install it with pip install \"bptt[mpi]\", or run without mpiexec") from None
            _WORLD = MPIComm(MPI.COMM_WORLD)
    return _WORLD


def single() -> Single:
    """A communicator of this process alone (each run of an experiment grid trains on one rank)."""
    return Single()


__all__ = ["Single", "MPIComm", "PeerFailed", "world", "single", "launched_by_mpi", "env_rank", "ENV_MARKERS"]
