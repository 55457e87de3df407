"""Low-level, safe file input/output for bptt model and checkpoint files.

A bptt file is an ordinary uncompressed ``.npz`` (a zip of ``.npy`` members, readable by
``numpy.load(path, allow_pickle=False)``) with one extra member, ``__meta__``: a 1-D ``uint8``
array holding UTF-8 JSON of the form::

    {"format": "bptt-model" | "bptt-checkpoint",
     "format_version": 1,
     "bptt_version": "0.1.0",                       # informative only
     "arrays": {name: {"dtype": "<f8", "shape": [3, 5], "sha256": "..."}},   # manifest
     "meta": {...}}                                 # the caller's metadata, returned by read_npz

Writing is atomic (temporary file in the same folder, fsync, ``os.replace``, fsync of the
folder): a crash or error leaves either the old file or the new one, never half of one.

Reading treats the file as hostile: nothing is ever unpickled, every declared size is checked
against a limit before memory is allocated, every array must match the manifest (names, dtype,
shape, SHA-256 of its bytes) and be finite, and any problem, whatever layer detects it (zipfile,
the ``.npy`` header parser, JSON), becomes one :class:`~bptt.errors.ModelFileError` naming the
file. Either the whole content is returned or nothing is.

The network-level ``bptt.save`` / ``bptt.load`` are built on :func:`write_npz` / :func:`read_npz`.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io as _stdio
import json
import lzma
import math
import os
import re
import secrets
import struct
import tokenize
import zipfile
import zlib
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any, Union

import numpy as np
from numpy.lib import format as npy_format

from bptt._version import __version__
from bptt.errors import BPTTError, InputError, ModelFileError

PathLike = Union[str, "os.PathLike[str]"]

#: The file format version this bptt writes and the newest it reads.
FORMAT_VERSION = 1
#: Values of ``kind`` and the ``format`` string stored for each.
KINDS = {"model": "bptt-model", "checkpoint": "bptt-checkpoint"}
#: Largest total uncompressed size (all members together) read or written: 2 GiB.
MAX_TOTAL_BYTES = 2 * 1024**3
#: Largest ``__meta__`` JSON blob, in bytes.
MAX_META_BYTES = 16 * 1024**2
#: Deepest nesting of lists and dicts in the caller's metadata (written or read).
MAX_META_DEPTH = 64
#: Largest number of zip members (arrays + ``__meta__``).
MAX_MEMBERS = 4096

#: Largest ``.npy`` header accepted (numpy writes about 128 bytes for a bptt array).
MAX_NPY_HEADER = 4096
#: A file may declare at most this much uncompressed data beyond twice its own size (compressed
#: members): a zip bomb is refused from its declared sizes, before anything is decompressed.
MAX_EXPANSION_SLACK = 16 * 1024**2

META_NAME = "__meta__"
_MAX_HEADER = MAX_NPY_HEADER + 12
_CHUNK = 1 << 20
# manifest dtype strings accepted: plain bool, integer and float of 1-8 bytes, any byte order
_DTYPE_RE = re.compile(r"[<>|=]?[biuf][1248]")
_NPY = ".npy"
# Array names: what a parameter path looks like ("cell.W_hh", "layers/0/b"); "__" is reserved.
_NAME_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-/]{0,199}")
# dtype kinds accepted in a file: bool, signed int, unsigned int, float (itemsize <= 8).
_NUMERIC_KINDS = "biuf"
# Fixed zip timestamp: identical content gives identical bytes.
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)

# Every exception a hostile or damaged file can raise from zipfile, the decompressors, the .npy
# header parser (ast.literal_eval), numpy or json. All of them mean "this file is bad".
_READ_ERRORS = (
    OSError,  # includes io.UnsupportedOperation and bz2 errors
    EOFError,
    ValueError,  # includes UnicodeDecodeError, json.JSONDecodeError
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    KeyError,
    IndexError,
    TypeError,
    OverflowError,
    struct.error,
    zlib.error,
    lzma.LZMAError,
    MemoryError,
    NotImplementedError,  # unsupported compression method / zip feature
    RuntimeError,  # encrypted member, RecursionError from deeply nested JSON
    SyntaxError,  # .npy header dict that is not a Python literal
    tokenize.TokenError,  # .npy header that is not even Python tokens
)


# --------------------------------------------------------------------------------------------
# Atomic writing
# --------------------------------------------------------------------------------------------


def _os_reason(exc: OSError) -> str:
    """'No space left on device (errno 28)' from an OSError."""
    if exc.errno is not None:
        return f"{exc.strerror or os.strerror(exc.errno)} (errno {exc.errno})"
    return str(exc) or type(exc).__name__


def _write_error(what: str, path: str, reason: str) -> ModelFileError:
    return ModelFileError(f"cannot write {what} {path!r}: {reason}; nothing was written")


def _fsync_folder(folder: Path) -> None:
    """Make the rename durable. Filesystems that cannot fsync a folder are tolerated."""
    flags = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0)
    try:
        fd = os.open(folder, flags)
    except OSError:
        return  # e.g. Windows: folders cannot be opened; the rename is still atomic
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF):
            raise
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: PathLike, *, what: str = "file") -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success move it onto ``path`` atomically.

    Args:
        path: the target file. Its folder must exist and be writable.
        what: how error messages call the file ("model file", "checkpoint file").

    Yields:
        ``Path`` of an empty temporary file ``<folder>/.<name>.tmp-<pid>-<random>`` for the body
        to (over)write. After the body: the file is fsync'ed, ``os.replace``'d onto ``path`` and
        the folder fsync'ed.

    Raises:
        ModelFileError: the folder is missing or not a folder, the temporary file cannot be
            created, or any ``OSError`` (full disk, permissions, target is a folder...) happens
            in the body or while committing. Names the path and the OS reason.
        Any other exception from the body propagates unchanged.
        In every failure case the temporary file is removed and ``path`` is left untouched.
    """
    target = Path(os.fspath(path))
    shown = os.fspath(path)
    folder = target.parent
    if not folder.exists():
        raise _write_error(what, shown, f"folder {os.fspath(folder)!r} does not exist; create it first")
    if not folder.is_dir():
        raise _write_error(what, shown, f"{os.fspath(folder)!r} is not a folder")
    if target.is_dir():
        raise _write_error(what, shown, "it is an existing folder; give a file name")
    tmp = folder / f".{target.name}.tmp-{os.getpid()}-{secrets.token_hex(6)}"
    try:
        # O_EXCL: never clobber anything; mode 0o666 is filtered by the umask like a normal file.
        os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    except OSError as exc:
        raise _write_error(what, shown, _os_reason(exc)) from exc
    try:
        yield tmp
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)  # data on disk before the rename makes it visible
        finally:
            os.close(fd)
        os.replace(tmp, target)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise _write_error(what, shown, _os_reason(exc)) from exc
        raise
    try:
        _fsync_folder(folder)
    except OSError as exc:
        raise ModelFileError(
            f"{what} {shown!r} was written but its folder could not be synced to disk: "
            f"{_os_reason(exc)}; the file may be lost if the machine crashes now"
        ) from exc


def atomic_write_bytes(path: PathLike, data: bytes, *, what: str = "file") -> None:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_path`).

    Args:
        path: target file; its folder must exist.
        data: bytes-like object, written as is.
        what: how error messages call the file.

    Raises:
        InputError: ``data`` is not bytes-like.
        ModelFileError: the file cannot be written; ``path`` is then untouched.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise InputError(
            f"data: expected bytes, bytearray or memoryview, received {type(data).__name__}; "
            "encode text first (e.g. text.encode('utf-8'))"
        )
    with atomic_path(path, what=what) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(data)


# --------------------------------------------------------------------------------------------
# Writing .npz
# --------------------------------------------------------------------------------------------


def _check_kind(kind: Any, arg: str = "kind") -> str:
    if kind not in KINDS:
        raise InputError(f"{arg}: expected one of {sorted(KINDS)}, received {kind!r}")
    return KINDS[kind]


def _check_str(s: str, where: str) -> None:
    try:
        s.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InputError(
            f"meta{where}: the string holds {s[exc.start]!r} at index {exc.start}, a lone surrogate that "
            "UTF-8 cannot encode; expected valid Unicode text"
        ) from None


def _check_json_value(value: Any, where: str, depth: int = 0) -> None:
    """Refuse anything whose JSON round trip is not exact (tuples, int keys, NaN, objects), strings that
    are not valid Unicode, and nesting deeper than MAX_META_DEPTH."""
    if depth > MAX_META_DEPTH:
        raise InputError(f"meta{where[:200]}...: nested deeper than {MAX_META_DEPTH} levels; expected flatter data")
    if value is None or isinstance(value, bool):
        return
    if isinstance(value, str):
        _check_str(value, where)
        return
    if isinstance(value, int):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InputError(f"meta{where}: expected a finite number, received {value!r}")
        return
    if isinstance(value, list):
        for i, item in enumerate(value):
            _check_json_value(item, f"{where}[{i}]", depth + 1)
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise InputError(
                    f"meta{where}: keys must be str, received key {key!r} "
                    f"({type(key).__name__}); convert it with str()"
                )
            _check_str(key, f"{where} key")
            _check_json_value(item, f"{where}[{key!r}]", depth + 1)
        return
    raise InputError(
        f"meta{where}: expected JSON data (dict with str keys, list, str, int, finite float, "
        f"bool, None), received {type(value).__name__}; convert tuples to lists and NumPy "
        "values with .tolist()"
    )


def _check_arrays(arrays: Any) -> dict[str, np.ndarray]:
    if not isinstance(arrays, Mapping):
        raise InputError(f"arrays: expected a dict of name -> numpy.ndarray, received {type(arrays).__name__}")
    out: dict[str, np.ndarray] = {}
    total = 0
    for name, arr in arrays.items():
        if not isinstance(name, str):
            raise InputError(f"arrays: names must be str, received {name!r} ({type(name).__name__})")
        if not _NAME_RE.fullmatch(name) or name.startswith("__") or "//" in name or name.endswith("/"):
            raise InputError(
                f"arrays: invalid name {name!r}; expected 1-200 characters from A-Z a-z 0-9 _ . - /, "
                "not starting with '__', '.', '-' or '/' (e.g. 'cell.W_hh')"
            )
        if isinstance(arr, np.generic):  # NumPy scalar -> 0-d array
            arr = np.asarray(arr)
        if not isinstance(arr, np.ndarray):
            raise InputError(
                f"arrays[{name!r}]: expected numpy.ndarray, received {type(arr).__name__}; "
                "wrap it with numpy.asarray(..., dtype=...)"
            )
        dt = arr.dtype
        if dt.kind not in _NUMERIC_KINDS or dt.fields is not None or dt.subdtype is not None or dt.itemsize > 8:
            raise InputError(
                f"arrays[{name!r}]: expected a bool, integer or float (<= 64 bit) array, "
                f"received dtype {dt}; object, string, complex and structured arrays are not stored"
            )
        if dt.kind == "f" and not np.isfinite(arr).all():
            raise InputError(
                f"arrays[{name!r}]: contains NaN or inf; a model with NaN/inf is never written "
                "(training diverged? lower the learning rate or clip gradients)"
            )
        total += arr.nbytes
        out[name] = arr
    if total > MAX_TOTAL_BYTES:
        raise InputError(f"arrays: total size {total} bytes exceeds the limit of {MAX_TOTAL_BYTES} bytes")
    return out


def _sha256(arr: np.ndarray) -> str:
    """SHA-256 of the array's bytes in C order (its own dtype, as stored)."""
    return hashlib.sha256(np.ascontiguousarray(arr).data).hexdigest()


def _zipinfo(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=_ZIP_DATE)
    info.compress_type = zipfile.ZIP_STORED
    info.external_attr = 0o644 << 16
    return info


def encode_npz(arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any], *, kind: str) -> bytes:
    """The bytes of a bptt ``.npz`` file (what :func:`write_npz` writes), after every check.

    Args: as :func:`write_npz`.

    Returns:
        bytes of an uncompressed zip: one ``<name>.npy`` member per array (C or Fortran order as
        given), plus ``__meta__.npy``.
    """
    fmt = _check_kind(kind)
    checked = _check_arrays(arrays)
    if not isinstance(meta, Mapping):
        raise InputError(f"meta: expected a dict, received {type(meta).__name__}")
    meta = dict(meta)
    _check_json_value(meta, "")
    envelope = {
        "format": fmt,
        "format_version": FORMAT_VERSION,
        "bptt_version": __version__,
        "arrays": {
            name: {"dtype": arr.dtype.str, "shape": list(arr.shape), "sha256": _sha256(arr)}
            for name, arr in checked.items()
        },
        "meta": meta,
    }
    blob = json.dumps(envelope, allow_nan=False, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    if len(blob) > MAX_META_BYTES:
        raise InputError(f"meta: {len(blob)} bytes of JSON exceeds the limit of {MAX_META_BYTES} bytes")
    members = {META_NAME: np.frombuffer(blob, dtype=np.uint8), **checked}
    buf = _stdio.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for name, arr in members.items():
            with zf.open(_zipinfo(name + _NPY), "w", force_zip64=arr.nbytes > 2**30) as member:
                npy_format.write_array(member, arr, allow_pickle=False)
    return buf.getvalue()


def write_npz(path: PathLike, arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any], *, kind: str) -> None:
    """Write arrays and JSON metadata to a bptt ``.npz`` file, atomically.

    Everything is checked before the disk is touched.

    Args:
        path: target file (any name; ``.npz`` is conventional). Its folder must exist.
        arrays: ``{name: ndarray}``; any shapes; dtypes bool / int / uint / float of at most
            64 bits; floats must be finite. Names: 1-200 of ``A-Z a-z 0-9 _ . - /``, not
            starting with ``__``.
        meta: JSON-able dict (str keys; lists, not tuples; finite floats). Returned as is by
            :func:`read_npz`.
        kind: ``"model"`` or ``"checkpoint"``; stored as ``format`` = ``"bptt-model"`` /
            ``"bptt-checkpoint"``, with ``format_version`` = :data:`FORMAT_VERSION`.

    Raises:
        InputError: bad ``kind``, names, dtypes, NaN/inf values or non-JSON ``meta``
            (nothing written).
        ModelFileError: the file cannot be written (missing folder, full disk...); ``path`` is
            then untouched and no temporary file is left.
    """
    data = encode_npz(arrays, meta, kind=kind)
    atomic_write_bytes(path, data, what=f"{kind} file")


# --------------------------------------------------------------------------------------------
# Reading .npz
# --------------------------------------------------------------------------------------------


class _Bad(Exception):
    """A validation failure inside :func:`read_npz`; turned into ModelFileError with the label."""


class _CountingReader:
    """Wraps a zip member so that the .npy header length is known (ZipExtFile.tell needs seek)."""

    def __init__(self, fp: IO[bytes]) -> None:
        self.fp = fp
        self.count = 0

    def read(self, n: int = -1) -> bytes:
        data = self.fp.read(n)
        self.count += len(data)
        return data


def _read_npy_header(fp: _CountingReader, member: str) -> tuple[tuple[int, ...], bool, np.dtype]:
    """(shape, fortran_order, dtype) of a .npy stream, refusing anything but plain numbers."""
    version = npy_format.read_magic(fp)
    if version == (1, 0):
        shape, fortran, dtype = npy_format.read_array_header_1_0(fp)
    elif version == (2, 0):
        shape, fortran, dtype = npy_format.read_array_header_2_0(fp)
    else:
        raise _Bad(f"member {member!r} has .npy format version {version}; expected (1, 0) or (2, 0)")
    if not all(isinstance(d, int) and d >= 0 for d in shape):
        raise _Bad(f"member {member!r} declares an invalid shape {shape!r}")
    if (
        dtype.kind not in _NUMERIC_KINDS
        or dtype.fields is not None
        or dtype.subdtype is not None
        or dtype.hasobject
        or dtype.itemsize > 8
    ):
        raise _Bad(
            f"member {member!r} has dtype {dtype.str!r}; only bool, integer and float arrays are "
            "accepted (object arrays would need unpickling, which bptt never does)"
        )
    return tuple(shape), bool(fortran), dtype


def _read_member(
    zf: zipfile.ZipFile, info: zipfile.ZipInfo, member: str
) -> tuple[tuple[int, ...], bool, np.dtype, np.ndarray]:
    """Header and data of one member. The member is read whole first, in chunks, into one buffer of its
    declared size (never more: reading stops there) and its zip CRC is checked before the ``.npy`` header
    is parsed. Returns (shape, fortran_order, dtype, the data as a uint8 view of that buffer)."""
    size = info.file_size
    buf = np.empty(size, dtype=np.uint8)
    view = memoryview(buf)
    with zf.open(info) as raw:
        pos = 0
        while pos < size:
            chunk = raw.read(min(_CHUNK, size - pos))
            if not chunk:
                raise _Bad(f"member {member!r} is truncated")
            view[pos : pos + len(chunk)] = chunk
            pos += len(chunk)
        if raw.read(1):  # reading to the end also checks the CRC
            raise _Bad(f"member {member!r} is longer than it declares")
    head = bytes(view[: min(size, _MAX_HEADER)])
    fast = _fast_header(head)
    if fast is not None:
        shape, fortran, dtype, hlen = fast
    else:  # any other spelling of a header: numpy's own parser, then the same checks
        fp = _CountingReader(_stdio.BytesIO(head))
        shape, fortran, dtype = _read_npy_header(fp, member)
        hlen = fp.count
    nbytes = math.prod(shape) * dtype.itemsize  # Python ints: no overflow
    if hlen + nbytes != size:
        raise _Bad(
            f"member {member!r} declares shape {shape} of {dtype.str} ({nbytes} bytes) but holds "
            f"{size - hlen} bytes of data"
        )
    return shape, fortran, dtype, buf[hlen:]


# The header numpy writes for a plain array, e.g. {'descr': '<f8', 'fortran_order': False, 'shape': (3, 2), }
_HEADER_RE = re.compile(
    rb"\{'descr': '([<>|=]?[biuf][1248])', 'fortran_order': (True|False), 'shape': \(((?:[0-9]{1,18}, ?)*"
    rb"(?:[0-9]{1,18})?)\), \} *\n"
)


def _fast_header(head: bytes):
    """(shape, fortran, dtype, header length) of a .npy header in the exact form numpy writes for plain
    numbers, parsed by one anchored regular expression (no literal_eval); None for any other form."""
    if head[:6] != b"\x93NUMPY" or len(head) < 12:
        return None
    if head[6:8] == b"\x01\x00":
        start, hlen = 10, int.from_bytes(head[8:10], "little")
    elif head[6:8] == b"\x02\x00":
        start, hlen = 12, int.from_bytes(head[8:12], "little")
    else:
        return None
    m = _HEADER_RE.fullmatch(head, start, start + hlen)
    if m is None:
        return None
    dims = m.group(3).replace(b" ", b"").split(b",")
    shape = tuple(int(d) for d in dims if d)
    if len(dims) == 1 and dims[0] and len(shape) == 1 and not m.group(3).endswith(b","):
        return None  # "(3)" is not a tuple: leave the oddity to numpy's parser
    return shape, m.group(2) == b"True", np.dtype(m.group(1).decode("ascii")), start + hlen


def _json_constant(name: str) -> Any:
    raise _Bad(f"metadata contains {name}, which is not valid JSON")


def _json_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _Bad(f"metadata repeats the key {key!r}")
        out[key] = value
    return out


def _json_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _Bad(f"metadata number {text[:40]!r} is out of range")
    return value


def _parse_envelope(zf: zipfile.ZipFile, info: zipfile.ZipInfo, kind: str | None) -> dict[str, Any]:
    if info.file_size > MAX_META_BYTES + 1024:
        raise _Bad(f"metadata member is {info.file_size} bytes; the limit is {MAX_META_BYTES}")
    shape, _, dtype, data = _read_member(zf, info, META_NAME)
    if dtype != np.uint8 or len(shape) != 1:
        raise _Bad(f"metadata member has dtype {dtype.str} and shape {shape}; expected 1-D uint8")
    env = json.loads(
        data.tobytes().decode("utf-8"),
        object_pairs_hook=_json_object,
        parse_constant=_json_constant,
        parse_float=_json_float,
    )
    if not isinstance(env, dict):
        raise _Bad(f"metadata is a JSON {type(env).__name__}; expected an object")
    try:  # a "\ud800" escape decodes to a lone surrogate, which no text output can print
        json.dumps(env, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as exc:
        raise _Bad(f"metadata holds a lone surrogate ({exc.object[exc.start]!r}); expected valid Unicode") from None
    fmt = env.get("format")
    if fmt not in KINDS.values():
        raise _Bad(f"format is {fmt!r}; expected one of {sorted(KINDS.values())}")
    version = env.get("format_version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise _Bad(f"format_version is {version!r}; expected a positive integer")
    if version > FORMAT_VERSION:
        raise _Bad(
            f"it has format_version {version}, written by a newer bptt; this bptt ({__version__}) "
            f"reads format_version {FORMAT_VERSION} or older: upgrade bptt to load it"
        )
    if kind is not None and fmt != KINDS[kind]:
        raise _Bad(f"it is a {fmt!r} file; expected a {KINDS[kind]!r} file")
    if not isinstance(env.get("meta"), dict):
        raise _Bad("metadata has no 'meta' object")
    manifest = env.get("arrays")
    if not isinstance(manifest, dict):
        raise _Bad("metadata has no 'arrays' manifest")
    for name, entry in manifest.items():
        if not (
            isinstance(entry, dict)
            and isinstance(entry.get("dtype"), str)
            and isinstance(entry.get("shape"), list)
            and all(isinstance(d, int) and not isinstance(d, bool) for d in entry["shape"])
            and isinstance(entry.get("sha256"), str)
        ):
            raise _Bad(f"manifest entry for {name!r} is malformed: {entry!r}"[:300])
    return env


def _source_size(source: Any) -> int:
    """Size in bytes of the file (path or seekable file object) being read."""
    if isinstance(source, (str, os.PathLike)):
        return os.stat(source).st_size
    here = source.tell()
    try:
        return source.seek(0, os.SEEK_END)
    finally:
        source.seek(here)


def _itemsize(name: str, entry: dict) -> int:
    if not _DTYPE_RE.fullmatch(entry["dtype"]):
        raise _Bad(f"manifest gives array {name!r} dtype {entry['dtype'][:40]!r}; expected a bool, integer or "
                   "float dtype of at most 8 bytes (such as '<f8')")
    return int(entry["dtype"][-1])


def _check_declared_sizes(infos, by_name, manifest, file_size: int, max_bytes: int) -> None:
    """Every member's declared uncompressed size must be what its manifest entry implies (header plus
    shape x itemsize), stored members must not claim to grow, and compressed ones may not declare more than
    twice the file's size plus MAX_EXPANSION_SLACK in all. All from the zip directory: nothing is read."""
    total = sum(info.file_size for info in infos)
    if total > max_bytes:
        raise _Bad(f"its members declare {total} bytes in all; the limit is {max_bytes} bytes")
    bound = 2 * file_size + MAX_EXPANSION_SLACK
    if total > bound:
        raise _Bad(f"its members declare {total} bytes uncompressed, out of line with its {file_size} bytes "
                   f"(at most 2 x its size + {MAX_EXPANSION_SLACK} bytes is read); a zip bomb?")
    for info in infos:
        if info.compress_type == zipfile.ZIP_STORED and info.compress_size != info.file_size:
            raise _Bad(f"member {info.filename!r} is stored uncompressed but declares {info.file_size} bytes "
                       f"in {info.compress_size}")
    for name, entry in manifest.items():
        nbytes = math.prod(entry["shape"]) * _itemsize(name, entry)
        declared = by_name[name].file_size
        if not 10 + nbytes <= declared <= _MAX_HEADER + nbytes:
            raise _Bad(f"member {name!r} declares {declared} bytes but its manifest entry "
                       f"({entry['dtype']} {tuple(entry['shape'])}) implies {nbytes} bytes of data")


def _check_expected(manifest: dict, expected: Mapping[str, tuple]) -> None:
    """``expected``: name -> shape, or name -> (shape, dtype) with dtype a numpy dtype (either byte order)."""
    want = {n: (v if len(v) == 2 and isinstance(v[0], tuple) else (v, None)) for n, v in expected.items()}
    got = {name: tuple(entry["shape"]) for name, entry in manifest.items()}
    missing = sorted(set(want) - set(got))
    extra = sorted(set(got) - set(want))
    wrong = {n: (got[n], want[n][0]) for n in set(got) & set(want) if got[n] != want[n][0]}
    if missing or extra or wrong:
        raise _Bad(
            f"its arrays do not fit the expected ones: missing {missing[:5]}, unexpected {extra[:5]}, "
            f"shape (found, expected) {dict(list(wrong.items())[:5])}"[:600]
        )
    for n, (_, dt) in want.items():
        if dt is not None and manifest[n]["dtype"] not in (dt.newbyteorder("<").str, dt.newbyteorder(">").str):
            raise _Bad(f"array {n!r} has dtype {manifest[n]['dtype'][:40]!r}; expected {dt.str}")


def _read(source: Any, kind: str | None, expected, max_bytes: int):
    file_size = _source_size(source)
    with zipfile.ZipFile(source, "r") as zf:
        infos = zf.infolist()
        if len(infos) > MAX_MEMBERS:
            raise _Bad(f"it has {len(infos)} members; the limit is {MAX_MEMBERS}")
        by_name: dict[str, zipfile.ZipInfo] = {}
        for info in infos:
            if not info.filename.endswith(_NPY):
                raise _Bad(f"member {info.filename!r} is not a .npy array")
            name = info.filename[: -len(_NPY)]
            if name in by_name:
                raise _Bad(f"member {info.filename!r} appears twice")
            by_name[name] = info
        if META_NAME not in by_name:
            raise _Bad(f"it has no {META_NAME!r} member (not written by bptt?)")
        if sum(info.file_size for info in infos) > max_bytes:
            raise _Bad(f"its members declare {sum(i.file_size for i in infos)} bytes in all; the limit is "
                       f"{max_bytes} bytes")
        env = _parse_envelope(zf, by_name.pop(META_NAME), kind)
        manifest: dict[str, Any] = env["arrays"]
        if set(manifest) != set(by_name):
            raise _Bad(
                f"its arrays {sorted(by_name)[:10]} do not match its manifest {sorted(manifest)[:10]}"[:600]
            )
        _check_declared_sizes(infos, by_name, manifest, file_size, max_bytes)
        if callable(expected):
            expected = expected(env["meta"], {n: (tuple(e["shape"]), e["dtype"]) for n, e in manifest.items()})
        if expected is not None:
            _check_expected(manifest, expected)
        arrays: dict[str, np.ndarray] = {}
        for name in manifest:  # manifest order = write order
            entry = manifest[name]
            shape, fortran, dtype, data = _read_member(zf, by_name[name], name)
            if dtype.str != entry["dtype"] or list(shape) != entry["shape"]:
                raise _Bad(
                    f"array {name!r} is {dtype.str} {shape} but the manifest says "
                    f"{entry['dtype']} {tuple(entry['shape'])}"
                )
            if data.ctypes.data % dtype.alignment:  # an odd header length: realign (one copy)
                data = data.copy()
            flat = data.view(dtype)
            arr = flat.reshape(shape[::-1]).T if fortran else flat.reshape(shape)
            if _sha256(arr) != entry["sha256"]:
                raise _Bad(f"array {name!r} does not match its checksum (corrupted file)")
            if not dtype.isnative:
                arr = arr.view(dtype.newbyteorder("="))
                arr.byteswap(inplace=True)  # writable, native: the buffer is ours
            if dtype.kind == "f" and not np.isfinite(arr).all():
                raise _Bad(f"array {name!r} contains NaN or inf")
            arrays[name] = arr
    return arrays, env["meta"]


def read_npz(
    path: PathLike | IO[bytes],
    kind: str | None = None,
    expected: Mapping[str, tuple] | Callable[[dict, dict], Mapping[str, tuple] | None] | None = None,
    *,
    max_bytes: int = MAX_TOTAL_BYTES,
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Read a bptt ``.npz`` file written by :func:`write_npz`, trusting nothing in it.

    Args:
        path: file path, or a binary file object opened for reading with ``seek``.
        kind: ``"model"`` or ``"checkpoint"`` to require that kind; ``None`` accepts both.
        expected: optional ``{name: shape tuple}`` or ``{name: (shape tuple, numpy dtype)}``; the
            file must hold exactly these arrays with exactly these shapes (and dtypes, in either byte
            order). Or a function of the caller's metadata and of the manifest (``{name: (shape,
            dtype string)}``) returning such a dict (or None): it is
            called after the metadata is parsed and before any array member is read, so that what
            the metadata describes (a network's configuration) is checked against the manifest first;
            a :class:`~bptt.errors.BPTTError` it raises becomes a ModelFileError naming the file.
        max_bytes: limit on the total declared uncompressed size of all members, checked
            before anything is allocated.

    Returns:
        ``(arrays, meta)``: ``arrays`` maps each name to a fresh, writable, native-byte-order
        ndarray, bitwise equal to what was written (same dtype, shape, values); ``meta`` is the
        caller's metadata dict as given to :func:`write_npz`.

    Raises:
        InputError: bad ``kind`` / ``expected`` argument.
        ModelFileError: the file is missing, unreadable, not a zip, truncated, corrupted
            (checksums), of a newer ``format_version``, of the other kind, not matching
            ``expected``, holding object / non-numeric / NaN / inf arrays, or declaring sizes
            above the limit. Nothing is unpickled and nothing is half-returned.
    """
    if kind is not None:
        _check_kind(kind)
    if expected is not None and not callable(expected):
        if not isinstance(expected, Mapping) or not all(
            isinstance(k, str) and isinstance(v, tuple) and all(isinstance(d, int) for d in v)
            for k, v in expected.items()
        ):
            raise InputError(f"expected: expected a dict of name -> shape tuple of ints, received {expected!r}"[:300])
        expected = {k: tuple(v) for k, v in expected.items()}
    what = f"{kind} file" if kind else "bptt file"
    if isinstance(path, (str, os.PathLike)):
        label = repr(os.fspath(path))
        if not os.path.exists(path):
            raise ModelFileError(f"cannot read {what} {label}: it does not exist; check the path")
        if os.path.isdir(path):
            raise ModelFileError(f"cannot read {what} {label}: it is a folder; give the file inside it")
        if not os.path.isfile(path):
            raise ModelFileError(f"cannot read {what} {label}: it is not a regular file")
    elif hasattr(path, "read") and hasattr(path, "seek"):
        label = "<file object>"
    else:
        raise InputError(f"path: expected a path or a binary file object, received {type(path).__name__}")
    try:
        return _read(path, kind, expected, max_bytes)
    except (_Bad, BPTTError) as exc:
        raise ModelFileError(f"cannot read {what} {label}: {exc}") from None
    except _READ_ERRORS as exc:
        detail = str(exc) or ("unexpected end of data" if isinstance(exc, EOFError) else "no detail")
        problem = f"{type(exc).__name__}: {detail}"[:500]
    raise ModelFileError(
        f"cannot read {what} {label}: {problem}; the file is truncated, corrupted or not a bptt "
        f"file (expected an .npz written by bptt, format_version <= {FORMAT_VERSION})"
    )
