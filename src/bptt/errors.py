"""The errors bptt raises on purpose.

Every message names what was wrong, what was received, what was expected and, where there is
one, how to fix it. Both are ``ValueError`` subclasses, so ``except ValueError`` catches them.
"""


class BPTTError(Exception):
    """Base class of every error bptt raises on purpose."""


class InputError(BPTTError, ValueError):
    """An argument, array or option is not what bptt expects."""


class ModelFileError(BPTTError, ValueError):
    """A model or checkpoint file is missing, truncated, corrupted, of another version or hostile."""


class TrainingDiverged(BPTTError):
    """The loss, the gradient or the parameters became NaN/inf; the last good checkpoint is kept."""


class Interrupted(BPTTError):
    """SIGINT/SIGTERM during training: a checkpoint was written; resume with --resume."""
