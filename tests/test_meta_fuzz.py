"""Structure-aware fuzzing of model and checkpoint files (beside the byte-level fuzzer in test_io_fuzz.py).

Each file starts from a valid model or training checkpoint and gets 1-3 mutations of what the file
*means*: a field of the network configuration, the task description, the training fields (``step``,
``elapsed``, ``train``) replaced by a hostile value of another type or size, deleted or joined by an
unknown key; an array dropped, added (``carry/7``, ``opt/x``), reshaped or retyped; a manifest that
lies about a shape. Every file is built in memory and loaded through the API as the CLI loads it
(``bptt.load`` for models, ``bptt.train.load_resumable`` for checkpoints). The only exception allowed is
ModelFileError; a file that loads must give a network whose parameters are the file's arrays and, for
a model, a task description that re-creates its task.
"""

from __future__ import annotations

import copy
import io
import json
import os
import struct
import zlib

import numpy as np
import pytest

from bptt import files, train
from bptt import io as bio
from bptt.errors import ModelFileError

from hostile import good_checkpoint, good_model, npy_bytes

N_FILES = int(os.environ.get("BPTT_META_FUZZ_FILES", "20000"))

HOSTILE = [None, True, False, -1, 0, 1, 2, 3, 7, 2**31, 10**9, 10**30, 1.5, -0.0, 1e308, -1e308, "", "x",
           "float16", "float32", "(1000000000,)f8", "elman", "lstm", "softmax", "adding", "text", [], {}, [1, 2],
           [3, 1], {"a": 1}, "\ud800", "a" * 300, [[[[[[[[[[]]]]]]]]]]]


def _text_model():
    from bptt import Elman
    vocab = " abcdefgh"
    net = Elman(len(vocab), 3, len(vocab), g2="softmax", seed=2)
    desc = {"name": "text", "path": "t.txt", "length": 5, "val_fraction": 0.1, "vocab": vocab,
            "sha256": "ab" * 32, "path_from_run": "../t.txt"}
    return dict(net.params), {"network": net.config(), "task": desc}


def _series_model():
    from bptt import GRU
    net = GRU(1, 3, 1, seed=3)
    desc = {"name": "series", "path": "s.csv", "column": "v", "length": 6, "val_fraction": 0.2, "burn_in": 1,
            "mean": 1.0, "std": 2.0, "sha256": "cd" * 32}
    return dict(net.params), {"network": net.config(), "task": desc}


BASES = [("model", *good_model("elman")), ("model", *good_model("lstm")), ("model", *good_model("gru", "copy")),
         ("model", *_text_model()), ("model", *_series_model()),
         ("checkpoint", *good_checkpoint("elman")), ("checkpoint", *good_checkpoint("lstm", layers=2, optimizer="sgd")),
         ("checkpoint", *good_checkpoint("gru", tbptt=False, optimizer="momentum"))]


def _paths(meta, prefix=()):
    """Every (path) of a dict/list node or leaf in meta."""
    out = []
    if isinstance(meta, dict):
        for k, v in meta.items():
            out.append(prefix + (k,))
            out += _paths(v, prefix + (k,))
    elif isinstance(meta, list):
        for i, v in enumerate(meta):
            out.append(prefix + (i,))
            out += _paths(v, prefix + (i,))
    return out


def _get_parent(meta, path):
    cur = meta
    for k in path[:-1]:
        cur = cur[k]
    return cur


def mutate(rng, kind, arrays, meta):
    """1-3 random structural mutations; returns (arrays, meta, manifest_lie)."""
    arrays, meta = dict(arrays), copy.deepcopy(meta)
    lie = None
    for _ in range(int(rng.integers(1, 4))):
        op = rng.integers(0, 10)
        paths = _paths(meta)
        if op <= 4 and paths:  # a value replaced by a hostile one
            path = paths[int(rng.integers(len(paths)))]
            parent = _get_parent(meta, path)
            v = HOSTILE[int(rng.integers(len(HOSTILE)))]
            if rng.random() < 0.3 and isinstance(parent[path[-1]], int) and not isinstance(parent[path[-1]], bool):
                v = parent[path[-1]] + int(rng.choice([-2, -1, 1, 2, 10**6]))  # off by a little or a lot
            parent[path[-1]] = copy.deepcopy(v)
        elif op == 5 and paths:  # a key or item removed
            path = paths[int(rng.integers(len(paths)))]
            del _get_parent(meta, path)[path[-1]]
        elif op == 6:  # an unknown key somewhere
            dicts = [p for p in paths if isinstance(_get_parent(meta, p + ("x",)), dict)] + [()]
            where = dicts[int(rng.integers(len(dicts)))]
            node = _get_parent(meta, where + ("x",))
            node[str(rng.choice(["speed", "n_hidden", "carry", "step", "vocab", "z"]))] = \
                HOSTILE[int(rng.integers(len(HOSTILE)))]
        elif op == 7 and arrays:  # an array dropped
            names = sorted(arrays)
            del arrays[names[int(rng.integers(len(names)))]]
        elif op == 8:  # an array added, reshaped or retyped
            names = sorted(arrays)
            name = str(rng.choice(names + ["carry/1", "carry/7", "opt/x", "opt/m/Wy", "param/Wz", "Wz"]))
            shape = tuple(int(d) for d in rng.integers(0, 5, size=int(rng.integers(0, 3))))
            dtype = rng.choice([np.float64, np.float32, np.int64, np.bool_])
            arrays[name] = np.zeros(shape, dtype)
        else:  # the manifest lies about a shape or dtype
            names = sorted(arrays)
            if names:
                name = names[int(rng.integers(len(names)))]
                shapes = [[3000, 3000], [10**9], [], [2, -1]]
                lie = (name, shapes[int(rng.integers(len(shapes)))] if rng.random() < 0.7 else None,
                       str(rng.choice(["<f2", "(1000000000,)f8", "<i8", "|O"])))
    return arrays, meta, lie


_MEMBERS: dict = {}  # id(array) -> (array, npy bytes, crc32, sha256): the bases' arrays are encoded once


def _member(a: np.ndarray):
    hit = _MEMBERS.get(id(a))
    if hit is None or hit[0] is not a:
        data = npy_bytes(a)
        hit = _MEMBERS[id(a)] = (a, data, zlib.crc32(data), bio._sha256(a))
    return hit


def fast_zip(members: dict[str, tuple[bytes, int]]) -> bytes:
    """A stored (uncompressed) zip of name -> (data, crc32), written directly (zipfile's writer is the
    slow part of a fuzz loop)."""
    out, central = bytearray(), bytearray()
    for name, (data, crc) in members.items():
        fn = name.encode()
        central += struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 20, 20, 0, 0, 0, 0x21, crc, len(data), len(data),
                               len(fn), 0, 0, 0, 0, 0o644 << 16, len(out)) + fn
        out += struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, 0, 0, 0x21, crc, len(data), len(data), len(fn), 0)
        out += fn + data
    eocd = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, len(members), len(members), len(central), len(out), 0)
    return bytes(out + central + eocd)


def build(kind, arrays, meta, lie) -> bytes:
    enc = {n: _member(a) for n, a in arrays.items()}
    manifest = {n: {"dtype": a.dtype.str, "shape": list(a.shape), "sha256": enc[n][3]} for n, a in arrays.items()}
    if lie is not None and lie[0] in manifest:
        name, shape, dtype = lie
        if shape is not None:
            manifest[name]["shape"] = shape
        else:
            manifest[name]["dtype"] = dtype
    env = {"format": bio.KINDS[kind], "format_version": 1, "bptt_version": "fuzz", "arrays": manifest, "meta": meta}
    blob = npy_bytes(np.frombuffer(json.dumps(env, ensure_ascii=False).encode("utf-8", "surrogatepass"), np.uint8))
    members = {"__meta__.npy": (blob, zlib.crc32(blob))}
    members.update({n + ".npy": (e[1], e[2]) for n, e in enc.items()})
    return fast_zip(members)


def load(kind, data):
    if kind == "model":
        return files.load(io.BytesIO(data))
    return train.load_resumable(io.BytesIO(data))[0]


def test_structure_aware_fuzz_only_model_file_errors():
    rng = np.random.default_rng(20261201)
    counts = {"loaded": 0, "refused": 0}
    failures = []
    for i in range(N_FILES):
        kind, arrays, meta = BASES[i % len(BASES)]
        a, m, lie = mutate(rng, kind, arrays, meta)
        try:
            data = build(kind, a, m, lie)
        except (UnicodeEncodeError, ValueError):  # a mutation the raw writer cannot spell: not a file
            continue
        try:
            net = load(kind, data)
        except ModelFileError:
            counts["refused"] += 1
            continue
        except Exception as e:  # noqa: BLE001 - the point of the test
            failures.append((i, kind, f"{type(e).__name__}: {e}"[:300], json.dumps(m, default=str)[:300]))
            continue
        counts["loaded"] += 1
        prefix = "" if kind == "model" else "param/"
        for name, p in net.params.items():
            assert np.array_equal(p, a[prefix + name]), (i, name)
        if kind == "model" and "task" in net.meta and net.meta["task"].get("name") not in ("text", "series"):
            from bptt.data import task_from_description
            task = task_from_description(net.meta["task"])
            assert (task.n_in, task.n_out) == (net.n_in, net.n_out), i
    assert not failures, failures[:5]
    assert counts["loaded"] + counts["refused"] >= 0.95 * N_FILES
    assert counts["refused"] > 0.5 * N_FILES and counts["loaded"] > 0.02 * N_FILES, counts
    print(f"structure-aware fuzz: {N_FILES} files, {counts}")


@pytest.mark.parametrize("kind", ["model", "checkpoint"])
def test_unmutated_bases_load(kind):
    for k, arrays, meta in BASES:
        if k == kind:
            load(k, build(k, arrays, meta, None))
