"""Synthetic sequence tasks with a common interface, and the task registry.

Every task is a frozen dataclass with

- ``name`` (str), ``loss`` ("squared" or "cross_entropy"), ``n_in``, ``n_out`` (ints);
- ``length``: the sequence length T of every batch;
- ``at``: where the loss sits: None = every step, an int = that step (-1 = last), a list = those steps
  (turn it into indices or a mask with :func:`bptt.data.at_steps` / :func:`bptt.data.loss_mask`);
- ``batch(rng, batch_size) -> (X, D)``: X (T,B,n_in) float64; D (T,B,n_out) float64 for "squared",
  (T,B) int64 classes for "cross_entropy". Entries of D outside ``at`` carry no loss; their fill is
  stated per task;
- ``heldout(n, seed) -> (X, D)``: a fixed held-out set of n sequences drawn from
  ``SeedSequence([HELDOUT_TAG, seed])``, a different stream from the training ``default_rng(seed)``;
- ``metric(Y, D) -> dict[str, float]``: the task's own success criterion, Y (T,B,n_out) being the network
  outputs after g2 (for cross-entropy tasks: softmax probabilities); always contains ``solved``
  (fraction of sequences meeting the criterion) and a baseline figure on the same targets;
- ``describe() -> dict``: JSON-able, ``get_task(**describe())`` re-creates the task.

Data sources (DATA.md)
----------------------
- ``sine``: noisy sinusoids, generated here. No canonical source; a common first sanity check.
- ``adding``: S. Hochreiter, J. Schmidhuber, "Long Short-Term Memory", Neural Computation 9(8), 1997,
  experiment 4, in the form of Q. V. Le, N. Jaitly, G. E. Hinton, "A Simple Way to Initialize Recurrent
  Networks of Rectified Linear Units", arXiv:1504.00941, 2015 (values U[0,1], one marker in each half,
  target = sum, always-predict-1 baseline mse 1/6 ~ 0.167).
- ``copy``: M. Arjovsky, A. Shah, Y. Bengio, "Unitary Evolution Recurrent Neural Networks", ICML 2016,
  section 4.1 (after Hochreiter & Schmidhuber 1997, experiment 2).
- ``order``: Hochreiter & Schmidhuber 1997, experiment 6a ("temporal order", two relevant symbols).
- ``text``: any UTF-8 file (see :mod:`bptt.data.text`); built-in: Python standard-library docstrings
  (Python Software Foundation License).
- ``series``: any CSV / .npy column (see :mod:`bptt.data.series`); built-in: Box & Jenkins airline
  passengers 1949-1960 (``datasets/airline.csv``, see ``datasets/README.md``).
All synthetic data are generated from explicit seeds; nothing is downloaded.
"""
from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np

from bptt.errors import InputError

from ._common import (at_steps, check_float, check_int, check_outputs, check_rng, class_metrics,
                      heldout_rng, one_hot)


@runtime_checkable
class Task(Protocol):
    """The interface every task offers (see the module docstring)."""

    name: str
    loss: str
    n_in: int
    n_out: int
    length: int

    @property
    def at(self) -> None | int | list[int]: ...

    def batch(self, rng: np.random.Generator, batch_size: int) -> tuple[np.ndarray, np.ndarray]: ...

    def heldout(self, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]: ...

    def metric(self, Y: np.ndarray, D: np.ndarray) -> dict[str, float]: ...

    def describe(self) -> dict[str, Any]: ...


class _Synthetic:
    """Shared plumbing of the synthetic tasks: held-out split, describe, argument checks."""

    def _make(self, rng: np.random.Generator, B: int) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def batch(self, rng: np.random.Generator, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
        """A fresh training batch of ``batch_size`` sequences drawn from ``rng``."""
        return self._make(check_rng(rng), check_int("batch_size", batch_size, lo=1))

    def heldout(self, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """The fixed held-out set: ``n`` sequences from the held-out stream of ``seed``."""
        return self._make(heldout_rng(seed), check_int("n", n, lo=1))

    def describe(self) -> dict[str, Any]:
        """JSON-able parameters; ``get_task(**describe())`` re-creates this task."""
        d = {"name": self.name}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            d[f.name] = list(v) if isinstance(v, tuple) else v
        return d

    def _targets(self, D: Any) -> np.ndarray:
        """Check targets D against this task's shapes, return them as an array."""
        D = np.asarray(D)
        classes = self.loss == "cross_entropy"
        ok = D.ndim == (2 if classes else 3) and D.shape[0] == self.length and D.shape[1] >= 1
        ok = ok and (np.issubdtype(D.dtype, np.integer) if classes else D.shape[2] == self.n_out)
        if classes and ok and (D.min() < 0 or D.max() >= self.n_out):
            raise InputError(f"D (class targets) must lie in [0, {self.n_out}); received values in "
                             f"[{D.min()}, {D.max()}].")
        if not ok:
            shape = "(T,B)" if self.loss == "cross_entropy" else f"(T,B,{self.n_out})"
            raise InputError(f"D (targets) must have shape {shape} with T = {self.length} (integer classes for "
                             f"cross-entropy tasks); received {D.shape} {D.dtype}. "
                             f"Pass the D returned by batch() or heldout().")
        return D


@dataclass(frozen=True)
class SineTask(_Synthetic):
    """Next-value prediction of noisy sinusoids (a generic sanity check; no canonical source).

    Sequence b: s_t = sin(w_b t + phi_b), w_b ~ U[freq_min, freq_max] rad/step, phi_b ~ U[0, 2 pi).
    X[t,b,0] = s_t + noise_std * N(0,1); D[t,b,0] = s_{t+1} (the noise-free next value, so the
    task's criterion is reachable whatever the noise). Loss: squared, every step (at = None).
    Signal variance is 0.5. ``solved``: fraction of sequences whose mse over the steps
    t >= burn_in is below ``threshold`` (default 0.01 = 2 % of the signal variance). The first
    ``burn_in`` steps are excluded because frequency and phase cannot be known from one or two values.
    With freq_min >= 0.25 the last-value predictor (mse 1 - cos w >= 0.031) never counts as solved.
    """

    length: int = 50
    noise_std: float = 0.0
    freq_min: float = 0.25
    freq_max: float = 1.0
    burn_in: int = 5
    threshold: float = 0.01
    name: ClassVar[str] = "sine"
    loss: ClassVar[str] = "squared"
    n_in: ClassVar[int] = 1
    n_out: ClassVar[int] = 1
    at: ClassVar[None] = None

    def __post_init__(self) -> None:
        check_int("length", self.length, lo=2)
        check_float("noise_std", self.noise_std, lo=0.0)
        check_float("freq_min", self.freq_min, lo=0.0, lo_open=True)
        check_float("freq_max", self.freq_max, lo=self.freq_min, hi=math.pi)
        check_int("burn_in", self.burn_in, lo=1, hi=self.length - 1)
        check_float("threshold", self.threshold, lo=0.0, lo_open=True)

    def _make(self, rng, B):
        T = self.length
        w = rng.uniform(self.freq_min, self.freq_max, size=B)            # (B,)
        phi = rng.uniform(0.0, 2 * math.pi, size=B)                       # (B,)
        s = np.sin(np.arange(T + 1)[:, None] * w + phi)                   # (T+1,B) clean signal
        X = s[:T] + self.noise_std * rng.standard_normal((T, B))          # (T,B) noisy input
        return X[..., None], s[1:, :, None].copy()                        # (T,B,1), (T,B,1)

    def metric(self, Y, D):
        """mse (all steps), mse_after_burn_in, solved, and baselines on steps >= burn_in:
        ``baseline_zero_mse`` (predict 0, ~0.5) and ``baseline_last_mse`` (predict the current clean value)."""
        D = self._targets(D)
        Y = check_outputs(Y, D, self.loss, self.n_out)
        k = self.burn_in
        err = (Y - D)[..., 0]                                             # (T,B)
        per_seq = (err[k:] ** 2).mean(axis=0)                             # (B,)
        return {"mse": float((err ** 2).mean()),
                "mse_after_burn_in": float(per_seq.mean()),
                "solved": float((per_seq < self.threshold).mean()),
                "baseline_zero_mse": float((D[k:] ** 2).mean()),
                "baseline_last_mse": float(((D[k:] - D[k - 1:-1]) ** 2).mean())}


@dataclass(frozen=True)
class AddingTask(_Synthetic):
    """The adding problem (Hochreiter & Schmidhuber 1997, exp. 4; form of Le et al. 2015).

    X[:,:,0] ~ U[0,1]; X[:,:,1] is 0 except exactly two 1s, one at a step in [0, T//2) and one in
    [T//2, T). Target: the sum of the two marked values at the last step only (at = -1), D (T,B,1)
    zero elsewhere. Loss: squared. ``solved``: fraction of sequences with |error| < ``tolerance``
    (0.04, H&S's threshold, here applied to the sum in [0, 2]; H&S's own target was 0.5 + sum/4 on
    [-1,1] values, so this is stricter than theirs). ``baseline_mse``: always predicting 1.0
    (expected 1/6 ~ 0.167); that baseline meets the tolerance on 1 - (1 - 0.04)^2 ~ 7.8 % of sequences.
    """

    length: int = 100
    tolerance: float = 0.04
    name: ClassVar[str] = "adding"
    loss: ClassVar[str] = "squared"
    n_in: ClassVar[int] = 2
    n_out: ClassVar[int] = 1
    at: ClassVar[int] = -1

    def __post_init__(self) -> None:
        check_int("length", self.length, lo=2)
        check_float("tolerance", self.tolerance, lo=0.0, lo_open=True)

    def _make(self, rng, B):
        T, cols = self.length, np.arange(B)
        X = np.zeros((T, B, 2))
        X[:, :, 0] = rng.uniform(0.0, 1.0, size=(T, B))
        i1 = rng.integers(0, T // 2, size=B)                              # first marker: first half
        i2 = rng.integers(T // 2, T, size=B)                              # second marker: second half
        X[i1, cols, 1] = 1.0
        X[i2, cols, 1] = 1.0
        D = np.zeros((T, B, 1))
        D[-1, :, 0] = X[i1, cols, 0] + X[i2, cols, 0]
        return X, D

    def metric(self, Y, D):
        """mse and solved at the last step; baseline_mse / baseline_solved of always predicting 1.0."""
        D = self._targets(D)
        Y = check_outputs(Y, D, self.loss, self.n_out)
        err = Y[-1, :, 0] - D[-1, :, 0]                                   # (B,)
        base = 1.0 - D[-1, :, 0]
        return {"mse": float((err ** 2).mean()),
                "solved": float((np.abs(err) < self.tolerance).mean()),
                "baseline_mse": float((base ** 2).mean()),
                "baseline_solved": float((np.abs(base) < self.tolerance).mean())}


@dataclass(frozen=True)
class CopyTask(_Synthetic):
    """The copy (memory) task of Arjovsky, Shah & Bengio 2016, sec. 4.1.

    Input codes: 0 blank, 1..n_symbols symbols, n_symbols+1 delimiter, one-hot in n_symbols+2 channels
    (10 for the default 8 symbols). A sequence is: n_recall random symbols, delay-1 blanks, the
    delimiter, n_recall blanks; length T = delay + 2 * n_recall (``delay`` is Arjovsky's T).
    Targets (n_out = n_symbols+1 classes, 0 = blank): blank for the first delay + n_recall steps
    (placeholders: no loss there), then the n_recall symbols. Loss: cross-entropy over the last
    n_recall steps (at = those steps). ``solved``: fraction of sequences recalled perfectly (argmax).
    Baseline (memoryless): log(n_symbols) = 2.079 nats per recalled step; averaged over all T steps
    as in Arjovsky et al. (who also score the blanks): n_recall * log(n_symbols) / T.
    """

    delay: int = 20
    n_recall: int = 10
    n_symbols: int = 8
    name: ClassVar[str] = "copy"
    loss: ClassVar[str] = "cross_entropy"

    def __post_init__(self) -> None:
        check_int("delay", self.delay, lo=1)
        check_int("n_recall", self.n_recall, lo=1)
        check_int("n_symbols", self.n_symbols, lo=2)

    @property
    def length(self) -> int:
        return self.delay + 2 * self.n_recall

    @property
    def n_in(self) -> int:
        return self.n_symbols + 2

    @property
    def n_out(self) -> int:
        return self.n_symbols + 1

    @property
    def at(self) -> list[int]:
        return list(range(self.length - self.n_recall, self.length))

    @property
    def baseline_ce(self) -> float:
        """Memoryless cross-entropy per recalled step, log(n_symbols) nats."""
        return math.log(self.n_symbols)

    def _make(self, rng, B):
        T, K = self.length, self.n_recall
        syms = rng.integers(1, self.n_symbols + 1, size=(K, B))          # (K,B) codes 1..n_symbols
        codes = np.zeros((T, B), dtype=np.int64)                          # blanks
        codes[:K] = syms
        codes[T - K - 1] = self.n_symbols + 1                             # delimiter
        D = np.zeros((T, B), dtype=np.int64)
        D[T - K:] = syms
        return one_hot(codes, self.n_in), D

    def metric(self, Y, D):
        """ce and accuracy over the recalled steps, solved (all recalled), baseline_ce (+ all-steps form)."""
        D = self._targets(D)
        P = check_outputs(Y, D, self.loss, self.n_out)
        m = class_metrics(P, D, np.asarray(self.at))
        return {"ce": m["ce"], "accuracy": m["accuracy"], "solved": float(m["all_correct"].mean()),
                "baseline_ce": self.baseline_ce,
                "baseline_ce_all_steps": self.n_recall * self.baseline_ce / self.length}


@dataclass(frozen=True)
class OrderTask(_Synthetic):
    """Temporal order task, Hochreiter & Schmidhuber 1997, experiment 6a.

    Input symbols (one-hot, 8 channels): 0 E (start), 1 B (end), 2-5 distractors a b c d, 6 X, 7 Y.
    Step 0 is E, step T-1 is B, one relevant symbol (X or Y) sits at a uniform step in ``first``
    (inclusive window), another in ``second``; all other steps are random distractors. Class at the last
    step (at = -1): 0 XX, 1 XY, 2 YX, 3 YY; D is that class at the last step and placeholder 0 elsewhere.
    Windows default to H&S's [10,20] and [50,60] for T = 100, scaled with T otherwise. Deviation from
    H&S: the length is fixed (they drew 100-110) so batches stack. ``solved``: fraction of sequences
    classified correctly (argmax); chance is 0.25, baseline_ce = log 4.
    """

    length: int = 100
    first: tuple[int, int] | None = None
    second: tuple[int, int] | None = None
    name: ClassVar[str] = "order"
    loss: ClassVar[str] = "cross_entropy"
    n_in: ClassVar[int] = 8
    n_out: ClassVar[int] = 4
    at: ClassVar[int] = -1

    def __post_init__(self) -> None:
        T = check_int("length", self.length, lo=6)
        for fname, (lo, hi) in (("first", (0.1, 0.2)), ("second", (0.5, 0.6))):
            w = getattr(self, fname)
            if w is None:
                w = (round(lo * T), round(hi * T))
            if not isinstance(w, (list, tuple)) or len(w) != 2:
                raise InputError(f"{fname} must be a pair (start, end) of steps; received {w!r}.")
            object.__setattr__(self, fname, (check_int(f"{fname}[0]", w[0]), check_int(f"{fname}[1]", w[1])))
        (a, b), (c, d) = self.first, self.second
        if not 1 <= a <= b < c <= d <= T - 2:
            raise InputError(f"windows first={self.first}, second={self.second} must satisfy "
                             f"1 <= first[0] <= first[1] < second[0] <= second[1] <= length-2 = {T - 2}. "
                             f"Use a longer sequence or narrower windows.")

    def _make(self, rng, B):
        T, cols = self.length, np.arange(B)
        codes = rng.integers(2, 6, size=(T, B))                          # distractors a..d
        codes[0], codes[-1] = 0, 1                                        # E ... B
        t1 = rng.integers(self.first[0], self.first[1] + 1, size=B)
        t2 = rng.integers(self.second[0], self.second[1] + 1, size=B)
        y1 = rng.integers(0, 2, size=B)                                   # 0 = X, 1 = Y
        y2 = rng.integers(0, 2, size=B)
        codes[t1, cols] = 6 + y1
        codes[t2, cols] = 6 + y2
        D = np.zeros((T, B), dtype=np.int64)
        D[-1] = 2 * y1 + y2
        return one_hot(codes, 8), D

    def metric(self, Y, D):
        """ce and accuracy at the last step; solved = fraction correct; baseline_ce = log 4."""
        D = self._targets(D)
        P = check_outputs(Y, D, self.loss, self.n_out)
        m = class_metrics(P, D, np.array([self.length - 1]))
        return {"ce": m["ce"], "accuracy": m["accuracy"], "solved": float(m["all_correct"].mean()),
                "baseline_ce": math.log(4.0)}


# ---------------------------------------------------------------------------------------- registry

def _text_task(path: str, length: int = 100, val_fraction: float = 0.1, vocab: str | None = None,
               sha256: str | None = None):
    from .text import TextTask
    return TextTask.from_source(path, length=length, val_fraction=val_fraction, vocab=vocab, sha256=sha256)


def _series_task(path: str, column: str | int | None = None, length: int = 24, val_fraction: float = 0.2,
                 burn_in: int = 1, mean: float | None = None, std: float | None = None,
                 sha256: str | None = None, transform: str = "diff"):
    from .series import SeriesTask
    return SeriesTask.from_source(path, column=column, length=length, val_fraction=val_fraction,
                                  burn_in=burn_in, mean=mean, std=std, sha256=sha256, transform=transform)


#: The key of a stored task description that holds the data file's path relative to the run folder.
PATH_FROM_RUN = "path_from_run"

_FACTORIES = {"sine": SineTask, "adding": AddingTask, "copy": CopyTask, "order": OrderTask,
              "text": _text_task, "series": _series_task}
TASKS: tuple[str, ...] = tuple(_FACTORIES)


def get_task(name: str, **kw: Any) -> Task:
    """Create the task ``name`` (one of :data:`TASKS`) with parameters ``kw``.

    ``get_task(**task.describe())`` re-creates ``task``. Text and series tasks need ``path``
    (for text, ``"builtin:stdlib-docs"`` selects the built-in text).
    """
    if name not in _FACTORIES:
        raise InputError(f"unknown task {name!r}; choose one of {', '.join(TASKS)}.")
    factory = _FACTORIES[name]
    try:
        return factory(**kw)
    except TypeError as exc:  # unknown or missing keyword
        import inspect
        params = [p for p in inspect.signature(factory).parameters]
        raise InputError(f"bad parameters for task {name!r}: {exc}. Accepted parameters: "
                         f"{', '.join(params)}.") from None


def task_from_description(desc: dict[str, Any], folder: str | os.PathLike | None = None) -> Task:
    """Re-create a task from the dict its ``describe()`` returned (e.g. read from a model file).

    ``folder``: the folder of the file the description came from (a run folder). Text and series
    descriptions written by ``bptt train`` also hold ``path_from_run``, the data file's path relative to
    the run folder; with ``folder`` that is where the data is looked for first, so a run can be evaluated
    from any working directory. Then ``path`` as stored (absolute, or relative to the current directory)."""
    if not isinstance(desc, dict) or "name" not in desc:
        raise InputError(f"a task description must be a dict with a 'name' key; received {desc!r}.")
    rest = {k: v for k, v in desc.items() if k not in ("name", PATH_FROM_RUN)}
    rel = desc.get(PATH_FROM_RUN)
    if folder is not None and isinstance(rel, str) and "path" in rest:
        here = os.path.join(os.fspath(folder), rel)
        if os.path.isfile(here):
            rest["path"] = here
        elif not os.path.isfile(str(rest["path"])):
            raise InputError(f"the {desc['name']} file this model was trained on is not found: neither "
                             f"{here!r} (relative to {os.fspath(folder)!r}) nor {rest['path']!r} exists; give "
                             "the file with --data (bptt evaluate RUN --data FILE)")
    return get_task(desc["name"], **rest)


def with_path_from_run(desc: dict[str, Any], folder: str | os.PathLike) -> dict[str, Any]:
    """``desc`` plus ``path_from_run``: its data file's path relative to ``folder`` (for files with a
    ``path`` that is not built in; unchanged otherwise)."""
    path = desc.get("path")
    if not isinstance(path, str) or path.startswith("builtin:") or not os.path.isfile(path):
        return desc
    try:
        rel = os.path.relpath(os.path.abspath(path), os.path.abspath(os.fspath(folder)))
    except ValueError:  # another drive (Windows): no relative path
        return desc
    return {**desc, PATH_FROM_RUN: rel}


def at_indices(task: Task) -> np.ndarray:
    """Shorthand for ``at_steps(task.at, task.length)``: the (S,) steps where ``task``'s loss sits."""
    return at_steps(task.at, task.length)
