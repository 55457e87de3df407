"""Model files and checkpoints, on top of the safe npz layer in ``bptt.io``.

A model file holds the parameters as arrays and, as JSON, the network's configuration plus whatever the
caller adds (the task description: vocabulary or normalisation; the training configuration). Loading
never runs code: no pickle, every array's name, shape and dtype checked against the configuration.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import io
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
    """Write ``net`` to ``path`` (.npz) atomically. ``meta``: extra JSON-able information (task, training).
    A network with NaN or inf anywhere is refused and nothing is written."""
    io.write_npz(path, net.params, {"network": net.config(), **(meta or {})}, kind="model")


def _net_from(path, arrays: dict, meta: dict, prefix: str = "") -> Network:
    try:
        net = network_from_config(meta["network"])
    except (InputError, KeyError, TypeError) as e:
        raise ModelFileError(f"{path}: the stored network configuration is not usable ({e})") from None
    params = {}
    for name, shape in net.param_shapes().items():
        a = arrays.get(prefix + name)
        if a is None:
            raise ModelFileError(f"{path}: parameter {name!r} is missing")
        if a.shape != shape or a.dtype != net.dtype:
            raise ModelFileError(f"{path}: parameter {name!r} is {a.dtype} {a.shape}, expected {net.dtype} {shape}")
        params[name] = a
    net.params = params
    return net


def load(path) -> Network:
    """Read a model file written by :func:`save`. The stored extra information is ``net.meta``.
    Any problem with the file raises :class:`bptt.ModelFileError` naming the file and the problem."""
    arrays, meta = io.read_npz(path, kind="model")
    net = _net_from(path, arrays, meta)
    extra = set(arrays) - set(net.params)
    if extra:
        raise ModelFileError(f"{path}: unexpected arrays {sorted(extra)[:5]} in a model file")
    net.meta = {k: v for k, v in meta.items() if k != "network"}
    return net


def save_checkpoint(path, net: Network, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
    """A checkpoint: the parameters (``param/<name>``), any other arrays (optimiser state, carried
    state, ...) and JSON meta, written atomically."""
    allarr = {f"param/{k}": v for k, v in net.params.items()}
    allarr.update(arrays)
    io.write_npz(path, allarr, {"network": net.config(), **meta}, kind="checkpoint")


def load_checkpoint(path) -> tuple[Network, dict[str, np.ndarray], dict[str, Any]]:
    """Inverse of :func:`save_checkpoint`: (net, the other arrays, meta)."""
    arrays, meta = io.read_npz(path, kind="checkpoint")
    net = _net_from(path, arrays, meta, prefix="param/")
    rest = {k: v for k, v in arrays.items() if not k.startswith("param/")}
    return net, rest, meta
