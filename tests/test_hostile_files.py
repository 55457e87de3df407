"""Hostile model and checkpoint files, one table row each: every one is a single ModelFileError naming
the field or the problem (API), costs at most 64 MiB + 4 x its size of extra memory (tracemalloc), and is
one line with exit 2 from the CLI commands that read it, with nothing written.

Rows are classes of input (a network size the arrays do not have, a task size that would cost gigabytes
to evaluate, a checkpoint field of the wrong type or missing, a compressed member declaring more than
the file can justify, ...), built in memory by ``tests/hostile.py``.
"""

from __future__ import annotations

import functools
import io
import json
import os
import struct
import tracemalloc
import zipfile
from pathlib import Path
from typing import Callable, NamedTuple

import numpy as np
import pytest

import bptt
from bptt import files, train
from bptt.cli import main
from bptt.errors import InputError, ModelFileError

from hostile import envelope, forge, good_checkpoint, good_model, npy_bytes, raw_npz, variant

MiB = 1024**2


def budget(size: int) -> int:
    return 64 * MiB + 4 * size


# ---- builders -----------------------------------------------------------------------------------------
GOOD_M = good_model()
GOOD_C = good_checkpoint()  # Elman, adding, tbptt (2, 3): carry/0
GOOD_C_LSTM = good_checkpoint("lstm")  # carry/0 and carry/1


def model(path=None, value=..., delete=False, arrays=None):
    a, m = GOOD_M
    if path is not None:
        m = variant(m, path, value, delete)
    return forge("model", arrays or a, m)


def text_model(chars=" abc", n=None, g2="softmax", **task):
    V = len(chars) if n is None else n
    net = bptt.Elman(V, 3, V, g2=g2)
    desc = {"name": "text", "path": "t.txt", "length": 5, "val_fraction": 0.1, "vocab": chars, "sha256": "0" * 64}
    desc.update(task)
    return forge("model", dict(net.params), {"network": net.config(), "task": {k: v for k, v in desc.items()
                                                                                if v is not ...}})


def series_model(n_in=1, **task):
    net = bptt.Elman(n_in, 3, 1)
    desc = {"name": "series", "path": "s.csv", "column": "v", "length": 6, "val_fraction": 0.2, "burn_in": 1,
            "mean": 1.0, "std": 2.0, "sha256": "0" * 64}
    desc.update(task)
    return forge("model", dict(net.params), {"network": net.config(), "task": {k: v for k, v in desc.items()
                                                                                if v is not ...}})


def ckpt(path=None, value=..., delete=False, base=None, drop=(), add=None):
    a, m = base or GOOD_C
    if path is not None:
        m = variant(m, path, value, delete)
    a = {k: v for k, v in a.items() if k not in drop}
    a.update(add or {})
    return forge("checkpoint", a, m)


@functools.lru_cache(maxsize=None)
def big_net_model(H: int, compress, member_data=None):
    """A model whose network says n_hidden=H and whose manifest agrees; Ws's member holds zeros (H, H)
    compressed with ``compress`` (or ``member_data``)."""
    net = bptt.Elman(2, 3, 1)
    cfg = dict(net.config(), n_hidden=H)
    arrays = {"Wx": np.zeros((H, 2)), "Ws": np.zeros((H, H)), "bs": np.zeros(H), "Wy": np.zeros((1, H)),
              "by": np.zeros(1)}
    env = envelope("model", {k: v for k, v in arrays.items() if k != "Ws"}, {"network": cfg})
    env["arrays"]["Ws"] = {"dtype": "<f8", "shape": [H, H], "sha256": "0" * 64}
    members = {k: npy_bytes(v) for k, v in arrays.items() if k != "Ws"}
    members["Ws"] = member_data if member_data is not None else npy_bytes(arrays["Ws"])
    return raw_npz(env, members, compress=compress)


def declare(data: bytes, member: str, size: int) -> bytes:
    """Patch the central directory so that ``member`` declares ``size`` bytes uncompressed."""
    data = bytearray(data)
    name = member.encode()
    at = 0
    while True:
        at = data.find(b"PK\x01\x02", at)
        assert at >= 0, member
        n = struct.unpack_from("<H", data, at + 28)[0]
        if bytes(data[at + 46: at + 46 + n]) == name:
            struct.pack_into("<I", data, at + 24, size)
            return bytes(data)
        at += 4


def flip_header_byte(data: bytes, member: str) -> bytes:
    """Change one byte inside the .npy header of ``member`` (the CRC no longer matches)."""
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        info = zf.getinfo(member)
    out = bytearray(data)
    out[info.header_offset + 30 + len(info.filename) + 20] ^= 0x21  # inside "{'descr': ..."
    return bytes(out)


def wide_model() -> bytes:
    """A valid model with a member larger than 4 KB (Ws is 30 x 30 float64)."""
    net = bptt.Elman(2, 30, 1)
    return forge("model", dict(net.params), {"network": net.config(), "task": {"name": "adding", "length": 6,
                                                                               "tolerance": 0.04}})


def deep_meta(n=100_000) -> bytes:
    a, m = GOOD_M
    env = envelope("model", a, m)
    text = json.dumps(env)[:-1] + ', "deep": ' + "[" * n + "]" * n + "}"
    blob = text.encode()
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        zf.writestr("__meta__.npy", npy_bytes(np.frombuffer(blob, np.uint8)))
        for k, v in a.items():
            zf.writestr(k + ".npy", npy_bytes(v))
    return out.getvalue()


def meta_text(edit: Callable[[str], str]) -> bytes:
    """The good model with its metadata JSON text edited (duplicate keys, escapes...)."""
    a, m = GOOD_M
    blob = edit(json.dumps(envelope("model", a, m))).encode()
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        zf.writestr("__meta__.npy", npy_bytes(np.frombuffer(blob, np.uint8)))
        for k, v in a.items():
            zf.writestr(k + ".npy", npy_bytes(v))
    return out.getvalue()


class Row(NamedTuple):
    id: str
    kind: str  # "model" or "checkpoint"
    build: Callable[[], bytes]
    words: tuple  # fragments of the message


N = ("network",)
T = ("task",)
R = [
    # ---- the network configuration: checked against the manifest before any array is read
    Row("network missing", "model", lambda: model(N, delete=True), ("network",)),
    Row("network is a list", "model", lambda: model(N, []), ("network", "object")),
    Row("network is null", "model", lambda: model(N, None), ("network",)),
    Row("cell unknown", "model", lambda: model(N + ("cell",), "rnn"), ("network.cell", "rnn")),
    Row("cell missing", "model", lambda: model(N + ("cell",), delete=True), ("network.cell",)),
    Row("n_hidden 12000, arrays of 3", "model", lambda: model(N + ("n_hidden",), 12000), ("Ws", "(12000, 12000)")),
    Row("n_hidden 10**9", "model", lambda: model(N + ("n_hidden",), 10**9), ("Ws",)),
    Row("n_in 10**9", "model", lambda: model(N + ("n_in",), 10**9), ("n_in=1000000000",)),
    Row("n_out 10**12", "model", lambda: model(N + ("n_out",), 10**12), ("network.n_out",)),
    Row("layers 2**31", "model", lambda: model(N + ("layers",), 2**31), ("network.layers", "1024")),
    Row("layers 0", "model", lambda: model(N + ("layers",), 0), ("network.layers",)),
    Row("layers a string", "model", lambda: model(N + ("layers",), "2"), ("network.layers", "'2'")),
    Row("layers 3, arrays of 1", "model", lambda: model(N + ("layers",), 3), ("Wx_l0",)),
    Row("n_in a bool", "model", lambda: model(N + ("n_in",), True), ("network.n_in", "True")),
    Row("n_hidden a float", "model", lambda: model(N + ("n_hidden",), 3.0), ("network.n_hidden", "3.0")),
    Row("n_hidden negative", "model", lambda: model(N + ("n_hidden",), -3), ("network.n_hidden", "-3")),
    Row("dtype a subarray", "model", lambda: model(N + ("dtype",), "(1000000000,)f8"), ("network.dtype",)),
    Row("dtype float16", "model", lambda: model(N + ("dtype",), "float16"), ("network.dtype", "float16")),
    Row("dtype a number", "model", lambda: model(N + ("dtype",), 5), ("network.dtype",)),
    Row("dtype float32, arrays float64", "model", lambda: model(N + ("dtype",), "float32"), ("dtype", "<f4")),
    Row("g2 unknown", "model", lambda: model(N + ("g2",), "gelu"), ("network.g2", "gelu")),
    Row("g1 unknown", "model", lambda: model(N + ("g1",), "swish"), ("swish",)),
    Row("g1 softmax", "model", lambda: model(N + ("g1",), "softmax"), ("softmax",)),
    Row("init unknown", "model", lambda: model(N + ("init",), "xavier"), ("network.init", "xavier")),
    Row("bidirectional a string", "model", lambda: model(N + ("bidirectional",), "yes"), ("network.bidirectional",)),
    Row("bidirectional, arrays of one direction", "model", lambda: model(N + ("bidirectional",), True),
        ("_reverse",)),
    Row("network extra key", "model", lambda: model(N + ("hidden_size",), 3), ("network", "hidden_size")),
    Row("network n_out missing", "model", lambda: model(N + ("n_out",), delete=True), ("network", "n_out")),
    Row("lstm forget_bias a string", "model",
        lambda: forge("model", *(lambda a, m: (a, variant(m, N + ("forget_bias",), "x")))(*good_model("lstm"))),
        ("network.forget_bias",)),
    Row("gru with an Elman g1", "model",
        lambda: forge("model", *(lambda a, m: (a, variant(m, N + ("g1",), "tanh")))(*good_model("gru"))),
        ("network", "g1")),
    # ---- task metadata: a schema per task, and the task against the network
    Row("task {}", "model", lambda: model(T, {}), ("task.name",)),
    Row("task []", "model", lambda: model(T, []), ("task", "object")),
    Row("task a string", "model", lambda: model(T, "adding"), ("task", "object")),
    Row("task without name", "model", lambda: model(T + ("name",), delete=True), ("task.name",)),
    Row("task name unknown", "model", lambda: model(T + ("name",), "regression"), ("task.name", "regression")),
    Row("task name a number", "model", lambda: model(T + ("name",), 5), ("task.name",)),
    Row("adding length 10**7", "model", lambda: model(T + ("length",), 10**7), ("task.length", "100000")),
    Row("adding length a string", "model", lambda: model(T + ("length",), "10"), ("length",)),
    Row("adding length -1", "model", lambda: model(T + ("length",), -1), ("task.length",)),
    Row("adding length 1.5", "model", lambda: model(T + ("length",), 1.5), ("length",)),
    Row("adding unknown key", "model", lambda: model(T + ("speed",), 2), ("task", "speed")),
    Row("adding tolerance a string", "model", lambda: model(T + ("tolerance",), "x"), ("tolerance",)),
    Row("task of another size (sine on a 2-input net)", "model",
        lambda: model(T, {"name": "sine", "length": 6}), ("sine", "n_in=2")),
    Row("copy n_symbols 10**9", "model", lambda: model(T, {"name": "copy", "n_symbols": 10**9}), ("task.n_symbols",)),
    Row("copy delay 10**6", "model", lambda: model(T, {"name": "copy", "delay": 10**6}), ("task.delay",)),
    Row("order windows out of range", "model", lambda: model(T, {"name": "order", "length": 10,
                                                                 "first": [50, 60]}), ("task",)),
    Row("adding model with softmax output", "model", lambda: model(N + ("g2",), "softmax"), ("softmax",)),
    Row("text: n_out != vocabulary size", "model", lambda: text_model(" abc", n=5), ("vocabulary", "n_out=5")),
    Row("text: vocabulary unsorted", "model", lambda: text_model("cba "), ("task.vocab", "sorted")),
    Row("text: vocabulary of one character", "model", lambda: text_model("a"), ("task.vocab",)),
    Row("text: vocabulary a number", "model", lambda: text_model("abc", vocab=7), ("task.vocab",)),
    Row("text: vocabulary missing", "model", lambda: text_model("abc", vocab=...), ("task", "'vocab'")),
    Row("text: sha256 malformed", "model", lambda: text_model(sha256="abc"), ("task.sha256",)),
    Row("text: path a number", "model", lambda: text_model(path=5), ("task.path",)),
    Row("text: val_fraction 1.5", "model", lambda: text_model(val_fraction=1.5), ("task.val_fraction",)),
    Row("text: length 0", "model", lambda: text_model(length=0), ("task.length",)),
    Row("text: length 10**8", "model", lambda: text_model(length=10**8), ("task.length",)),
    Row("text: identity output", "model", lambda: text_model(g2="identity"), ("cross_entropy", "softmax")),
    Row("text: path_from_run a list", "model", lambda: text_model(path_from_run=["x"]), ("task.path_from_run",)),
    Row("series: mean missing", "model", lambda: series_model(mean=...), ("task", "'mean'")),
    Row("series: mean a string", "model", lambda: series_model(mean="1.0"), ("task.mean",)),
    Row("series: std 0", "model", lambda: series_model(std=0.0), ("task.std",)),
    Row("series: std negative", "model", lambda: series_model(std=-2.0), ("task.std",)),
    Row("series: burn_in = length", "model", lambda: series_model(burn_in=6), ("task.burn_in",)),
    Row("series: column a list", "model", lambda: series_model(column=[1]), ("task.column",)),
    Row("series: two inputs", "model", lambda: series_model(n_in=2), ("series", "n_in=2")),
    Row("series: length 10**7", "model", lambda: series_model(length=10**7), ("task.length",)),
    # ---- sizes: what the zip directory and the manifest declare, before anything is decompressed
    Row("deflate bomb: 64 MiB of zeros in a small file", "model",
        lambda: big_net_model(2896, zipfile.ZIP_DEFLATED), ("zip bomb",)),
    Row("LZMA member declaring 2 GB", "model",
        lambda: declare(big_net_model(16000, zipfile.ZIP_LZMA, npy_bytes(np.zeros(1000))), "Ws.npy", 2**31),
        ("declare",)),
    Row("stored member declaring more than it holds", "model",
        lambda: declare(model(), "Ws.npy", 5000), ("declares",)),
    Row("manifest shape bigger than the member", "model",
        lambda: (lambda a, m: raw_npz(dict(envelope("model", a, m), arrays=dict(
            envelope("model", a, m)["arrays"], Ws={"dtype": "<f8", "shape": [3000, 3000], "sha256": "0" * 64})),
            {k: npy_bytes(v) for k, v in a.items()}))(*GOOD_M), ("Ws",)),
    Row("manifest dtype a subarray", "model",
        lambda: (lambda a, m: raw_npz(dict(envelope("model", a, m), arrays=dict(
            envelope("model", a, m)["arrays"], Ws={"dtype": "(1000000000,)f8", "shape": [3, 3], "sha256": "0"})),
            {k: npy_bytes(v) for k, v in a.items()}))(*GOOD_M), ("dtype",)),
    Row("manifest dtype float16", "model",
        lambda: (lambda a, m: raw_npz(dict(envelope("model", a, m), arrays=dict(
            envelope("model", a, m)["arrays"], Ws={"dtype": "<f2", "shape": [3, 3], "sha256": "0"})),
            {k: npy_bytes(v) for k, v in a.items()}))(*GOOD_M), ("'<f2'",)),
    Row("npy header byte changed in a member > 4 KB", "model",
        lambda: flip_header_byte(wide_model(), "Ws.npy"), ("CRC",)),
    Row("npy v2 header claiming 1 GB", "model",
        lambda: forge("model", *GOOD_M)[:0] + (lambda a, m: raw_npz(envelope("model", a, m), dict(
            {k: npy_bytes(v) for k, v in a.items()},
            Ws=b"\x93NUMPY\x02\x00" + struct.pack("<I", 10**9) + b"{" + b" " * 40)))(*GOOD_M), ("Ws",)),
    Row("metadata nested 100000 deep", "model", deep_meta, ("cannot read",)),
    Row("metadata with a lone surrogate", "model",
        lambda: meta_text(lambda t: t.replace('"adding"', '"\\ud800adding"', 1)), ("surrogate",)),
    Row("metadata repeating a key", "model",
        lambda: meta_text(lambda t: t.replace('"meta": {', '"meta": {"task": 1, ', 1)), ("repeats",)),
    # ---- checkpoints: the training fields, naming the field
    Row("step missing", "checkpoint", lambda: ckpt(("step",), delete=True), ("step", "missing")),
    Row("step a string", "checkpoint", lambda: ckpt(("step",), "4"), ("step", "'4'")),
    Row("step a list", "checkpoint", lambda: ckpt(("step",), [4]), ("step", "[4]")),
    Row("step null", "checkpoint", lambda: ckpt(("step",), None), ("step", "None")),
    Row("step negative", "checkpoint", lambda: ckpt(("step",), -1), ("step", "-1")),
    Row("step a float", "checkpoint", lambda: ckpt(("step",), 3.5), ("step", "3.5")),
    Row("step a bool", "checkpoint", lambda: ckpt(("step",), True), ("step", "True")),
    Row("step 10**30", "checkpoint", lambda: ckpt(("step",), 10**30), ("step",)),
    Row("elapsed missing", "checkpoint", lambda: ckpt(("elapsed",), delete=True), ("elapsed", "missing")),
    Row("elapsed a string", "checkpoint", lambda: ckpt(("elapsed",), "1.5"), ("elapsed",)),
    Row("elapsed negative", "checkpoint", lambda: ckpt(("elapsed",), -1.0), ("elapsed", "-1.0")),
    Row("elapsed null", "checkpoint", lambda: ckpt(("elapsed",), None), ("elapsed",)),
    Row("elapsed a list", "checkpoint", lambda: ckpt(("elapsed",), [1.5]), ("elapsed",)),
    Row("train a list", "checkpoint", lambda: ckpt(("train",), []), ("train", "object")),
    Row("train {}", "checkpoint", lambda: ckpt(("train",), {}), ("train", "missing")),
    Row("train missing", "checkpoint", lambda: ckpt(("train",), delete=True), ("train", "missing")),
    Row("train unknown key", "checkpoint", lambda: ckpt(("train", "speed"), 1), ("train", "speed")),
    Row("train optimizer unknown", "checkpoint", lambda: ckpt(("train", "optimizer"), "adamax"),
        ("train", "--optimizer", "adamax")),
    Row("train hidden differs from the network", "checkpoint", lambda: ckpt(("train", "hidden"), 7), ("train", "7")),
    Row("train cell differs from the network", "checkpoint", lambda: ckpt(("train", "cell"), "gru"),
        ("train", "gru")),
    Row("train batch differs from the carry", "checkpoint", lambda: ckpt(("train", "batch"), 3), ("carry/0",)),
    Row("train batch 10**30", "checkpoint", lambda: ckpt(("train", "batch"), 10**30), ("train.batch",)),
    Row("train lr a string", "checkpoint", lambda: ckpt(("train", "lr"), "fast"), ("train", "--lr")),
    Row("train tbptt null with a carry", "checkpoint", lambda: ckpt(("train", "tbptt"), None), ("carry/0",)),
    Row("train tbptt malformed", "checkpoint", lambda: ckpt(("train", "tbptt"), [3, 1]), ("train", "--tbptt")),
    Row("carry/0 missing (gap before carry/1)", "checkpoint",
        lambda: ckpt(base=GOOD_C_LSTM, drop=("carry/0",)), ("carry/0",)),
    Row("carry/0 missing (no carry at all)", "checkpoint", lambda: ckpt(drop=("carry/0",)), ("carry/0",)),
    Row("carry/1 extra for an Elman net", "checkpoint", lambda: ckpt(add={"carry/1": np.zeros((2, 3))}),
        ("carry/1",)),
    Row("carry/0 of another shape", "checkpoint", lambda: ckpt(add={"carry/0": np.zeros((5, 3))}), ("carry/0",)),
    Row("carry/0 of another float type than the net", "checkpoint",
        lambda: ckpt(add={"carry/0": np.zeros((2, 3), np.float64 if GOOD_C[0]["carry/0"].dtype == np.float32
                                              else np.float32)}), ("carry/0", "dtype")),
    Row("opt/m/Wx missing", "checkpoint", lambda: ckpt(drop=("opt/m/Wx",)), ("opt/m/Wx",)),
    Row("opt/m/Wx of another shape", "checkpoint", lambda: ckpt(add={"opt/m/Wx": np.zeros((4, 4))}), ("opt/m/Wx",)),
    Row("opt/m/Wx of integers", "checkpoint", lambda: ckpt(add={"opt/m/Wx": np.zeros((3, 2), np.int64)}),
        ("opt/m/Wx",)),
    Row("opt/step missing", "checkpoint", lambda: ckpt(drop=("opt/step",)), ("opt/step",)),
    Row("opt/step beyond step", "checkpoint", lambda: ckpt(add={"opt/step": np.array(99)}), ("opt/step", "99")),
    Row("opt state of another optimizer", "checkpoint", lambda: ckpt(("train", "optimizer"), "momentum"),
        ("opt/buf",)),
    Row("task missing in a checkpoint", "checkpoint", lambda: ckpt(("task",), delete=True), ("task", "missing")),
    Row("task {} in a checkpoint", "checkpoint", lambda: ckpt(("task",), {}), ("task.name",)),
    Row("task length 10**7 in a checkpoint", "checkpoint", lambda: ckpt(("task", "length"), 10**7), ("task.length",)),
    Row("param/Ws missing", "checkpoint", lambda: ckpt(drop=("param/Ws",)), ("param/Ws",)),
    Row("param/extra", "checkpoint", lambda: ckpt(add={"param/extra": np.zeros(2)}), ("param/extra",)),
    Row("network n_hidden differs from the params", "checkpoint", lambda: ckpt(("network", "n_hidden"), 4),
        ("train", "hidden 3", "4")),
    Row("network in a checkpoint missing", "checkpoint", lambda: ckpt(("network",), delete=True), ("network",)),
    Row("a model file given as the checkpoint", "checkpoint", lambda: model(), ("bptt-checkpoint",)),
    Row("a checkpoint given as the model", "model", lambda: ckpt(), ("bptt-model",)),
]


def load_any(kind: str, path):
    if kind == "model":
        return files.load(path)
    return train.load_resumable(path)


@pytest.mark.parametrize("row", R, ids=[r.id for r in R])
def test_hostile_file_is_one_model_file_error_in_bounded_memory(row, tmp_path):
    data = row.build()
    path = tmp_path / f"{row.kind}.npz"
    path.write_bytes(data)
    tracemalloc.start()
    try:
        with pytest.raises(ModelFileError) as e:
            load_any(row.kind, path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    msg = str(e.value)
    assert str(path) in msg, msg
    for w in row.words:
        assert w in msg, (w, msg)
    assert peak <= budget(len(data)), (peak, len(data))


def test_table_size():
    assert len(R) >= 100
    assert len({r.id for r in R}) == len(R)


def test_good_files_still_load():
    net = files.load(io.BytesIO(forge("model", *GOOD_M)))
    assert net.n_hidden == 3 and net.meta["task"]["name"] == "adding"
    for base in (GOOD_C, GOOD_C_LSTM):
        net, arrays, meta, step, elapsed = train.load_resumable(io.BytesIO(forge("checkpoint", *base)))
        assert (step, elapsed) == (4, 1.5) and "carry/0" in arrays
    assert files.load(io.BytesIO(text_model())).n_out == 4
    assert files.load(io.BytesIO(series_model())).n_in == 1
    assert files.load(io.BytesIO(wide_model())).n_hidden == 30


def test_loading_runs_no_initialiser(monkeypatch):
    """The stored parameters are used as read: no random initialisation happens on load."""
    def boom(*a, **k):
        raise AssertionError("an initialiser ran")
    monkeypatch.setattr(bptt.Network, "_init_params", boom)
    net = files.load(io.BytesIO(forge("model", *GOOD_M)))
    assert np.array_equal(net.params["Ws"], GOOD_M[0]["Ws"])


# ---- the CLI commands that read a model: one line, exit 2, nothing written ----------------------------
CLI_ROWS = [r for r in R if r.kind == "model" and r.id in {
    "n_hidden 12000, arrays of 3", "layers 2**31", "n_in 10**9", "dtype a subarray", "task {}",
    "task without name", "adding length 10**7", "text: n_out != vocabulary size", "series: mean missing",
    "deflate bomb: 64 MiB of zeros in a small file", "npy header byte changed in a member > 4 KB",
    "metadata nested 100000 deep"}]
COMMANDS = {
    "evaluate": lambda run: ["evaluate", run, "--heldout", "4"],
    "sample": lambda run: ["sample", run, "--length", "5"],
    "predict": lambda run: ["predict", run, "--data", run + "/s.csv", "--horizon", "2"],
    "diagnose": lambda run: ["diagnose", run, "--out", run + "/d/gradient"],
}


@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize("row", CLI_ROWS, ids=[r.id for r in CLI_ROWS])
def test_cli_commands_refuse_hostile_models(row, command, tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "model.npz").write_bytes(row.build())
    (run / "s.csv").write_text("v\n" + "1\n2\n" * 30)
    (run / "d").mkdir()
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    code = main(COMMANDS[command](str(run)))
    out, err = capsys.readouterr()
    assert code == 2, err
    assert len(err.splitlines()) == 1 and "Traceback" not in err and "model.npz" in err, err
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before


# ---- what save() refuses: InputError, nothing written --------------------------------------------------
def _deep_dict(n):
    d = cur = {}
    for _ in range(n):
        cur["a"] = {}
        cur = cur["a"]
    return d


SAVE_ROWS = [
    ("meta sets network", lambda p, net: bptt.save(net, p, {"network": {**net.config(), "g1": "relu"}}),
     "'network'"),
    ("meta with a lone surrogate value", lambda p, net: bptt.save(net, p, {"note": "a\ud800"}), "surrogate"),
    ("meta with a lone surrogate key", lambda p, net: bptt.save(net, p, {"\udc00": 1}), "surrogate"),
    ("meta nested 100000 deep", lambda p, net: bptt.save(net, p, {"x": _deep_dict(100_000)}), "nested deeper"),
    ("meta nested list 500 deep",
     lambda p, net: bptt.save(net, p, {"x": json.loads("[" * 500 + "]" * 500)}), "nested deeper"),
    ("meta task of another size", lambda p, net: bptt.save(net, p, {"task": {"name": "sine"}}), "n_in"),
    ("meta task {}", lambda p, net: bptt.save(net, p, {"task": {}}), "task.name"),
    ("meta not a dict", lambda p, net: bptt.save(net, p, [1]), "meta"),
    ("checkpoint meta sets network", lambda p, net: bptt.save_checkpoint(p, net, {}, {"network": 1}), "'network'"),
    ("checkpoint step a string", lambda p, net: bptt.save_checkpoint(p, net, {}, {"step": "4"}), "step"),
    ("checkpoint arrays not fitting train",
     lambda p, net: bptt.save_checkpoint(p, bptt.Elman(2, 3, 1, dtype=GOOD_C[1]["train"]["dtype"]), {},
                                         variant(GOOD_C[1], ("network",), delete=True)), "missing"),
    ("checkpoint array named like a parameter",
     lambda p, net: bptt.save_checkpoint(p, net, {"param/Ws": np.zeros((3, 3))}, {}), "param/Ws"),
]


@pytest.mark.parametrize("case", SAVE_ROWS, ids=[c[0] for c in SAVE_ROWS])
def test_save_refuses_with_input_error(case, tmp_path):
    _, call, word = case
    net = bptt.Elman(2, 3, 1)
    p = tmp_path / "m.npz"
    with pytest.raises(InputError, match=None) as e:
        call(p, net)
    assert word in str(e.value), str(e.value)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("dtype", ["(1000000000,)f8", "(3,)f8", "float16", ">f8", "V8", "complex128", 5, []])
def test_network_dtype_is_input_error(dtype):
    for cls in (bptt.Elman, bptt.LSTM, bptt.GRU):
        with pytest.raises(InputError, match="dtype"):
            cls(2, 3, 1, dtype=dtype)


def test_lzma_member_stops_at_the_declared_size(tmp_path):
    """A compressed member is read in chunks up to its declared size: a member whose data runs on is refused
    without inflating the rest."""
    a, m = GOOD_M
    data = forge("model", a, m, compress=zipfile.ZIP_LZMA)
    assert files.load(io.BytesIO(data)).n_hidden == 3  # a compressed bptt file loads
    bad = declare(data, "Ws.npy", 100)  # declares less than the member holds
    with pytest.raises(ModelFileError):
        files.load(io.BytesIO(bad))
