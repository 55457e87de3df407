"""Loading a run folder (or a model file) for the commands that use a trained model."""

from __future__ import annotations

import dataclasses
from pathlib import Path


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


def task_for(net, data=None, column=None, model=None):
    """The model's task; with ``data`` (a file or a shipped name), the same task on another file (text: encoded
    with the model's vocabulary, the whole file held out; series: normalised with the model's mean and std);
    with ``column`` (series), another column of ``data`` (default: of the model's own file). ``model``: the
    run folder or model file the net came from: a stored data path is looked for relative to it first."""
    from ..data import shipped, task_from_description
    from ..data.tasks import PATH_FROM_RUN

    folder = model_path(model).parent if model is not None else None

    desc = dict(net.meta["task"])
    if column is not None:
        if desc["name"] != "series":
            raise InputError(f"--column: got {column!r} for a model of the {desc['name']} task; --column is for "
                             "series models")
        if data is None:
            data = desc.get("path")
            here = Path(folder, desc.get(PATH_FROM_RUN, "")) if folder is not None else None
            if here is not None and desc.get(PATH_FROM_RUN) and here.is_file():
                data = str(here)
        desc["column"] = int(column) if column.lstrip("-").isdigit() else column
    if data is None:
        return task_from_description(desc, folder)
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
    from ..data.text import TextTask, _read_raw, encode_utf8

    name = desc["name"]
    if name == "text":
        raw = builtin_text().encode("utf-8") if data == BUILTIN_TEXT else _read_raw(data)
        _, codes = encode_utf8(raw, desc["vocab"], str(data))  # bounded: one small code a character
        codes.flags.writeable = False
        td = TextData(desc["vocab"], codes, codes, str(data), desc.get("val_fraction", 0.1), "")
        return TextTask(td, min(desc["length"], len(codes) - 1))
    if name == "series":
        sd = SeriesData.from_file(data, desc.get("column"), desc.get("val_fraction", 0.2), desc.get("transform", "diff"))
        sd = dataclasses.replace(sd, mean=desc["mean"], std=desc["std"])
        return SeriesTask(sd, desc["length"], desc.get("burn_in", 1))
    raise InputError(f"--data: the {name} task generates its own held-out data; --data is for text and series models")
