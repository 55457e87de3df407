"""Text data in bounded memory: codes in the smallest integer type, decoded in chunks (exactly what a
whole-text decode gives), one-hot windows built per batch only."""

from __future__ import annotations

import hashlib
import tracemalloc

import numpy as np
import pytest

from bptt.data import text as T
from bptt.data.text import TextData, code_dtype, encode_utf8
from bptt.errors import InputError


def reference(s: str):
    """The whole-text encoding: sorted distinct characters, codes by searchsorted on code points."""
    vocab = "".join(sorted(set(s)))
    cps = np.frombuffer(s.encode("utf-32-le"), np.uint32)
    return vocab, np.searchsorted(np.frombuffer(vocab.encode("utf-32-le"), np.uint32), cps)


@pytest.mark.parametrize("chunk", [1, 2, 3, 5, 64, 1 << 22])
@pytest.mark.parametrize("s", ["plain ascii text, twice: plain ascii text.", "héllo wörld — ünïcödé ☃ 𝄞 mixed é",
                               "ééééé", "a\n\tb" * 7])
def test_chunked_encoding_equals_whole_text(monkeypatch, chunk, s):
    monkeypatch.setattr(T, "_CHUNK", chunk)  # chunk borders fall inside multi-byte characters
    vocab, codes = encode_utf8(s.encode(), None, "<t>")
    rv, rc = reference(s)
    assert vocab == rv and np.array_equal(codes, rc) and codes.dtype == code_dtype(len(vocab))
    v2, c2 = encode_utf8(s.encode(), vocab + "\U0001F600", "<t>")  # a given (larger) vocabulary
    assert np.array_equal(c2, rc)


def test_smallest_dtype():
    assert code_dtype(2) == np.uint8 and code_dtype(256) == np.uint8
    assert code_dtype(257) == np.uint16 and code_dtype(65536) == np.uint16 and code_dtype(65537) == np.uint32
    s = "".join(chr(0x100 + i) for i in range(300)) * 3
    vocab, codes = encode_utf8(s.encode(), None, "<t>")
    assert len(vocab) == 300 and codes.dtype == np.uint16


def test_unseen_character_named():
    with pytest.raises(InputError, match=r"never saw, e.g. 'z'"):
        encode_utf8(b"abcz", "abc", "<t>")
    with pytest.raises(InputError, match=r"never saw, e.g. '\\u2603'|never saw, e.g. '☃'"):
        encode_utf8("ab☃".encode(), "ab", "<t>")
    with pytest.raises(InputError, match="not valid UTF-8"):
        encode_utf8(b"ab\xffcd\xc3\xa9", None, "<t>")


def test_file_batches_keep_the_public_interface(tmp_path):
    p = tmp_path / "t.txt"
    s = "\ufeffthe quick brown fox jumps over the lazy dog; ünïcödé. " * 50
    p.write_text(s, encoding="utf-8")
    d = TextData.from_file(p)
    assert d.train.dtype == np.uint8 and not d.train.flags.writeable
    assert d.sha256 == hashlib.sha256(s[1:].encode()).hexdigest()  # the BOM is not part of the text
    X, D = d.batch(np.random.default_rng(0), 4, 7)
    assert X.shape == (7, 4, d.n_vocab) and X.dtype == np.float64 and D.dtype == np.int64
    assert np.array_equal(X.argmax(-1)[1:], D[:-1])
    rv, rc = reference(s[1:])
    assert d.vocab == rv and np.array_equal(np.concatenate([d.train, d.val]), rc)


@pytest.mark.parametrize("words", [["alpha ", "beta ", "gamma ", "delta.\n"], ["alpha ", "beta ", "épsilon "]],
                         ids=["ascii", "utf-8"])
def test_loading_a_text_costs_about_two_bytes_a_character(tmp_path, monkeypatch, words):
    """Peak traced memory of reading and encoding a ~4 MB file: its bytes, one uint8 code a character and
    temporaries bounded by the chunk (the whole-text decode it replaces needed ~13 bytes a character)."""
    monkeypatch.setattr(T, "_CHUNK", 1 << 16)
    p = tmp_path / "big.txt"
    rng = np.random.default_rng(0)
    words = np.array(words)
    p.write_text("".join(words[rng.integers(0, len(words), 700_000)]), encoding="utf-8")
    size = p.stat().st_size
    tracemalloc.start()
    try:
        d = TextData.from_file(p)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(d.train) + len(d.val) <= size
    assert peak <= 2.5 * size + 64 * T._CHUNK, (peak, size)
