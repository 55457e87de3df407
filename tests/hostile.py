"""Building hostile bptt files in memory: good model and checkpoint metadata to start from, and a raw
writer that puts any envelope, manifest and member bytes into a zip (bypassing every check of the writer)."""

from __future__ import annotations

import copy
import io
import json
import zipfile

import numpy as np
from numpy.lib import format as npy_format

import bptt
from bptt import io as bio
from bptt import optim
from bptt.config import resolve
from bptt.data import get_task


def npy_bytes(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    npy_format.write_array(buf, np.asarray(a), allow_pickle=False)
    return buf.getvalue()


def raw_npz(envelope: dict, members: dict[str, bytes], compress=zipfile.ZIP_STORED, level=None) -> bytes:
    """A zip of ``__meta__.npy`` (the envelope as JSON) and ``NAME.npy`` members holding the given bytes."""
    blob = json.dumps(envelope, ensure_ascii=False).encode("utf-8", "surrogatepass")
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compress, compresslevel=level) as zf:
        zf.writestr("__meta__.npy", npy_bytes(np.frombuffer(blob, np.uint8)))
        for name, data in members.items():
            zf.writestr(name + ".npy", data)
    return out.getvalue()


def envelope(kind: str, arrays: dict[str, np.ndarray], meta: dict) -> dict:
    return {"format": bio.KINDS[kind], "format_version": bio.FORMAT_VERSION, "bptt_version": "test",
            "arrays": {n: {"dtype": a.dtype.str, "shape": list(a.shape), "sha256": bio._sha256(a)}
                       for n, a in arrays.items()},
            "meta": meta}


def forge(kind: str, arrays: dict[str, np.ndarray], meta: dict, **kw) -> bytes:
    """A file whose manifest is right for ``arrays`` but whose metadata is anything."""
    return raw_npz(envelope(kind, arrays, meta), {n: npy_bytes(a) for n, a in arrays.items()}, **kw)


def good_model(cell: str = "elman", task: str = "adding"):
    """(arrays, meta) of a small valid model file."""
    t = get_task(task, length=6) if task != "copy" else get_task("copy", delay=3)
    cls = {"elman": bptt.Elman, "lstm": bptt.LSTM, "gru": bptt.GRU}[cell]
    kw = {"g2": "softmax"} if t.loss == "cross_entropy" else {}
    net = cls(t.n_in, 3, t.n_out, seed=1, **kw)
    meta = {"network": net.config(), "task": t.describe(), "train": {"steps": 2}, "heldout": {"loss": 1.0}}
    return dict(net.params), meta


def good_checkpoint(cell: str = "elman", tbptt: bool = True, optimizer: str = "adam", layers: int = 1):
    """(arrays, meta) of a small valid training checkpoint (adding task, batch 2)."""
    flags = {"task": "adding", "length": 6, "hidden": 3, "batch": 2, "cell": cell, "optimizer": optimizer,
             "layers": layers, "steps": 10}
    if tbptt:
        flags["tbptt"] = (2, 3)
    cfg = resolve({}, flags)
    t = get_task("adding", length=6)
    cls = {"elman": bptt.Elman, "lstm": bptt.LSTM, "gru": bptt.GRU}[cell]
    net = cls(t.n_in, 3, t.n_out, seed=1, layers=layers, dtype=cfg.dtype)
    opt = optim.get(cfg.optimizer, cfg.lr)
    arrays = {f"param/{k}": v for k, v in net.params.items()}
    arrays.update({f"opt/{k}": v for k, v in optim.state_to_arrays(opt.init(net.params)).items()})
    if tbptt:
        s = net.initial_state(2)
        for k, a in enumerate(s if isinstance(s, tuple) else (s,)):
            arrays[f"carry/{k}"] = a + np.asarray(0.25, a.dtype)
    meta = {"network": net.config(), "task": t.describe(), "train": cfg.to_dict(), "step": 4, "elapsed": 1.5}
    return arrays, meta


def deep(n: int, leaf=0):
    """A JSON text fragment nested ``n`` lists deep."""
    return "[" * n + json.dumps(leaf) + "]" * n


def variant(meta: dict, path: tuple, value=..., delete: bool = False) -> dict:
    """A deep copy of ``meta`` with meta[path...] set to value (or deleted)."""
    m = copy.deepcopy(meta)
    cur = m
    for k in path[:-1]:
        cur = cur[k]
    if delete:
        del cur[path[-1]]
    else:
        cur[path[-1]] = value
    return m
