"""Loading a run folder (or a model file) for the commands that use a trained model."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from ..errors import InputError


def model_path(path) -> Path:
    p = Path(path)
    if p.is_dir():
        p = p / "model.npz"
    if not p.exists():
        raise InputError(f"{str(path)!r}: no model here; expected a run folder with model.npz (from bptt train) "
                         "or a .npz model file")
    return p


def load_model(path):
    from ..files import load

    net = load(model_path(path))
    if "task" not in getattr(net, "meta", {}):
        raise InputError(f"{str(path)!r}: this model file has no task description; it was not written by bptt train")
    return net


def task_for(net, data=None, column=None):
    """The model's task; with ``data`` (a file or a shipped name), the same task on another file (text: encoded
    with the model's vocabulary, the whole file held out; series: normalised with the model's mean and std);
    with ``column`` (series), another column of ``data`` (default: of the model's own file)."""
    from ..data import shipped, task_from_description

    desc = dict(net.meta["task"])
    if column is not None:
        if desc["name"] != "series":
            raise InputError(f"--column: got {column!r} for a model of the {desc['name']} task; --column is for "
                             "series models")
        data = desc.get("path") if data is None else data
        desc["column"] = int(column) if column.lstrip("-").isdigit() else column
    if data is None:
        return task_from_description(desc)
    data = shipped.resolve(desc["name"], data)
    try:
        return _task_on(desc, data)
    except InputError as e:  # the data module's messages name no option
        msg = shipped.cli_message(str(e))
        opt = "--column" if column is not None and "column" in msg else "--data"
        raise InputError(msg if msg.startswith("--") else f"{opt}: {msg}") from None


def _task_on(desc: dict, data):
    from ..data import BUILTIN_TEXT, TextData, builtin_text
    from ..data.series import SeriesData, SeriesTask
    from ..data.text import TextTask, _read_utf8

    name = desc["name"]
    if name == "text":
        text = builtin_text() if data == BUILTIN_TEXT else _read_utf8(data)
        vocab = desc["vocab"]
        unknown = sorted(set(text) - set(vocab))
        if unknown:
            raise InputError(f"--data: {str(data)!r} has characters the model never saw, e.g. {unknown[0]!r} "
                             f"(U+{ord(unknown[0]):04X}); the model's vocabulary has {len(vocab)} characters")
        codes = np.searchsorted(np.frombuffer(vocab.encode("utf-32-le"), np.uint32),
                                np.frombuffer(text.encode("utf-32-le"), np.uint32)).astype(np.int64)
        td = TextData(vocab, codes, codes, str(data), desc.get("val_fraction", 0.1), "")
        return TextTask(td, min(desc["length"], len(codes) - 1))
    if name == "series":
        sd = SeriesData.from_file(data, desc.get("column"), desc.get("val_fraction", 0.2), desc.get("transform", "diff"))
        sd = dataclasses.replace(sd, mean=desc["mean"], std=desc["std"])
        return SeriesTask(sd, desc["length"], desc.get("burn_in", 1))
    raise InputError(f"--data: the {name} task generates its own held-out data; --data is for text and series models")
