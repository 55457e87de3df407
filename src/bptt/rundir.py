"""A run folder belongs to one run: an exclusive lock, and no run replaced by accident.

The lock is an OS advisory lock (``fcntl.flock``) on ``DIR/.lock``. The kernel drops it when the holding
process exits or dies (``kill -9`` included), so a lock is never stale; the PID of the holder is written
inside the file only so that a refused writer can name it. Readers (``evaluate``, ``sample``, ``predict``,
``diagnose``) never take the lock: every file in a run folder is replaced atomically, so a reader always
sees a whole file.

Writers use it like this::

    from bptt import rundir

    with rundir.lock(out):              # InputError naming the holder's PID if another process has it
        rundir.remove_stale_temps(out)  # temp files of a write that a kill -9 cut short
        ...                              # write the run's files

The lock is per process and not re-entrant: taking it twice in one process is refused too (naming this
process), which catches a run nested in another by mistake. Only the holder may remove temp files.
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Iterator
from pathlib import Path

from .errors import InputError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: msvcrt's byte-range lock instead (untested there)
    fcntl = None
    import msvcrt

LOCK_NAME = ".lock"
#: The files whose presence means "this folder holds a run".
RUN_FILES = ("model.npz", "checkpoint.npz", "metrics.csv")
#: What ``--force`` replaces (the run files and the picture drawn from them).
REPLACED_FILES = RUN_FILES + ("loss.png",)

_held: dict[str, int] = {}  # realpath of folder -> fd, for the locks this process holds


class FolderBusy(InputError):
    """Another process (named by PID) holds the run folder's lock."""

    def __init__(self, folder, pid: int | None):
        self.folder, self.pid = os.fspath(folder), pid
        who = f"PID {pid}" if pid is not None else "a process whose PID is not written yet"
        own = " (this very process)" if pid == os.getpid() else ""
        super().__init__(f"run folder {self.folder!r} is in use by another bptt run ({who}{own}); wait for it "
                         "to finish (or stop it), or use another --out")


def _key(folder) -> str:
    return os.path.realpath(os.fspath(folder))


_BYTE = 64  # msvcrt locks this byte (past the PID text, which stays readable)


def _read_pid(fd: int) -> int | None:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        text = os.read(fd, 32).decode("ascii", "replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def _try_lock(fd: int) -> bool:
    """Take the exclusive lock without waiting; False when someone else holds it."""
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        else:  # pragma: no cover
            os.lseek(fd, _BYTE, os.SEEK_SET)
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
    except OSError as e:
        if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES, errno.EDEADLK):
            return False
        raise
    return True


@contextlib.contextmanager
def lock(folder) -> Iterator[Path]:
    """Hold the exclusive lock of ``folder`` (which must exist) for the body of the ``with``.

    Yields the path of the lock file. Never waits: if another process (or this one) holds the lock,
    raises :class:`FolderBusy` (an :class:`InputError`) naming its PID. The lock file stays in the
    folder after release (removing it would race with a process opening it); it holds no state.

    Raises:
        FolderBusy: the lock is held elsewhere.
        InputError: the folder is missing or the lock file cannot be created (names the OS reason).
    """
    folder = Path(os.fspath(folder))
    key = _key(folder)
    if key in _held:
        raise FolderBusy(folder, os.getpid())
    path = folder / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o666)
    except OSError as e:
        raise InputError(f"cannot lock run folder {os.fspath(folder)!r}: {e.strerror or e}") from None
    try:
        try:
            if not _try_lock(fd):
                raise FolderBusy(folder, _read_pid(fd))
        except OSError as e:
            raise InputError(f"cannot lock run folder {os.fspath(folder)!r}: {e.strerror or e}") from None
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, f"{os.getpid()}\n".encode())
        _held[key] = fd
        try:
            yield path
        finally:
            del _held[key]
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)  # the kernel releases the lock on close (or on death)
    finally:
        os.close(fd)


def holds(folder) -> bool:
    """Whether this process holds the lock of ``folder``."""
    return _key(folder) in _held


def holder(folder) -> int | None:
    """The PID of the process that holds ``folder``'s lock, or None when nobody does (for messages and
    tests; it takes and drops the lock for an instant when free, and never creates the lock file)."""
    path = Path(os.fspath(folder)) / LOCK_NAME
    if _key(folder) in _held:
        return os.getpid()
    try:
        fd = os.open(path, os.O_RDWR | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return None
    try:
        if not _try_lock(fd):
            return _read_pid(fd) or -1
        return None  # free: closing the descriptor drops the lock taken for the test
    finally:
        os.close(fd)


def remove_stale_temps(folder) -> list[Path]:
    """Remove ``.NAME.tmp-*`` files that an atomic write cut short by a kill left behind. Only the lock
    holder may: another live writer's temp files are never touched. Returns the removed paths."""
    if not holds(folder):
        raise RuntimeError(f"remove_stale_temps({os.fspath(folder)!r}) without holding the folder's lock")
    removed = []
    for stale in Path(os.fspath(folder)).glob(".*.tmp-*"):
        with contextlib.suppress(FileNotFoundError):
            stale.unlink()
            removed.append(stale)
    return removed


def run_files(folder) -> list[str]:
    """Names of the run files present in ``folder`` (empty when it is missing or holds no run)."""
    folder = Path(os.fspath(folder))
    return [n for n in RUN_FILES if (folder / n).exists()]


def refuse_existing_run(folder, *, resume: bool, force: bool) -> None:
    """Refuse to start a fresh run in a folder that holds one, unless ``force`` (start over) or
    ``resume`` (continue it from its checkpoint; a run stopped before its first checkpoint, which left only
    metrics, starts again from step 0). Raises InputError naming the ways on."""
    if force:
        return
    present = run_files(folder)
    if not present:
        return
    shown = os.fspath(folder)
    if not resume:
        raise InputError(f"--out: {shown!r} already holds a run ({', '.join(present)}); use --resume to continue "
                         "it, --force to start over (replacing it), or another --out")
    if "checkpoint.npz" not in present and "model.npz" in present:  # metrics alone: killed before step 1's save
        raise InputError(f"--resume: {shown!r} holds a finished run ({', '.join(present)}) but no checkpoint.npz "
                         "to resume from; use --force to start over (replacing it), or another --out")


def replace_run(folder) -> list[str]:
    """Under the lock, for ``--force``: remove the old run's files; returns their names."""
    if not holds(folder):
        raise RuntimeError(f"replace_run({os.fspath(folder)!r}) without holding the folder's lock")
    gone = []
    for name in REPLACED_FILES:
        p = Path(os.fspath(folder)) / name
        if p.exists():
            p.unlink()
            gone.append(name)
    return gone

