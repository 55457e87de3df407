"""Peak extra memory (tracemalloc) and time of loading every hostile file of tests/test_hostile_files.py
(issue 9: each must be a ModelFileError within 64 MiB + 4 x its size and 2 s).

    python benchmarks/hostile_load.py

Prints the worst rows by peak memory and by time, and how many rows held both bounds. Time is measured
here, never asserted in tests.
"""

from __future__ import annotations

import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from test_hostile_files import R, budget, load_any  # noqa: E402

from bptt.errors import ModelFileError  # noqa: E402


def main() -> None:
    rows = []
    with tempfile.TemporaryDirectory() as d:
        for row in R:
            data = row.build()
            p = Path(d) / f"{row.kind}.npz"
            p.write_bytes(data)
            tracemalloc.start()
            t0 = time.perf_counter()
            try:
                load_any(row.kind, p)
                outcome = "LOADED"
            except ModelFileError:
                outcome = "ModelFileError"
            except Exception as e:  # noqa: BLE001
                outcome = type(e).__name__
            dt = time.perf_counter() - t0
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            rows.append((row.id, len(data), peak, dt, outcome))
    held = [r for r in rows if r[4] == "ModelFileError" and r[2] <= budget(r[1]) and r[3] <= 2.0]
    print(f"{len(rows)} hostile files, {len(held)} refused with ModelFileError within 64 MiB + 4 x size and 2 s")
    for title, key in (("by peak memory", 2), ("by time", 3)):
        print(f"worst {title}:")
        for r in sorted(rows, key=lambda r: -r[key])[:3]:
            print(f"  {r[0]!r}: file {r[1]} bytes, peak {r[2] / 2**20:.2f} MiB, {r[3] * 1000:.1f} ms, {r[4]}")
    bad = [r for r in rows if r not in held]
    for r in bad:
        print("NOT HELD:", r)


if __name__ == "__main__":
    main()
