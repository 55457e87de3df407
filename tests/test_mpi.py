"""MPI: data-parallel training and experiment grids over `mpiexec -n R` (loopback), against one process.

The tests that launch mpiexec need the [mpi] extra (mpi4py and the mpich wheel's mpiexec, both in the
[test] extra); without it they are skipped, saying so. The communicator's single-process side, the split
of the batch and of the streams, and the launcher detection are tested without MPI.
"""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from bptt import comm as C
from bptt import files
from bptt import parallel as P
from bptt.errors import InputError

HERE = Path(__file__).parent
_BIN = os.path.dirname(sys.executable)
MPIEXEC = shutil.which("mpiexec", path=_BIN) or shutil.which("mpiexec")
try:
    import mpi4py  # noqa: F401

    HAVE_MPI4PY = True
except ImportError:
    HAVE_MPI4PY = False
needs_mpi = pytest.mark.skipif(not (MPIEXEC and HAVE_MPI4PY),
                               reason='needs the [mpi] extra (pip install -e ".[mpi]": mpi4py and mpiexec)')
# the launcher's variables must not leak into a child that is meant to run alone
CLEAN_ENV = {k: v for k, v in os.environ.items() if k not in C.ENV_MARKERS and k != "BPTT_MPI"}
CASES = [f"{cell}-{mode}" for cell in ("elman", "lstm", "gru") for mode in ("batch", "stream")]  # _mpi_train.py's
TEXT = " ".join(["the cat sat on the mat", "a dog ran far", "and then"] * 60) + "\n"


def mpirun(n, *args, timeout=240, env=None, **kw):
    return subprocess.run([MPIEXEC, "-n", str(n), *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env={**CLEAN_ENV, **(env or {})}, **kw)


def bptt(*args, n=None, **kw):
    """`bptt ARGS` (under `mpiexec -n n` when n is given)."""
    cmd = [sys.executable, "-m", "bptt", *map(str, args)]
    if n is None:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=240, env=CLEAN_ENV, **kw)
    return mpirun(n, *cmd, **kw)


def arrays(path):
    with np.load(path) as z:
        return {k: z[k] for k in z.files if k != "__meta__"}


def rel_err(a, b):
    return float(np.abs(a - b).max() / max(np.abs(a).max(), 1e-300))


# ---- without MPI ------------------------------------------------------------------------------------
def test_launcher_detection():
    assert not C.launched_by_mpi({})
    assert C.launched_by_mpi({"PMI_RANK": "1"}) and C.launched_by_mpi({"OMPI_COMM_WORLD_SIZE": "2"})
    assert not C.launched_by_mpi({"PMI_RANK": "1", "BPTT_MPI": "0"}) and C.launched_by_mpi({"BPTT_MPI": "1"})
    assert C.env_rank({"PMI_RANK": "3"}) == 3 and C.env_rank({}) == 0


def test_local_ranks_from_the_launchers_variables():
    assert C.local_ranks(4, {"MPI_LOCALNRANKS": "2"}) == 2  # MPICH / Hydra
    assert C.local_ranks(4, {"OMPI_COMM_WORLD_LOCAL_SIZE": "3"}) == 3  # Open MPI
    assert C.local_ranks(8, {"SLURM_NTASKS_PER_NODE": "4"}) == 4
    assert C.local_ranks(5, {}) == 5  # unknown: as if all ranks shared this machine


class _Request:
    """A stand-in for an MPI request that completes at its n-th Test()."""

    def __init__(self, n):
        self.n, self.tests = n, 0

    def Test(self):
        self.tests += 1
        return self.tests >= self.n


def _waiter(spin):
    w = object.__new__(C.MPIComm)  # only _wait's attributes: no MPI needed
    w.spin = spin
    return w


def test_waiting_spins_first_then_sleeps_and_times_out(monkeypatch):
    pauses = []
    monkeypatch.setattr(C.time, "sleep", pauses.append)
    fast = _Request(2000)
    assert _waiter(60.0)._wait(fast) and fast.tests == 2000 and pauses == []  # within the spin: no sleep
    slow = _Request(20)
    assert _waiter(0.0)._wait(slow) and slow.tests == 20  # no spin (more ranks than cores): sleeps at once
    assert len(pauses) == 19 and pauses[0] == 5e-5 and max(pauses) == C.MPIComm.PAUSE  # doubling, capped
    never = _Request(10**9)
    monkeypatch.setattr(C.time, "sleep", lambda s: None)
    clock = iter(range(10**6))
    monkeypatch.setattr(C.time, "perf_counter", lambda: next(clock) * 1e-3)  # 1 ms a reading
    assert _waiter(0.0)._wait(never, timeout=0.05) is False and never.tests < 100


class _Ranks:
    def __init__(self, size):
        self.size = size


@pytest.mark.parametrize("size,env,cores,want", [
    (1, {}, 2, None),  # one process: nothing to share
    (2, {"MPI_LOCALNRANKS": "2"}, 2, 1), (2, {"MPI_LOCALNRANKS": "2"}, 16, 8),
    (4, {"MPI_LOCALNRANKS": "4"}, 2, 1),  # oversubscribed: still one each
    (8, {"SLURM_NTASKS_PER_NODE": "2"}, 8, 4),  # a cluster: the ranks on this node count
    (2, {"MPI_LOCALNRANKS": "2", "OPENBLAS_NUM_THREADS": "2"}, 2, None),  # the user's choice stands
    (2, {"MPI_LOCALNRANKS": "2", "OMP_NUM_THREADS": "1"}, 2, None),
])
def test_blas_threads_per_rank(size, env, cores, want):
    assert P.threads_per_rank(_Ranks(size), env=env, cores=cores) == want


def test_rank_blas_threads_limits_inside_and_restores(monkeypatch):
    threadpoolctl = pytest.importorskip("threadpoolctl")
    for k in P.THREAD_VARS:
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("MPI_LOCALNRANKS", "2")
    blas = lambda: [d["num_threads"] for d in threadpoolctl.threadpool_info() if d["user_api"] == "blas"]  # noqa: E731
    before = blas()
    want = max(1, (os.cpu_count() or 1) // 2)
    with P.rank_blas_threads(_Ranks(2)) as words:
        assert words == f"{want} BLAS thread{'s' if want > 1 else ''} each" and set(blas()) == {want}
    assert blas() == before
    with P.rank_blas_threads(_Ranks(1)) as words:
        assert words is None and blas() == before


def test_single_communicator_is_trivial(tmp_path):
    s = C.Single()
    buf = np.arange(4.0)
    assert s.allreduce_sum(buf) is buf and s.bcast({"a": 1}) == {"a": 1} and s.gather(5) == [5]
    assert s.on_root(lambda x: x + 1, 1) == 2 and s.root_only(len)("abc") == 3
    with s.root_file(tmp_path / "f", "w") as f:
        f.write("x")
    assert (tmp_path / "f").read_text() == "x"
    assert C.world().size == 1  # pytest itself runs alone


def test_one_rank_passes_everything_through():
    dp = P.DataParallel(C.Single(), 6)
    g = {"W": np.ones((2, 2)), "s0": np.zeros(2)}
    E, g2, stop = dp.reduce(1.5, g, None)
    assert E == 1.5 and g2 is g and stop is False
    state = (np.ones((6, 3)), np.zeros((6, 3)))
    assert dp.local_state(state) is state and dp.whole_state(state) is state


class _Fake(C.Single):
    def __init__(self, rank, size):
        self.rank, self.size, self.is_root = rank, size, rank == 0


@pytest.mark.parametrize("R,B,word", [(4, 6, "not a multiple of the 4 MPI ranks"),
                                      (8, 6, "6 sequences cannot be split over 8 MPI ranks")])
def test_batch_split_refused(R, B, word):
    with pytest.raises(InputError, match=word):
        P.DataParallel(_Fake(0, R), B)


@pytest.mark.parametrize("task", ["text", "adding"])
def test_stream_columns_are_the_whole_streams_columns(task, tmp_path):
    """A rank's streams are exactly columns lo..hi of the B streams one process reads."""
    from bptt.data import get_task
    from bptt.data.streams import stream_for

    (tmp_path / "t.txt").write_text(TEXT)
    t = get_task("text", path=str(tmp_path / "t.txt")) if task == "text" else get_task("adding", length=5)
    whole = stream_for(t, 6, seed=1)
    for r in range(3):
        dp = P.DataParallel(_Fake(r, 3), 6)
        part = dp.stream(t, 1)
        for p0 in (0, 7, 40):
            w, p = whole.window(p0, 9), part.window(p0, 9)
            for a, b in zip(w[:3], p[:3]):
                np.testing.assert_array_equal(a[:, dp.lo:dp.hi], b)
            np.testing.assert_array_equal(w[3], p[3])
    lstm_state = (np.arange(2 * 6 * 3.0).reshape(2, 6, 3), np.zeros((6, 3)))
    got = P.DataParallel(_Fake(1, 3), 6).local_state(lstm_state)
    np.testing.assert_array_equal(got[0], lstm_state[0][:, 2:4])
    assert got[1].shape == (2, 3)


# ---- with MPI ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def text_file(tmp_path_factory):
    p = tmp_path_factory.mktemp("text") / "t.txt"
    p.write_text(TEXT)
    return p


@pytest.fixture(scope="module")
def one_process(tmp_path_factory, text_file):
    """The six reference runs (3 cells x batch/stream, float64, 20 steps), in one process."""
    out = tmp_path_factory.mktemp("r1")
    r = subprocess.run([sys.executable, str(HERE / "_mpi_train.py"), out, text_file], capture_output=True,
                       text=True, timeout=240, env=CLEAN_ENV)
    assert r.returncode == 0, r.stderr
    return out


@needs_mpi
def test_mpiexec_works_over_loopback():
    # every rank's sum gathered on rank 0, which alone prints: two ranks writing one stdout can interleave
    r = mpirun(2, sys.executable, "-c", "from mpi4py import MPI; import numpy as np; c = MPI.COMM_WORLD; "
               "a = np.array([c.rank + 1.0]); c.Allreduce(MPI.IN_PLACE, a); g = c.gather(float(a[0])); "
               "c.rank == 0 and print(c.size, g)")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["2 [3.0, 3.0]"]


@needs_mpi
@pytest.mark.parametrize("R", [2, 3])
def test_same_model_as_one_process(R, one_process, text_file, tmp_path):
    """float64, 20 steps: weights (and optimiser state, carried state) equal to the single-process run to
    <= 1e-10 relative, for Elman, LSTM and GRU, batch and stream mode; only rank 0 wrote files."""
    r = mpirun(R, sys.executable, HERE / "_mpi_train.py", tmp_path, text_file)
    assert r.returncode == 0, r.stderr
    for name in CASES:
        ref, got = arrays(one_process / name / "checkpoint.npz"), arrays(tmp_path / name / "checkpoint.npz")
        assert ref.keys() == got.keys()
        for k in ref:
            assert got[k].shape == ref[k].shape, (name, k)
            assert rel_err(ref[k], got[k]) <= 1e-10, (name, k, rel_err(ref[k], got[k]))
        m_ref, m_got = arrays(one_process / name / "model.npz"), arrays(tmp_path / name / "model.npz")
        assert max(rel_err(m_ref[k], m_got[k]) for k in m_ref) <= 1e-10
        with open(one_process / name / "metrics.csv") as a, open(tmp_path / name / "metrics.csv") as b:
            ra, rb = list(csv.DictReader(a)), list(csv.DictReader(b))
        assert [x["step"] for x in ra] == [x["step"] for x in rb] == [str(s) for s in range(1, 21)]
        assert max(abs(float(x["loss"]) / float(y["loss"]) - 1) for x, y in zip(ra, rb)) <= 1e-9
    assert not list(tmp_path.glob("**/.*.tmp-*"))


@needs_mpi
def test_checkpoint_resumes_with_another_number_of_ranks(one_process, text_file, tmp_path):
    """10 steps on 2 ranks, then --resume to 20 on 3 ranks (and on 1): the same model as 20 steps in one
    process; the checkpoint's carried state is whole (6 streams, global order)."""
    r = mpirun(2, sys.executable, HERE / "_mpi_train.py", tmp_path, text_file, 10)
    assert r.returncode == 0, r.stderr
    assert arrays(tmp_path / "lstm-stream" / "checkpoint.npz")["carry/1"].shape == (6, 4)
    shutil.copytree(tmp_path, tmp_path / "alone", ignore=shutil.ignore_patterns("alone"))
    r = mpirun(3, sys.executable, HERE / "_mpi_train.py", tmp_path, text_file, 20, "--resume")
    assert r.returncode == 0, r.stderr
    r = subprocess.run([sys.executable, HERE / "_mpi_train.py", tmp_path / "alone", text_file, "20", "--resume"],
                       capture_output=True, text=True, timeout=240, env=CLEAN_ENV)
    assert r.returncode == 0, r.stderr
    for name in ("elman-stream", "lstm-stream", "gru-batch"):
        ref = arrays(one_process / name / "checkpoint.npz")
        for where in (tmp_path, tmp_path / "alone"):
            got = arrays(where / name / "checkpoint.npz")
            assert max(rel_err(ref[k], got[k]) for k in ref) <= 1e-10, (name, where)


TRAIN = ["train", "adding", "--length", "6", "--hidden", "4", "--batch", "4", "--steps", "24", "--quiet",
         "--checkpoint-every", "5", "--heldout", "8"]


@needs_mpi
def test_kill_one_rank_ends_the_job_and_resume_is_exact(tmp_path):
    """kill -9 of rank 1 in its 13th update: the job ends (no hang), --resume continues from the step-10
    checkpoint, and the final model equals an uninterrupted 2-rank run's array by array."""
    r = bptt(*TRAIN, "--out", tmp_path / "whole", n=2)
    assert r.returncode == 0, r.stderr
    t0 = time.monotonic()
    r = mpirun(2, sys.executable, HERE / "_killer.py", "step", "13", *TRAIN, "--out", tmp_path / "cut",
               env={"KILL_RANK": "1"}, timeout=120)
    assert r.returncode != 0 and time.monotonic() - t0 < 120
    assert files.load_checkpoint(tmp_path / "cut" / "checkpoint.npz")[2]["step"] == 10
    assert not (tmp_path / "cut" / "model.npz").exists()
    r = bptt(*TRAIN, "--out", tmp_path / "cut", "--resume", n=2)
    assert r.returncode == 0, r.stderr
    a, b = arrays(tmp_path / "whole" / "model.npz"), arrays(tmp_path / "cut" / "model.npz")
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


@needs_mpi
@pytest.mark.parametrize("R,args,expect", [
    (4, ["--batch", 6], "bptt train: error: --batch: 6 is not a multiple of the 4 MPI ranks; expected a multiple of 4"),
    (3, ["--batch", 2], "bptt train: error: --batch: 2 sequences cannot be split over 3 MPI ranks"),
    (2, ["--batch", 2, "--online", "rtrl"], "bptt train: error: --online: online gradient algorithms train in one "
                                            "process; got 2 MPI ranks"),
])
def test_bad_split_one_line_nothing_written(R, args, expect, tmp_path):
    r = bptt("train", "adding", *args, "--steps", 2, "--out", tmp_path / "o", n=R)
    assert r.returncode == 2
    assert r.stderr.startswith(expect) and r.stderr.count("\n") == 1, r.stderr
    assert r.stdout == "" and not (tmp_path / "o").exists()


@needs_mpi
def test_mpi4py_missing_one_line_nothing_written(tmp_path):
    fake = tmp_path / "fake" / "mpi4py"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('No module named mpi4py')\n")
    path = os.pathsep.join([str(tmp_path / "fake"), os.environ.get("PYTHONPATH", "")])
    r = bptt("train", "adding", "--steps", 2, "--out", tmp_path / "o", n=2, env={"PYTHONPATH": path})
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and "mpi4py cannot be imported" in r.stderr and 'bptt[mpi]' in r.stderr
    assert not (tmp_path / "o").exists()


@needs_mpi
def test_ranks_sharing_the_cores_take_fewer_blas_threads_and_say_so(tmp_path):
    """Two ranks, each with OpenBLAS's default threads, fought over 2 cores (4-5 steps/s against 76): each
    rank now takes cores // ranks BLAS threads unless the user chose (OPENBLAS_NUM_THREADS, ...)."""
    env = {k: "" for k in P.THREAD_VARS}  # unset (an empty value is no choice)
    r = bptt("train", "adding", "--steps", 2, "--heldout", 8, "--out", tmp_path / "a", n=2, env=env)
    assert r.returncode == 0, r.stderr
    want = max(1, (os.cpu_count() or 1) // 2)
    assert f"on 2 MPI ranks, {want} BLAS thread{'s' if want > 1 else ''} each (gradients:" in r.stderr.splitlines()[0]
    r = bptt("train", "adding", "--steps", 2, "--heldout", 8, "--out", tmp_path / "b", n=2,
             env={**env, "OPENBLAS_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stderr
    assert "on 2 MPI ranks (gradients:" in r.stderr.splitlines()[0]


@needs_mpi
def test_usage_error_and_other_commands_print_once(tmp_path):
    r = bptt("train", "adding", "--bogus", n=2)
    assert r.returncode == 2 and r.stderr.count("unrecognized option --bogus") == 1
    r = bptt("explain", n=2)
    assert r.returncode == 0 and r.stdout == bptt("explain").stdout


GRID = ["experiment", "memory", "--tasks", "adding", "--cells", "elman-uniform,gru", "--lengths", "5,6",
        "--seeds", "1", "--steps", "15", "--hidden", "3"]


def _rows(path):
    with open(path) as f:
        return [{k: v for k, v in r.items() if k != "train_seconds"} for r in csv.DictReader(f)]


@needs_mpi
def test_experiment_grid_over_ranks(tmp_path):
    """The grid's runs spread over 2 ranks give the table of one process; rank 0 writes it; an interrupted
    grid (one run's model gone, its checkpoint kept) resumes on 3 ranks."""
    one = bptt(*GRID, "--out", tmp_path / "one", "--quiet")
    assert one.returncode == 0, one.stderr
    two = bptt(*GRID, "--out", tmp_path / "two", "--quiet", n=2)
    assert two.returncode == 0, two.stderr
    assert two.stdout == one.stdout.replace(str(tmp_path / "one"), str(tmp_path / "two"))  # the table, once
    assert _rows(tmp_path / "two" / "memory.csv") == _rows(tmp_path / "one" / "memory.csv")
    (tmp_path / "two" / "runs" / "adding-T6-gru-seed0" / "model.npz").unlink()
    three = bptt(*GRID, "--out", tmp_path / "two", "--quiet", n=3)
    assert three.returncode == 0, three.stderr
    assert _rows(tmp_path / "two" / "memory.csv") == _rows(tmp_path / "one" / "memory.csv")


@needs_mpi
def test_resume_of_a_folder_another_job_holds(tmp_path):
    """--resume under mpiexec of a run whose folder another process holds (its lock): one line naming that
    process, exit 2, nothing in the folder touched."""
    from bptt import rundir

    out = tmp_path / "run"
    assert bptt(*TRAIN, "--steps", 5, "--out", out).returncode == 0

    def files_now():
        return {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in out.iterdir() if p.name != ".lock"}

    before = files_now()
    with rundir.lock(out):
        r = bptt(*TRAIN, "--steps", 10, "--out", out, "--resume", n=2)
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
    assert "is in use by another bptt run" in r.stderr and f"PID {os.getpid()}" in r.stderr
    assert files_now() == before  # (.lock is this test's own)
