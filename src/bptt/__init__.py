"""bptt: recurrent networks trained by backpropagation through time, written out in NumPy."""

import importlib

from . import optim
from ._version import __version__
from .errors import BPTTError, InputError, Interrupted, ModelFileError, TrainingDiverged
from .files import load, load_checkpoint, save, save_checkpoint
from .interop import from_torch, to_torch
from .network import GRU, LSTM, Elman, Forward, Gradients, Network

__all__ = ["__version__", "BPTTError", "InputError", "Interrupted", "ModelFileError", "TrainingDiverged",
           "Elman", "LSTM", "GRU", "Forward", "Gradients", "Network", "from_torch", "to_torch",
           "load", "save", "load_checkpoint", "save_checkpoint", "optim", "diagnostics"]


def __getattr__(name):
    # ``bptt.diagnostics`` is imported on first use, so that ``import bptt`` stays lean
    if name == "diagnostics":
        return importlib.import_module(".diagnostics", __name__)
    raise AttributeError(f"module 'bptt' has no attribute {name!r}")
