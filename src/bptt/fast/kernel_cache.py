"""Keeping numba's on-disk cache of the compiled loops in step with their sources.

numba (``cache=True``) reuses a kernel compiled earlier as long as the kernel's own source file is
unchanged; it does not look at the functions inlined into it from other files (``blas.matmul``,
``mathfn.tanh``, ...). After an upgrade that changed only those, the cache would keep running the old
code. So the cache folder holds a stamp: a hash of every source file of ``bptt.fast`` and numba's version;
when it differs, the cached kernels of ``bptt.fast`` are deleted before the first call (numba compiles
them anew, once). A cache folder that cannot be written is left alone (numba then keeps its own rules).
"""

from __future__ import annotations

import glob
import hashlib
import os

STAMP = "bptt-kernels.stamp"


def sources_hash() -> str:
    """A hash of bptt.fast's source files and numba's version."""
    import numba

    h = hashlib.sha256(numba.__version__.encode())
    here = os.path.dirname(os.path.abspath(__file__))
    for path in sorted(glob.glob(os.path.join(here, "*.py"))):
        with open(path, "rb") as f:
            h.update(os.path.basename(path).encode() + b"\0" + f.read())
    return h.hexdigest()


def drop_stale(dispatchers) -> None:
    """Delete the cached kernels of bptt.fast in each dispatcher's cache folder whose stamp is not
    today's sources' hash, and write the stamp (never raises for a folder it cannot read or write)."""
    want = sources_hash()
    folders = {d._cache._cache_path for d in dispatchers if getattr(getattr(d, "_cache", None), "_cache_path", None)}
    for folder in folders:
        stamp = os.path.join(folder, STAMP)
        try:
            with open(stamp) as f:
                if f.read().strip() == want:
                    continue
        except OSError:
            pass
        try:
            for path in glob.glob(os.path.join(folder, "*.nb[ic]")):
                if os.path.basename(path).startswith(("numba_", "mathfn", "blas")):
                    os.remove(path)
            os.makedirs(folder, exist_ok=True)
            tmp = f"{stamp}.{os.getpid()}.tmp"
            with open(tmp, "w") as f:
                f.write(want + "\n")
            os.replace(tmp, stamp)
        except OSError:
            continue


__all__ = ["STAMP", "drop_stale", "sources_hash"]
