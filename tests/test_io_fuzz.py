"""Fuzzing bptt.io.read_npz: 10,000+ mutations of a valid model file.

Each mutated file must either load to exactly the original content (the mutation hit a byte
that does not matter, e.g. a zip timestamp) or raise ModelFileError. Any other exception, a
hang, a partial result or an executed pickle fails the test.
"""

import io
import pathlib
import signal
import time
import zipfile
from collections import Counter

import numpy as np
import pytest

from bptt.errors import ModelFileError
from bptt.io import encode_npz, read_npz

SEED = 20240611
N_TRUNCATE = 3000
N_BITFLIP = 7000
N_OVERWRITE = 5000
N_OBJECT = 600
N_HUGE = 1800
N_DTYPE = 1800
N_LAYOUT = 800  # fortran flag flips, reshapes to other shapes of the same size
N_FROM_DISK = 300  # of the byte-level mutations, also read back through a real file path


class Evil:
    """Unpickling this creates the marker file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (pathlib.Path.touch, (pathlib.Path(self.marker),))


def model_arrays():
    rng = np.random.default_rng(7)
    return {
        "cell.W_xh": rng.standard_normal((3, 4)),
        "cell.W_hh": rng.standard_normal((4, 4)),
        "cell.b": rng.standard_normal(4).astype(np.float32),
        "head.W": rng.standard_normal((4, 2)),
        "step": np.array(3, dtype=np.int64),
    }


META = {"cell": {"type": "elman", "sizes": [3, 4, 2]}, "seed": 0, "lr": 0.05}


def npy_with_header(header, payload):
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, header)
    return buf.getvalue() + payload


def replace_member(data, name, blob):
    """A copy of zip ``data`` with member ``name`` replaced by ``blob`` (CRCs correct)."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            dst.writestr(info, blob if info.filename == name else src.read(info.filename))
    return out.getvalue()


def structured_mutations(good, arrays, rng, marker):
    """Well-formed zips with one hostile .npy member: object arrays, huge shapes, dtype swaps."""
    names = list(arrays)
    evil = np.empty(3, dtype=object)
    evil[:] = [Evil(marker), [Evil(marker)], {"k": Evil(marker)}]
    buf = io.BytesIO()
    np.lib.format.write_array(buf, evil, allow_pickle=True)
    evil_npy = buf.getvalue()
    swaps = ["<i8", ">f8", "<u8", "<f4", ">f4", "<i4", "<f2", "|b1", "|u1", "|O", "<c16", "|V8",
             "<U2", "|S8", "<M8[s]", "<m8[s]", [("a", "<f8")], "<f16"]
    for _ in range(N_OBJECT):
        target = names[rng.integers(len(names))] if rng.random() < 0.8 else "__meta__"
        yield "object", replace_member(good, target + ".npy", evil_npy)
    for _ in range(N_HUGE):
        name = names[rng.integers(len(names))]
        arr = arrays[name]
        ndim = int(rng.integers(1, 4))
        shape = tuple(int(10 ** rng.integers(6, 19)) for _ in range(ndim))
        if rng.random() < 0.3:
            shape = (10**12,)
        header = {"descr": arr.dtype.str, "fortran_order": False, "shape": shape}
        yield "huge", replace_member(good, name + ".npy", npy_with_header(header, arr.tobytes()))
    for _ in range(N_DTYPE):
        name = names[rng.integers(len(names))]
        arr = arrays[name]
        descr = arr.dtype.str
        while descr == arr.dtype.str:  # a real swap, never the array's own dtype
            descr = swaps[rng.integers(len(swaps))]
        header = {"descr": descr, "fortran_order": False, "shape": arr.shape}
        yield "dtype", replace_member(good, name + ".npy", npy_with_header(header, arr.tobytes()))
    for _ in range(N_LAYOUT):
        name = names[rng.integers(len(names))]
        arr = arrays[name]
        if arr.ndim == 2 and rng.random() < 0.5:
            header = {"descr": arr.dtype.str, "fortran_order": True, "shape": arr.shape}
        else:  # another shape with the same number of elements
            shapes = [(arr.size,), (1, arr.size), (arr.size, 1), arr.shape[::-1] + (1,)]
            shapes = [s for s in shapes if s != arr.shape]  # never the array's own shape
            shape = shapes[rng.integers(len(shapes))]
            header = {"descr": arr.dtype.str, "fortran_order": False, "shape": shape}
        yield "layout", replace_member(good, name + ".npy", npy_with_header(header, arr.tobytes()))


def byte_mutations(good, rng):
    n = len(good)
    for _ in range(N_TRUNCATE):
        yield "truncate", good[: int(rng.integers(0, n))]
    for _ in range(N_BITFLIP):
        data = bytearray(good)
        for pos, bit in zip(rng.integers(0, n, rng.integers(1, 9)), rng.integers(0, 8, 8)):
            data[pos] ^= 1 << int(bit)
        yield "bitflip", bytes(data)
    for _ in range(N_OVERWRITE):
        data = bytearray(good)
        k = int(rng.integers(1, 17))
        start = int(rng.integers(0, n))
        if rng.random() < 0.5:  # one run of random bytes
            chunk = rng.integers(0, 256, k, dtype=np.uint8).tobytes()
            data[start : start + k] = chunk[: n - start]
        else:  # scattered bytes, often the extreme values that break size fields
            for pos in rng.integers(0, n, k):
                data[pos] = int(rng.choice([0x00, 0xFF, 0x7F, 0x80, rng.integers(0, 256)]))
        yield "overwrite", bytes(data)


def same_content(got, want):
    arrays, meta = got
    return (
        meta == META
        and list(arrays) == list(want)
        and all(
            arrays[k].dtype == v.dtype and arrays[k].shape == v.shape and arrays[k].tobytes() == v.tobytes()
            for k, v in want.items()
        )
    )


@pytest.fixture
def alarm():
    """Turn a hang into a failure (Unix only)."""
    if not hasattr(signal, "SIGALRM"):
        yield
        return

    def timeout(signum, frame):
        raise TimeoutError("read_npz fuzz did not finish in 240 s: a mutation made it hang")

    old = signal.signal(signal.SIGALRM, timeout)
    signal.alarm(240)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


def test_mutated_files_load_identically_or_raise_model_file_error(tmp_path, alarm):
    arrays = model_arrays()
    expected = {k: v.shape for k, v in arrays.items()}
    good = encode_npz(arrays, META, kind="model")
    assert same_content(read_npz(io.BytesIO(good), kind="model", expected=expected), arrays)
    rng = np.random.default_rng(SEED)
    marker = tmp_path / "pwned"

    outcomes = Counter()  # (mutation, "equal" | "refused")
    slowest = 0.0
    cases = list(byte_mutations(good, rng)) + list(structured_mutations(good, arrays, rng, marker))
    disk = set(rng.choice(N_TRUNCATE + N_BITFLIP + N_OVERWRITE, N_FROM_DISK, replace=False).tolist())
    t_all = time.perf_counter()
    for i, (kind, data) in enumerate(cases):
        if i in disk:
            source = tmp_path / f"case{i}.npz"
            source.write_bytes(data)
        else:
            source = io.BytesIO(data)
        t0 = time.perf_counter()
        try:
            got = read_npz(source, kind="model", expected=expected)
        except ModelFileError:
            outcomes[kind, "refused"] += 1
        else:
            assert same_content(got, arrays), f"case {i} ({kind}) loaded different content"
            outcomes[kind, "equal"] += 1
        slowest = max(slowest, time.perf_counter() - t0)
    elapsed = time.perf_counter() - t_all

    print(f"\n{len(cases)} cases in {elapsed:.1f} s, slowest {slowest * 1e3:.1f} ms: {dict(sorted(outcomes.items()))}")
    assert len(cases) == 20_000
    assert not marker.exists(), "a pickle payload was executed"
    # Mutations that change content can never load: truncations, and every structured one.
    for kind in ("truncate", "object", "huge", "dtype", "layout"):
        assert outcomes[kind, "equal"] == 0, kind
    # Random byte damage is mostly caught, and some of it lands on bytes that do not matter.
    assert outcomes["bitflip", "refused"] > outcomes["bitflip", "equal"] > 0
    assert slowest < 5.0, f"one file took {slowest:.1f} s to refuse"
