"""bptt: recurrent networks trained by backpropagation through time, written out in NumPy."""

from ._version import __version__
from .errors import BPTTError, InputError, ModelFileError
from .network import Elman, Forward, Gradients, Network

__all__ = ["__version__", "BPTTError", "InputError", "ModelFileError", "Elman", "Forward", "Gradients", "Network"]
