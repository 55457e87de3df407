"""Character-level language-modelling data from any UTF-8 text, and the built-in text.

``TextData.from_file(path, val_fraction=0.1)`` reads a UTF-8 file, builds the sorted character
vocabulary of the whole file (a str, JSON-able), encodes it to int64 codes and splits it by position:
the first 90 % trains, the last 10 % is held out. It offers random windows (``batch``), contiguous
chunks for truncated BPTT over the whole stream (``stream``), ``encode`` / ``decode``, and the
unigram baseline in bits per character. :class:`TextTask` wraps it in the common task interface.

Built-in text (``builtin_text()``, source name ``"builtin:stdlib-docs"``): the docstrings of a fixed
list of Python standard-library modules and of their public classes, functions and methods, in source
order, read with ``ast`` from the running Python's library sources (about 0.7 MB from 130 modules on
CPython 3.11). The text is (c) the Python Software Foundation, under the PSF License Agreement. It
depends on the Python version, so ``TextData.describe()`` stores its SHA-256 and vocabulary, which are
checked when a task is re-created.
"""
from __future__ import annotations

import ast
import functools
import hashlib
import math
import sysconfig
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Iterator, NamedTuple

import numpy as np

from bptt.errors import InputError

from ._common import (bits_per_char, check_float, check_int, check_outputs, check_rng, class_metrics,
                      heldout_rng, one_hot)

BUILTIN_TEXT = "builtin:stdlib-docs"

_STDLIB_MODULES = """abc argparse array ast base64 bdb binascii bisect builtins bz2 calendar cmath cmd codecs codeop
collections colorsys compileall concurrent.futures configparser contextlib contextvars copy copyreg csv dataclasses
datetime decimal difflib dis doctest email email.message enum errno filecmp fileinput fnmatch fractions ftplib functools
gc getopt gettext glob graphlib gzip hashlib heapq hmac html html.parser http http.client http.server imaplib importlib
inspect io ipaddress itertools json keyword linecache locale logging logging.handlers lzma mailbox math mimetypes numbers
operator optparse os pathlib pdb pickle pickletools pkgutil platform plistlib poplib pprint profile pstats queue quopri
random re reprlib sched secrets selectors shelve shlex shutil signal smtplib socket socketserver sqlite3 stat statistics
string stringprep struct subprocess symtable sys sysconfig tabnanny tarfile tempfile textwrap threading time timeit
token tokenize trace traceback tracemalloc types typing unicodedata unittest urllib.parse urllib.request uuid warnings
wave weakref xml.dom.minidom xml.etree.ElementTree zipfile zipimport zlib zoneinfo""".split()


@functools.lru_cache(maxsize=1)
def builtin_text() -> str:
    """The built-in English text: standard-library docstrings (PSF License), deterministic per Python version.

    Read from the library's source files with ``ast`` (no module is imported, so nothing that patched a
    module at run time changes the text). For each module of a fixed list that has Python source in this
    installation (C modules such as ``math`` are skipped): a header line, the module docstring, then the
    docstrings of its public top-level classes and functions and of their public methods, in source order.
    """
    parts: list[str] = []
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    for modname in _STDLIB_MODULES:
        base = stdlib.joinpath(*modname.split("."))
        source = base.with_suffix(".py") if base.with_suffix(".py").is_file() else base / "__init__.py"
        try:
            tree = ast.parse(source.read_text(encoding="utf-8"))
        except (OSError, SyntaxError, UnicodeDecodeError):
            continue                                   # C module (no source) or missing here
        parts.append(f"Module {modname}\n\n{ast.get_docstring(tree) or ''}\n\n")
        defs = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
        for node in tree.body:
            if not isinstance(node, defs) or node.name.startswith("_"):
                continue
            members = [(node.name, node)]
            if isinstance(node, ast.ClassDef):
                members += [(f"{node.name}.{m.name}", m) for m in node.body
                            if isinstance(m, defs) and not m.name.startswith("_")]
            for qualname, m in members:
                doc = ast.get_docstring(m)
                if doc and doc.strip():
                    parts.append(f"{modname}.{qualname}\n{doc}\n\n")
    return "".join(parts)


def write_builtin_text(path: str | Path) -> Path:
    """Write :func:`builtin_text` to ``path`` as UTF-8 and return the path."""
    path = Path(path)
    path.write_text(builtin_text(), encoding="utf-8")
    return path


class StreamChunk(NamedTuple):
    """One chunk of :meth:`TextData.stream`: X (T,B,V) one-hot inputs, D (T,B) int64 next characters,
    reset (T,B) bool, True where stream b starts afresh at step t (reset its state before that step)."""

    X: np.ndarray
    D: np.ndarray
    reset: np.ndarray


_CHUNK = 1 << 20  # bytes of text decoded (and codes counted or mapped) at a time: bounded temporaries


def counts(codes: np.ndarray, n: int) -> np.ndarray:
    """np.bincount(codes, minlength=n) in chunks (bincount makes an intp copy of its input: 8 bytes a code)."""
    out = np.zeros(n, np.int64)
    for i in range(0, len(codes), _CHUNK):
        out += np.bincount(codes[i: i + _CHUNK], minlength=n)
    return out


def code_dtype(n_vocab: int) -> np.dtype:
    """The smallest unsigned integer type that holds codes 0..n_vocab-1."""
    return np.dtype(np.uint8 if n_vocab <= 2**8 else np.uint16 if n_vocab <= 2**16 else np.uint32)


def _pieces(raw: bytes, source: str):
    """(offset, code points (k,) uint32) of ``raw`` decoded in chunks cut at character boundaries."""
    view = memoryview(raw)
    at = 0
    while at < len(raw):
        end = min(at + _CHUNK, len(raw))
        while end < len(raw) and (raw[end] & 0xC0) == 0x80:  # never cut inside a character
            end += 1
        try:
            text = str(view[at:end], "utf-8")
        except UnicodeDecodeError as exc:
            raise InputError(f"text file {source!r} is not valid UTF-8 (bad byte at offset {at + exc.start}); "
                             f"convert it to UTF-8, e.g. with iconv.") from None
        yield at, np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
        at = end


def encode_utf8(raw: bytes | memoryview, vocab: str | None, source: str) -> tuple[str, np.ndarray]:
    """(vocab, codes) of UTF-8 bytes, in bounded memory: codes (n,) in :func:`code_dtype` of the vocabulary.

    ``vocab=None``: the sorted distinct characters of the text. A given ``vocab`` (sorted) must hold every
    character (InputError naming the first one that is not). ASCII text is coded straight from its bytes."""
    b = np.frombuffer(raw, dtype=np.uint8)
    if not b.size or b.max() < 128:  # ASCII: one byte per character
        present = np.flatnonzero(counts(b, 256))
        if vocab is None:
            vocab = "".join(map(chr, present))
        vcp = np.frombuffer(vocab.encode("utf-32-le"), dtype=np.uint32)
        lut = np.full(128, -1, np.int64)
        known = vcp[vcp < 128]
        lut[known] = np.searchsorted(vcp, known)
        missing = present[lut[present] < 0]
        if missing.size:
            _unseen(source, raw, chr(missing[0]), len(vocab))
        small = lut.astype(code_dtype(len(vocab)))
        codes = np.empty(b.size, small.dtype)
        for i in range(0, b.size, _CHUNK):  # lut[b] whole would index with an intp copy of b
            codes[i: i + _CHUNK] = small[b[i: i + _CHUNK]]
        return vocab, codes
    if vocab is None:
        seen = np.unique(np.concatenate([np.unique(cp) for _, cp in _pieces(raw, source)]))
        vocab = "".join(map(chr, seen))
    vcp = np.frombuffer(vocab.encode("utf-32-le"), dtype=np.uint32)
    n = sum(int(np.count_nonzero((b[i: i + _CHUNK] & 0xC0) != 0x80))  # characters: bytes that start one
            for i in range(0, b.size, _CHUNK))
    codes = np.empty(n, code_dtype(len(vocab)))
    k = 0
    for _, cp in _pieces(raw, source):
        pos = np.minimum(np.searchsorted(vcp, cp), len(vcp) - 1)
        bad = vcp[pos] != cp
        if bad.any():
            _unseen(source, raw, chr(int(cp[np.argmax(bad)])), len(vocab))
        codes[k: k + len(cp)] = pos
        k += len(cp)
    return vocab, codes


def _unseen(source, raw, ch: str, n_vocab: int):
    raise InputError(f"{source!r} has characters the model never saw, e.g. {ch!r} (U+{ord(ch):04X}); the "
                     f"model's vocabulary has {n_vocab} characters")


def _read_raw(path: str | Path) -> memoryview:
    """The bytes of a UTF-8 text file (byte-order mark dropped), refused when empty or binary."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"text file {str(path)!r} does not exist or is not a file; pass the path of a UTF-8 "
                         f"text file (or {BUILTIN_TEXT!r} for the built-in text).")
    data = p.read_bytes()
    nul = data.find(b"\x00")
    if nul >= 0:
        raise InputError(f"text file {str(path)!r} contains NUL bytes (first at byte {nul}): it "
                         f"looks binary (or UTF-16/32). Pass a UTF-8 text file.")
    raw = memoryview(data)[3 if data.startswith(b"\xef\xbb\xbf") else 0:]  # a view: no copy of the text
    if not len(raw):
        raise InputError(f"text file {str(path)!r} is empty; a language model needs some text to learn from.")
    return raw


@dataclass(frozen=True, eq=False)
class TextData:
    """An encoded text split into a training and a held-out part.

    vocab: sorted distinct characters of the whole text (str of length V); codes index into it.
    train: (N_train,) int64 codes, the first part; val: (N_val,) int64 codes, the last ``val_fraction``.
    source: the path (or ``BUILTIN_TEXT``); sha256: hex digest of the text's UTF-8 bytes.
    """

    vocab: str
    train: np.ndarray
    val: np.ndarray
    source: str
    val_fraction: float
    sha256: str

    @classmethod
    def from_file(cls, path: str | Path, val_fraction: float = 0.1) -> "TextData":
        """Read, encode and split a UTF-8 file (``BUILTIN_TEXT`` selects the built-in text).

        Memory: the file's bytes plus one code per character in the smallest unsigned integer type that
        holds the vocabulary (uint8 up to 256 characters); the text is decoded in chunks, never whole."""
        if str(path) == BUILTIN_TEXT:
            return cls.from_text(builtin_text(), val_fraction, source=BUILTIN_TEXT)
        raw = _read_raw(path)
        vocab, codes = encode_utf8(raw, None, str(path))
        return cls._split_codes(vocab, codes, val_fraction, str(path), hashlib.sha256(raw).hexdigest())

    @classmethod
    def _split_codes(cls, vocab: str, codes: np.ndarray, val_fraction, source: str, sha256: str) -> "TextData":
        val_fraction = check_float("val_fraction", val_fraction, lo=0.0, hi=1.0, lo_open=True, hi_open=True)
        n = len(codes)
        n_val = max(2, int(round(n * val_fraction)))
        if n - n_val < 2:
            raise InputError(f"text {source!r} is too short: {n} characters; with val_fraction={val_fraction} "
                             f"it needs at least {n_val + 2} (2 for training, {n_val} held out).")
        if len(vocab) < 2:
            raise InputError(f"text {source!r} uses a single character ({vocab!r}); there is nothing to predict. "
                             f"Use a text with at least two distinct characters.")
        codes.flags.writeable = False
        return cls(vocab, codes[: n - n_val], codes[n - n_val:], source, val_fraction, sha256)

    @classmethod
    def from_text(cls, text: str, val_fraction: float = 0.1, source: str = "<string>") -> "TextData":
        """Encode and split ``text``: the last ``val_fraction`` of characters (at least 2) is held out."""
        if not isinstance(text, str):
            raise InputError(f"text must be a str; received {type(text).__name__}.")
        val_fraction = check_float("val_fraction", val_fraction, lo=0.0, hi=1.0, lo_open=True, hi_open=True)
        n = len(text)
        n_val = max(2, int(round(n * val_fraction)))
        if n - n_val < 2:
            raise InputError(f"text {source!r} is too short: {n} characters; with val_fraction={val_fraction} "
                             f"it needs at least {n_val + 2} (2 for training, {n_val} held out).")
        raw = text.encode("utf-8")
        vocab, codes = encode_utf8(raw, None, source)
        return cls._split_codes(vocab, codes, val_fraction, source, hashlib.sha256(raw).hexdigest())

    @property
    def n_vocab(self) -> int:
        return len(self.vocab)

    def _split(self, split: str) -> np.ndarray:
        if split not in ("train", "val"):
            raise InputError(f"split must be 'train' or 'val'; received {split!r}.")
        return self.train if split == "train" else self.val

    def encode(self, s: str) -> np.ndarray:
        """Codes (len(s),) int64 of ``s``; a character outside the vocabulary raises InputError naming it."""
        if not isinstance(s, str):
            raise InputError(f"encode expects a str; received {type(s).__name__}.")
        index = {c: i for i, c in enumerate(self.vocab)}
        out = np.empty(len(s), dtype=np.int64)
        for i, c in enumerate(s):
            if c not in index:
                raise InputError(f"character {c!r} (U+{ord(c):04X}) at position {i} is not in the vocabulary of "
                                 f"{self.source!r} ({self.n_vocab} characters); remove or replace it.")
            out[i] = index[c]
        return out

    def decode(self, codes: Any) -> str:
        """The string of ``codes`` (any shape of ints in [0, V)), read in C order."""
        a = np.asarray(codes)
        if a.size and (not np.issubdtype(a.dtype, np.integer) or a.min() < 0 or a.max() >= self.n_vocab):
            raise InputError(f"decode expects integer codes in [0, {self.n_vocab}); received dtype {a.dtype} "
                             f"with values in [{a.min()}, {a.max()}].")
        return "".join(self.vocab[i] for i in a.ravel())

    def batch(self, rng: np.random.Generator, B: int, T: int, split: str = "train") -> tuple[np.ndarray, np.ndarray]:
        """B random windows of T characters: X (T,B,V) one-hot float64, D (T,B) int64 next characters."""
        return self._windows(check_rng(rng), B, T, split)

    def batch_codes(self, rng: np.random.Generator, B: int, T: int,
                    split: str = "train") -> tuple[np.ndarray, np.ndarray]:
        """The windows ``batch`` draws from the same ``rng``, as codes: X (T,B) int64 (the one-hot's
        positions), D (T,B) int64. For nets fed integer inputs (a row lookup of the input weight)."""
        return self._windows(check_rng(rng), B, T, split, codes=True)

    def heldout(self, n: int, T: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """n windows of the held-out part, placed by the held-out stream of ``seed`` (deterministic)."""
        return self._windows(heldout_rng(seed), n, T, "val")

    def _windows(self, rng, B, T, split, codes=False):
        B, T = check_int("B", B, lo=1), check_int("T", T, lo=1)
        data = self._split(split)
        if len(data) < T + 1:
            raise InputError(f"the {split} part of {self.source!r} has {len(data)} characters, fewer than T+1 = "
                             f"{T + 1}; use a shorter T or a longer text.")
        starts = rng.integers(0, len(data) - T, size=B)                   # (B,)
        idx = starts[None, :] + np.arange(T)[:, None]                     # (T,B)
        X = data[idx].astype(np.int64) if codes else one_hot(data[idx], self.n_vocab)  # per batch only
        return X, data[idx + 1].astype(np.int64)

    def stream(self, B: int, T: int, split: str = "train", epochs: int | None = 1) -> Iterator[StreamChunk]:
        """Contiguous chunks for truncated BPTT: B parallel streams, stream b reads input positions
        [b*L, (b+1)*L) with L = (N-1)//B (the remainder is dropped), T steps per chunk. Chunk k+1
        continues where chunk k stopped, so carry the hidden state between chunks. After L steps a stream
        wraps to the start of its part; ``reset[t, b]`` is True at such a start (and at step 0 of the first
        chunk). Yields ceil(epochs*L/T) chunks (the last one runs into the next pass); epochs=None: forever.
        """
        B, T = check_int("B", B, lo=1), check_int("T", T, lo=1)
        data = self._split(split)
        L = (len(data) - 1) // B
        if L < 1:
            raise InputError(f"the {split} part of {self.source!r} has {len(data)} characters, too few for "
                             f"B={B} streams (needs at least B+1); use fewer streams.")
        n_chunks = None if epochs is None else math.ceil(check_int("epochs", epochs, lo=1) * L / T)
        base = np.arange(B)[None, :] * L                                   # (1,B) stream offsets
        k = 0
        while n_chunks is None or k < n_chunks:
            off = (k * T + np.arange(T)) % L                               # (T,) position within each stream
            pos = base + off[:, None]                                      # (T,B)
            reset = np.broadcast_to((off == 0)[:, None], (T, B)).copy()
            yield StreamChunk(one_hot(data[pos], self.n_vocab), data[pos + 1].astype(np.int64), reset)
            k += 1

    def unigram_entropy_bits(self) -> float:
        """Cross-entropy (bits/char) of the held-out text under the training unigram frequencies,
        add-one smoothed over the vocabulary (so characters unseen in training cost finite bits)."""
        return self._unigram_bits

    @functools.cached_property
    def _unigram_bits(self) -> float:  # the text never changes: counted once, in chunks
        c = counts(self.train, self.n_vocab) + 1.0
        p = c / c.sum()
        seen = counts(self.val, self.n_vocab)  # per character: no (N_val,) float array
        return float(-(seen * np.log2(p)).sum() / len(self.val))

    bits_per_char = staticmethod(bits_per_char)

    def describe(self) -> dict[str, Any]:
        """JSON-able description: source, val_fraction, vocab, sha256 and split sizes."""
        return {"source": self.source, "val_fraction": self.val_fraction, "vocab": self.vocab,
                "sha256": self.sha256, "n_train": int(len(self.train)), "n_val": int(len(self.val))}


@dataclass(frozen=True, eq=False)
class TextTask:
    """Next-character prediction on windows of ``length`` characters (the common task interface).

    X (T,B,V) one-hot, D (T,B) int64, loss cross-entropy at every step. metric: ce (nats), bpc,
    accuracy, ``solved`` = fraction of windows whose bpc beats the unigram baseline, baseline_bpc.
    """

    data: TextData
    length: int = 100
    name: ClassVar[str] = "text"
    loss: ClassVar[str] = "cross_entropy"
    at: ClassVar[None] = None

    def __post_init__(self) -> None:
        check_int("length", self.length, lo=1)
        if len(self.data.train) < self.length + 1 or len(self.data.val) < self.length + 1:
            raise InputError(f"length={self.length} needs T+1 characters in both parts of {self.data.source!r}; "
                             f"they have {len(self.data.train)} and {len(self.data.val)}. Use a shorter length.")

    @classmethod
    def from_source(cls, path: str, length: int = 100, val_fraction: float = 0.1, vocab: str | None = None,
                    sha256: str | None = None) -> "TextTask":
        """Load ``path``; if ``vocab`` / ``sha256`` are given (from a stored description), they must match."""
        data = TextData.from_file(path, val_fraction)
        if vocab is not None and vocab != data.vocab:
            raise InputError(f"the vocabulary of {path!r} ({data.n_vocab} characters) differs from the stored one "
                             f"({len(vocab)} characters): the text changed since the model was trained.")
        if sha256 is not None and sha256 != data.sha256:
            raise InputError(f"the text {path!r} differs from the one the model was trained on (SHA-256 "
                             f"{data.sha256[:12]}... != stored {sha256[:12]}...).")
        return cls(data, length)

    @property
    def n_in(self) -> int:
        return self.data.n_vocab

    @property
    def n_out(self) -> int:
        return self.data.n_vocab

    def batch(self, rng: np.random.Generator, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
        return self.data.batch(rng, batch_size, self.length)

    def batch_codes(self, rng: np.random.Generator, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
        """``batch``'s windows with X as (T,B) int64 codes instead of one-hot (see TextData.batch_codes)."""
        return self.data.batch_codes(rng, batch_size, self.length)

    def heldout(self, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
        return self.data.heldout(n, self.length, seed)

    def metric(self, Y: np.ndarray, D: np.ndarray) -> dict[str, float]:
        D = np.asarray(D)
        if D.ndim != 2 or not np.issubdtype(D.dtype, np.integer) or D.shape[0] != self.length:
            raise InputError(f"D must be (T,B) int64 classes with T={self.length}; received {D.shape} {D.dtype}.")
        P = check_outputs(Y, D, self.loss, self.n_out)
        m = class_metrics(P, D, np.arange(self.length))
        p_true = np.take_along_axis(P, D[..., None], axis=-1)[..., 0]    # (T,B)
        per_seq_bpc = -np.log2(np.maximum(p_true, 1e-300)).mean(axis=0)   # (B,)
        base = self.data.unigram_entropy_bits()
        return {"ce": m["ce"], "bpc": bits_per_char(m["ce"]), "accuracy": m["accuracy"],
                "solved": float((per_seq_bpc < base).mean()), "baseline_bpc": base}

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "path": self.data.source, "length": self.length,
                "val_fraction": self.data.val_fraction, "vocab": self.data.vocab, "sha256": self.data.sha256}
