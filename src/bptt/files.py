"""Model files and checkpoints, on top of the safe npz layer in ``bptt.io``.

A model file holds the parameters as arrays and, as JSON, the network's configuration plus whatever the
caller adds (the task description: vocabulary or normalisation; the training configuration). Loading
never runs code and never runs an initialiser: the stored configuration is checked (``bptt.schema``) and
gives the exact names, shapes and dtype of the parameters, which are compared with the file's manifest
before any array is read; the network is then built around the arrays read (``Network.from_params``).
So a file costs at most about its own size in memory, whatever its metadata claims.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import io, schema
from .errors import InputError, ModelFileError
from .network import Network


def _networks() -> dict[str, type[Network]]:
    from . import network

    return {cls.cell_name: cls for cls in (network.Elman, getattr(network, "LSTM", None),
                                           getattr(network, "GRU", None)) if cls is not None}


def network_from_config(cfg: dict) -> Network:
    """Rebuild a network (with fresh parameters) from ``Network.config()``."""
    kinds = _networks()
    if not isinstance(cfg, dict) or cfg.get("cell") not in kinds:
        raise InputError(f"network config: unknown cell {cfg.get('cell') if isinstance(cfg, dict) else cfg!r}; "
                         f"expected one of {', '.join(kinds)}")
    kw = {k: v for k, v in cfg.items() if k != "cell"}
    return kinds[cfg["cell"]](**kw)


def save(net: Network, path, meta: dict | None = None) -> None:
    """Write ``net`` to ``path`` (.npz) atomically. ``meta``: extra JSON-able information (task, training);
    the key ``network`` is bptt's own (InputError), and a ``task`` must be one that loads back with this
    network. A network with NaN or inf anywhere is refused and nothing is written."""
    meta = schema.check_user_meta(meta, schema.RESERVED_MODEL_KEYS)
    if "task" in meta:
        schema.check_task(meta["task"], net)
    io.write_npz(path, net.params, {"network": net.config(), **meta}, kind="model")


def _expect(meta: dict, manifest: dict, box: dict, *, checkpoint: bool):
    """The read_npz callback: check the metadata and say which arrays the file must hold, with which
    shapes and dtype (before any array is read)."""
    net = schema.network_skeleton(meta.get("network"))
    box["net"] = net
    if not checkpoint:
        if "task" in meta:
            schema.check_task(meta["task"], net)
        return {n: (s, net.dtype) for n, s in net.param_shapes().items()}
    want = schema.checkpoint_arrays(meta, net)
    if want is not None and meta["train"].get("online") is not None:  # an online algorithm's own state arrays
        want.update({n: (shape, None) for n, (shape, _) in manifest.items() if n.startswith("online/")})
    if want is None:  # no training fields: the caller's own arrays besides the parameters
        want = {f"param/{n}": (s, net.dtype) for n, s in net.param_shapes().items()}
        want.update({n: (shape, None) for n, (shape, _) in manifest.items() if not n.startswith("param/")})
    return want


def _with_params(path, net: Network, arrays: dict, prefix: str = "") -> Network:
    params = {}
    for name, shape in net.param_shapes().items():
        a = arrays.get(prefix + name)
        if a is None or a.shape != shape or a.dtype != net.dtype:
            got = "missing" if a is None else f"{a.dtype} {a.shape}"
            raise ModelFileError(f"{path}: parameter {name!r} is {got}, expected {net.dtype} {shape}")
        params[name] = a
    try:
        return net.set_params(params)
    except InputError as e:
        raise ModelFileError(f"{path}: {e}") from None


def load(path) -> Network:
    """Read a model file written by :func:`save`. The stored extra information is ``net.meta``.
    Any problem with the file raises :class:`bptt.ModelFileError` naming the file and the problem."""
    box: dict = {}
    arrays, meta = io.read_npz(path, kind="model",
                               expected=lambda m, man: _expect(m, man, box, checkpoint=False))
    net = _with_params(path, box["net"], arrays)
    net.meta = {k: v for k, v in meta.items() if k != "network"}
    return net


def save_checkpoint(path, net: Network, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
    """A checkpoint: the parameters (``param/<name>``), any other arrays (optimiser state, carried
    state, ...) and JSON meta, written atomically. ``meta`` may not set ``network`` (bptt's own); its
    ``step``, ``elapsed``, ``task`` and ``train`` (what ``bptt train`` writes) must be ones that load back."""
    meta = schema.check_user_meta(meta, schema.RESERVED_CHECKPOINT_KEYS)
    allarr = {f"param/{k}": v for k, v in net.params.items()}
    if not isinstance(arrays, dict):
        raise InputError(f"arrays: expected a dict of name -> numpy.ndarray, received {type(arrays).__name__}")
    clash = sorted(set(arrays) & set(allarr))
    if clash:
        raise InputError(f"arrays: {clash[0]!r} is a parameter's name in the checkpoint; use another name")
    allarr.update(arrays)
    want = schema.checkpoint_arrays(meta, net)
    if want is not None and meta["train"].get("online") is not None:
        want.update({n: None for n in allarr if n.startswith("online/")})
    if want is not None and set(want) != set(allarr):
        missing, extra = sorted(set(want) - set(allarr)), sorted(set(allarr) - set(want))
        raise InputError(f"arrays: they do not fit meta['train']: missing {missing[:3]}, unexpected {extra[:3]}")
    io.write_npz(path, allarr, {"network": net.config(), **meta}, kind="checkpoint")


def load_checkpoint(path) -> tuple[Network, dict[str, np.ndarray], dict[str, Any]]:
    """Inverse of :func:`save_checkpoint`: (net, the other arrays, meta). Its fields are checked
    (``bptt.schema``): a bad ``step``, ``elapsed``, ``train`` or ``task``, or arrays that do not fit them
    (a gap in ``carry/k``, an optimiser state of other shapes) raise ModelFileError naming the field."""
    box: dict = {}
    arrays, meta = io.read_npz(path, kind="checkpoint",
                               expected=lambda m, man: _expect(m, man, box, checkpoint=True))
    net = _with_params(path, box["net"], arrays, prefix="param/")
    rest = {k: v for k, v in arrays.items() if not k.startswith("param/")}
    return net, rest, meta
