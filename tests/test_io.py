"""Tests of bptt.io: exact round trips, atomic writes, and refusal of hostile or broken files."""

import errno
import io
import json
import os
import pathlib
import pickle
import zipfile

import numpy as np
import pytest

import bptt.io as bio
from bptt.errors import InputError, ModelFileError
from bptt.io import atomic_path, atomic_write_bytes, encode_npz, read_npz, write_npz


class Evil:
    """Unpickling this creates the marker file: proof that a loader executed file content."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (pathlib.Path.touch, (pathlib.Path(self.marker),))


def sample_arrays():
    rng = np.random.default_rng(1234)
    return {
        "cell.W_xh": rng.standard_normal((3, 5)),  # float64
        "cell.W_hh": np.asfortranarray(rng.standard_normal((5, 5))),  # Fortran order kept
        "cell.b": rng.standard_normal(5).astype(np.float32),
        "head/W": rng.standard_normal((5, 2)) * 1e-300,  # subnormal-ish values survive bitwise
        "step": np.array(17, dtype=np.int64),  # 0-d
        "classes": np.arange(-4, 4, dtype=np.int8),
        "mask": np.array([[True, False], [False, True]]),
        "bytes": np.arange(256, dtype=np.uint8),
        "empty": np.zeros((0, 3)),
    }


SAMPLE_META = {
    "cell": {"type": "lstm", "sizes": [3, 5, 2], "forget_bias": 1.0},
    "note": "héllo ✓",
    "lr": 0.1,
    "neg_zero": -0.0,
    "big": 2**70,
    "flags": [True, False, None],
    "nested": {"a": {"b": {"c": [1, [2, [3.5e-310]]]}}},
}


def assert_bitwise_equal(got, want):
    assert list(got) == list(want)
    for name, arr in want.items():
        g = got[name]
        assert g.dtype == arr.dtype, name
        assert g.shape == arr.shape, name
        assert g.tobytes(order="A") == np.asarray(arr).tobytes(order="A"), name
        assert g.flags.writeable


def rebuild(data, replace=None, drop=(), add=None, compress=zipfile.ZIP_STORED):
    """A new zip from ``data``'s members: some replaced, dropped or added (CRCs all correct)."""
    replace = replace or {}
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w", compress) as dst:
        for info in src.infolist():
            if info.filename in drop:
                continue
            dst.writestr(info.filename, replace.get(info.filename, src.read(info.filename)))
        for name, blob in (add or {}).items():
            dst.writestr(name, blob)
    return out.getvalue()


def npy_bytes(arr, allow_pickle=False):
    buf = io.BytesIO()
    np.lib.format.write_array(buf, arr, allow_pickle=allow_pickle)
    return buf.getvalue()


def npy_with_header(header, payload):
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, header)
    return buf.getvalue() + payload


def envelope(data):
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        blob = np.lib.format.read_array(io.BytesIO(zf.read("__meta__.npy")))
    return json.loads(blob.tobytes().decode("utf-8"))


def with_envelope(data, env_or_text):
    text = env_or_text if isinstance(env_or_text, str) else json.dumps(env_or_text)
    blob = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)
    return rebuild(data, replace={"__meta__.npy": npy_bytes(blob)})


@pytest.fixture
def good():
    return encode_npz(sample_arrays(), SAMPLE_META, kind="model")


def read_bytes(data, **kw):
    return read_npz(io.BytesIO(data), **kw)


# ---------------------------------------------------------------------------------------------
# Round trips
# ---------------------------------------------------------------------------------------------


def test_round_trip_is_bitwise_exact(tmp_path):
    arrays = sample_arrays()
    path = tmp_path / "model.npz"
    write_npz(path, arrays, SAMPLE_META, kind="model")
    expected = {k: v.shape for k, v in arrays.items()}
    got, meta = read_npz(path, kind="model", expected=expected)
    assert_bitwise_equal(got, arrays)
    assert got["cell.W_hh"].flags.f_contiguous
    assert meta == SAMPLE_META
    assert str(meta["neg_zero"]) == "-0.0" and meta["big"] == 2**70
    assert os.listdir(tmp_path) == ["model.npz"]  # no temp file left behind


def test_file_is_a_plain_npz_for_numpy(tmp_path):
    arrays = sample_arrays()
    path = tmp_path / "m.npz"
    write_npz(path, arrays, SAMPLE_META, kind="checkpoint")
    with np.load(path, allow_pickle=False) as npz:
        assert set(npz.files) == set(arrays) | {"__meta__"}
        for name, arr in arrays.items():
            assert npz[name].dtype == arr.dtype
            assert npz[name].tobytes() == arr.tobytes()
        env = json.loads(npz["__meta__"].tobytes().decode("utf-8"))
    assert env["format"] == "bptt-checkpoint" and env["format_version"] == 1
    assert env["meta"] == SAMPLE_META
    assert env["arrays"]["cell.W_xh"]["dtype"] == "<f8" and env["arrays"]["cell.W_xh"]["shape"] == [3, 5]


def test_same_content_gives_same_bytes_and_file_objects_work(tmp_path):
    a = encode_npz(sample_arrays(), SAMPLE_META, kind="model")
    b = encode_npz(sample_arrays(), SAMPLE_META, kind="model")
    assert a == b
    path = tmp_path / "m.npz"
    write_npz(path, sample_arrays(), SAMPLE_META, kind="model")
    assert path.read_bytes() == a
    got, meta = read_bytes(a)
    assert_bitwise_equal(got, sample_arrays())
    assert meta == SAMPLE_META


def test_numpy_scalar_is_stored_as_0d_array():
    got, _ = read_bytes(encode_npz({"x": np.float32(2.5)}, {}, kind="model"))
    assert got["x"].shape == () and got["x"].dtype == np.float32 and got["x"] == np.float32(2.5)


def test_compressed_repack_still_loads(good):
    repacked = rebuild(good, compress=zipfile.ZIP_DEFLATED)
    assert repacked != good
    got, meta = read_bytes(repacked, kind="model")
    assert_bitwise_equal(got, sample_arrays())
    assert meta == SAMPLE_META


def test_big_endian_member_is_returned_native(good):
    arr = sample_arrays()["cell.W_xh"]
    env = envelope(good)
    env["arrays"]["cell.W_xh"]["dtype"] = ">f8"
    env["arrays"]["cell.W_xh"]["sha256"] = bio._sha256(arr.astype(">f8"))
    data = rebuild(with_envelope(good, env), replace={"cell.W_xh.npy": npy_bytes(arr.astype(">f8"))})
    got, _ = read_bytes(data)
    assert got["cell.W_xh"].dtype == np.float64 and got["cell.W_xh"].dtype.isnative
    assert np.array_equal(got["cell.W_xh"], arr)


# ---------------------------------------------------------------------------------------------
# Refusals before writing
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "arrays, meta, kind, fragment",
    [
        ({"w": np.array([1.0, np.nan])}, {}, "model", "NaN"),
        ({"w": np.array([np.inf], dtype=np.float32)}, {}, "model", "NaN or inf"),
        ({"w": np.array([1, "a"], dtype=object)}, {}, "model", "object"),
        ({"w": np.array([1j])}, {}, "model", "complex"),
        ({"w": np.array(["ab"])}, {}, "model", "dtype <U2"),
        ({"w": np.zeros(2, dtype=np.longdouble)}, {}, "model", "64 bit"),
        ({"w": [1.0, 2.0]}, {}, "model", "numpy.ndarray"),
        ({3: np.zeros(2)}, {}, "model", "names must be str"),
        ({"__meta__": np.zeros(2)}, {}, "model", "invalid name"),
        ({"a b": np.zeros(2)}, {}, "model", "invalid name"),
        ({"": np.zeros(2)}, {}, "model", "invalid name"),
        ({"w": np.zeros(2)}, {"x": float("nan")}, "model", "finite"),
        ({"w": np.zeros(2)}, {"x": (1, 2)}, "model", "tuple"),
        ({"w": np.zeros(2)}, {"x": {1: 2}}, "model", "keys must be str"),
        ({"w": np.zeros(2)}, {"x": np.int64(3)}, "model", "int64"),
        ({"w": np.zeros(2)}, {"x": {1, 2}}, "model", "set"),
        ({"w": np.zeros(2)}, [1], "model", "meta: expected a dict"),
        ({"w": np.zeros(2)}, {}, "weights", "kind"),
        ({"w": np.zeros(2)}, {}, "bptt-model", "kind"),
    ],
)
def test_bad_content_is_refused_before_touching_disk(tmp_path, arrays, meta, kind, fragment):
    path = tmp_path / "m.npz"
    with pytest.raises(InputError, match=fragment):
        write_npz(path, arrays, meta, kind=kind)
    assert os.listdir(tmp_path) == []


def test_nan_refused_keeps_old_file(tmp_path):
    path = tmp_path / "m.npz"
    write_npz(path, {"w": np.ones(3)}, {"v": 1}, kind="model")
    before = path.read_bytes()
    with pytest.raises(InputError, match="never written"):
        write_npz(path, {"w": np.array([1.0, np.nan, 3.0])}, {"v": 2}, kind="model")
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["m.npz"]


# ---------------------------------------------------------------------------------------------
# Atomicity and OS errors
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def old_file(tmp_path):
    path = tmp_path / "model.npz"
    write_npz(path, {"w": np.ones(3)}, {"v": "old"}, kind="model")
    return path, path.read_bytes()


def test_failing_rename_keeps_old_file(monkeypatch, old_file):
    path, before = old_file

    def boom(src, dst):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(bio.os, "replace", boom)
    with pytest.raises(ModelFileError) as info:
        write_npz(path, {"w": np.zeros(3)}, {"v": "new"}, kind="model")
    msg = str(info.value)
    assert str(path) in msg and "No space left on device (errno 28)" in msg and "nothing was written" in msg
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert os.listdir(path.parent) == [path.name]


def test_disk_full_halfway_through_the_write(monkeypatch, old_file):
    path, before = old_file
    real_open = open

    class HalfFull:
        """Writes half of what it is given, then reports a full disk."""

        def __init__(self, fh):
            self.fh = fh

        def write(self, data):
            self.fh.write(bytes(data[: len(data) // 2]))
            self.fh.flush()
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.fh.close()

    monkeypatch.setattr(bio, "open", lambda p, mode: HalfFull(real_open(p, mode)), raising=False)
    with pytest.raises(ModelFileError, match="No space left on device"):
        write_npz(path, {"w": np.zeros(1000)}, {"v": "new"}, kind="model")
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert os.listdir(path.parent) == [path.name]
    assert read_npz(path)[1] == {"v": "old"}


def test_failing_fsync_keeps_old_file(monkeypatch, old_file):
    path, before = old_file

    def eio(fd):
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    monkeypatch.setattr(bio.os, "fsync", eio)
    with pytest.raises(ModelFileError, match="errno 5"):
        write_npz(path, {"w": np.zeros(3)}, {}, kind="model")
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert os.listdir(path.parent) == [path.name]


@pytest.mark.parametrize("exc", [RuntimeError("bug in caller"), KeyboardInterrupt()])
def test_exception_in_body_removes_temp_and_propagates(old_file, exc):
    path, before = old_file
    seen = []
    with pytest.raises(type(exc)):
        with atomic_path(path) as tmp:
            seen.append(tmp)
            assert tmp.parent == path.parent and tmp.name.startswith(".model.npz.tmp-")
            assert f"-{os.getpid()}-" in tmp.name
            tmp.write_bytes(b"partial")
            raise exc
    assert not seen[0].exists()
    assert path.read_bytes() == before
    assert os.listdir(path.parent) == [path.name]


def test_atomic_write_bytes_replaces_content(tmp_path):
    path = tmp_path / "f.bin"
    atomic_write_bytes(path, b"one")
    atomic_write_bytes(path, bytearray(b"two"))
    assert path.read_bytes() == b"two"
    assert os.listdir(tmp_path) == ["f.bin"]
    with pytest.raises(InputError, match="bytes"):
        atomic_write_bytes(path, "text")
    assert path.read_bytes() == b"two"


def test_missing_folder(tmp_path):
    path = tmp_path / "no" / "such" / "model.npz"
    with pytest.raises(ModelFileError, match="does not exist; create it first") as info:
        write_npz(path, {"w": np.zeros(2)}, {}, kind="model")
    assert str(path) in str(info.value)
    assert os.listdir(tmp_path) == []


def test_parent_is_a_file(tmp_path):
    (tmp_path / "plain").write_bytes(b"x")
    path = tmp_path / "plain" / "model.npz"
    with pytest.raises(ModelFileError, match="is not a folder"):
        write_npz(path, {"w": np.zeros(2)}, {}, kind="model")
    assert os.listdir(tmp_path) == ["plain"]


def test_target_is_a_folder(tmp_path):
    (tmp_path / "model.npz").mkdir()
    with pytest.raises(ModelFileError, match="existing folder"):
        write_npz(tmp_path / "model.npz", {"w": np.zeros(2)}, {}, kind="model")
    assert os.listdir(tmp_path) == ["model.npz"]


def test_temp_file_cannot_be_created(monkeypatch, tmp_path):
    real = os.open

    def denied(p, flags, *a):
        if flags & os.O_CREAT:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(p))
        return real(p, flags, *a)

    monkeypatch.setattr(bio.os, "open", denied)
    with pytest.raises(ModelFileError, match="Permission denied"):
        write_npz(tmp_path / "m.npz", {"w": np.zeros(2)}, {}, kind="model")
    monkeypatch.undo()
    assert os.listdir(tmp_path) == []


# ---------------------------------------------------------------------------------------------
# Hostile and broken files
# ---------------------------------------------------------------------------------------------


def test_pickled_object_array_is_never_unpickled(tmp_path, good):
    marker = tmp_path / "pwned"
    evil = np.empty(2, dtype=object)
    evil[:] = [Evil(marker), Evil(marker)]
    data = rebuild(good, replace={"cell.W_xh.npy": npy_bytes(evil, allow_pickle=True)})
    path = tmp_path / "evil.npz"
    path.write_bytes(data)
    # The file really is armed: a pickle-enabled loader runs the payload.
    with np.load(path, allow_pickle=True) as npz:
        npz["cell.W_xh"]
    assert marker.exists()
    marker.unlink()
    with pytest.raises(ModelFileError, match="object arrays would need unpickling") as info:
        read_npz(path, kind="model")
    assert str(path) in str(info.value)
    assert not marker.exists()


def test_pickle_as_meta_is_refused(tmp_path, good):
    marker = tmp_path / "pwned"
    data = rebuild(good, replace={"__meta__.npy": pickle.dumps(Evil(marker))})
    with pytest.raises(ModelFileError):
        read_bytes(data)
    assert not marker.exists()


@pytest.mark.parametrize("content", [b"", b"hello, this is not a zip file", b"PK\x03\x04" + b"\0" * 40])
def test_not_a_zip(tmp_path, content):
    path = tmp_path / "m.npz"
    path.write_bytes(content)
    with pytest.raises(ModelFileError, match="BadZipFile") as info:
        read_npz(path)
    assert repr(str(path)) in str(info.value)


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(ModelFileError, match="does not exist"):
        read_npz(tmp_path / "nope.npz")
    with pytest.raises(ModelFileError, match="is a folder"):
        read_npz(tmp_path)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)  # opening it would block forever
    with pytest.raises(ModelFileError, match="not a regular file"):
        read_npz(fifo)


def test_newer_format_version(good):
    env = envelope(good)
    env["format_version"] = 2
    with pytest.raises(ModelFileError, match="format_version 2.*reads format_version 1"):
        read_bytes(with_envelope(good, env))


@pytest.mark.parametrize("version", [0, -1, "1", 1.0, True, None])
def test_invalid_format_version(good, version):
    env = envelope(good)
    env["format_version"] = version
    with pytest.raises(ModelFileError, match="format_version"):
        read_bytes(with_envelope(good, env))


def test_wrong_kind(good):
    assert read_bytes(good, kind="model")[1] == SAMPLE_META
    with pytest.raises(ModelFileError, match="is a 'bptt-model' file; expected a 'bptt-checkpoint'"):
        read_bytes(good, kind="checkpoint")
    env = envelope(good)
    env["format"] = "pytorch"
    with pytest.raises(ModelFileError, match="format is 'pytorch'"):
        read_bytes(with_envelope(good, env))


def test_missing_meta(good):
    with pytest.raises(ModelFileError, match="no '__meta__' member"):
        read_bytes(rebuild(good, drop={"__meta__.npy"}))


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("{not json", "JSONDecodeError"),
        ("[1, 2]", "JSON list"),
        ('{"format": NaN}', "NaN"),
        ('{"a": 1e999}', "out of range"),
        ('{"a": 1, "a": 2}', "repeats the key"),
        ("[" * 100000 + "]" * 100000, "RecursionError"),
    ],
)
def test_bad_meta_json(good, text, fragment):
    with pytest.raises(ModelFileError, match=fragment):
        read_bytes(with_envelope(good, text))


def test_meta_not_utf8_or_not_uint8(good):
    bad_utf8 = np.frombuffer(b'{"a": "\xff"}', dtype=np.uint8)
    with pytest.raises(ModelFileError, match="UnicodeDecodeError"):
        read_bytes(rebuild(good, replace={"__meta__.npy": npy_bytes(bad_utf8)}))
    with pytest.raises(ModelFileError, match="expected 1-D uint8"):
        read_bytes(rebuild(good, replace={"__meta__.npy": npy_bytes(np.zeros(3))}))


def test_missing_manifest_or_meta_object(good):
    for key in ("arrays", "meta"):
        env = envelope(good)
        del env[key]
        with pytest.raises(ModelFileError, match=f"no '{key}'"):
            read_bytes(with_envelope(good, env))


def test_expected_shapes(good):
    shapes = {k: v.shape for k, v in sample_arrays().items()}
    read_bytes(good, expected=shapes)
    wrong = dict(shapes, **{"cell.W_xh": (5, 3)})
    with pytest.raises(ModelFileError, match=r"shape \(found, expected\).*cell.W_xh"):
        read_bytes(good, expected=wrong)
    with pytest.raises(ModelFileError, match=r"missing \['extra'\]"):
        read_bytes(good, expected=dict(shapes, extra=(1,)))
    fewer = dict(shapes)
    del fewer["step"]
    with pytest.raises(ModelFileError, match=r"unexpected \['step'\]"):
        read_bytes(good, expected=fewer)
    with pytest.raises(InputError, match="expected"):
        read_bytes(good, expected={"cell.W_xh": [3, 5]})
    with pytest.raises(InputError, match="kind"):
        read_bytes(good, kind="bptt-model")


def test_nan_inside_file(good):
    bad = sample_arrays()["cell.W_xh"].copy()
    bad[1, 2] = np.nan
    env = envelope(good)
    env["arrays"]["cell.W_xh"]["sha256"] = bio._sha256(bad)  # consistent checksum: only NaN is wrong
    data = rebuild(with_envelope(good, env), replace={"cell.W_xh.npy": npy_bytes(bad)})
    with pytest.raises(ModelFileError, match="'cell.W_xh' contains NaN or inf"):
        read_bytes(data)


def test_changed_values_fail_checksum(good):
    changed = sample_arrays()["cell.W_xh"].copy()
    changed[0, 0] += 1.0
    data = rebuild(good, replace={"cell.W_xh.npy": npy_bytes(changed)})  # zip CRC recomputed
    with pytest.raises(ModelFileError, match="checksum"):
        read_bytes(data)


def test_fortran_flag_flipped_fails_checksum(good):
    w = sample_arrays()["cell.W_hh"]  # square: the flip keeps the shape
    header = {"descr": "<f8", "fortran_order": False, "shape": (5, 5)}
    data = rebuild(good, replace={"cell.W_hh.npy": npy_with_header(header, w.tobytes(order="F"))})
    with pytest.raises(ModelFileError, match="checksum"):
        read_bytes(data)


def test_flipped_byte_fails_zip_crc(good):
    data = bytearray(good)
    with zipfile.ZipFile(io.BytesIO(good)) as zf:
        info = zf.getinfo("cell.W_xh.npy")
    data[info.header_offset + 30 + len(info.filename) + 200] ^= 0x10  # inside the array's data
    with pytest.raises(ModelFileError, match="CRC"):
        read_bytes(bytes(data))


@pytest.mark.parametrize("descr", ["<i8", ">f8", "<u8", "<f4", "|b1", "|O", "<c16", "|V8", "<U2", "|S8"])
def test_swapped_dtype(good, descr):
    w = sample_arrays()["cell.W_xh"]
    header = {"descr": descr, "fortran_order": False, "shape": (3, 5)}
    data = rebuild(good, replace={"cell.W_xh.npy": npy_with_header(header, w.tobytes())})
    with pytest.raises(ModelFileError):
        read_bytes(data)


@pytest.mark.parametrize("shape", [(10**12,), (10**6, 10**6), (2**62, 4), (3, 5, 10**9), (15,), (5, 3)])
def test_declared_shape_does_not_match(good, shape):
    w = sample_arrays()["cell.W_xh"]
    header = {"descr": "<f8", "fortran_order": False, "shape": shape}
    data = rebuild(good, replace={"cell.W_xh.npy": npy_with_header(header, w.tobytes())})
    with pytest.raises(ModelFileError, match="declares shape|manifest says"):
        read_bytes(data)


def test_size_limit_checked_before_reading(good):
    with pytest.raises(ModelFileError, match="limit is 1000 bytes"):
        read_bytes(good, max_bytes=1000)
    # A small deflated member that would expand to 4 MB is refused from its declared size alone.
    bomb = npy_bytes(np.zeros(500_000))
    data = rebuild(good, replace={"cell.W_xh.npy": bomb}, compress=zipfile.ZIP_DEFLATED)
    assert len(data) < 100_000
    with pytest.raises(ModelFileError, match="limit is 1000000 bytes"):
        read_bytes(data, max_bytes=1_000_000)


def test_members_not_matching_manifest(good):
    with pytest.raises(ModelFileError, match="do not match its manifest"):
        read_bytes(rebuild(good, drop={"step.npy"}))
    with pytest.raises(ModelFileError, match="do not match its manifest"):
        read_bytes(rebuild(good, add={"extra.npy": npy_bytes(np.zeros(2))}))
    with pytest.raises(ModelFileError, match="is not a .npy array"):
        read_bytes(rebuild(good, add={"readme.txt": b"hi"}))
    with pytest.warns(UserWarning, match="Duplicate name"):
        dup = rebuild(good, add={"step.npy": npy_bytes(np.array(99))})
    with pytest.raises(ModelFileError, match="appears twice"):
        read_bytes(dup)


def test_encrypted_flag_and_unknown_compression(good):
    with zipfile.ZipFile(io.BytesIO(good)) as zf:
        info = zf.getinfo("cell.b.npy")
    # Central directory entry of the member: find it by its signature + name.
    cd = good.rfind(b"PK\x01\x02", 0, good.rfind(b"cell.b.npy") + 1)
    encrypted = bytearray(good)
    encrypted[cd + 8] |= 0x01  # general purpose flag: encrypted
    with pytest.raises(ModelFileError, match="encrypted"):
        read_bytes(bytes(encrypted))
    method = bytearray(good)
    method[cd + 10] = 99  # compression method 99 (AES): unsupported
    with pytest.raises(ModelFileError, match="NotImplementedError"):
        read_bytes(bytes(method))
    assert info.compress_type == zipfile.ZIP_STORED


def test_error_message_names_file_and_problem(tmp_path):
    path = tmp_path / "broken.npz"
    path.write_bytes(b"garbage")
    with pytest.raises(ModelFileError) as info:
        read_npz(path, kind="checkpoint")
    msg = str(info.value)
    assert msg.startswith(f"cannot read checkpoint file {str(path)!r}: BadZipFile")
    assert "written by bptt" in msg
    assert isinstance(info.value, ValueError)
