"""One-step-ahead forecasting of a numeric series read from a CSV or .npy file.

``SeriesData.from_file(path, column=None, val_fraction=0.2, transform="diff")`` reads one column (CSV
through the stdlib ``csv`` module, or a 1-D / 2-D ``.npy`` array), keeps the first ``1 - val_fraction``
for training and the rest for held-out evaluation.

What the net sees (``transform``):
- ``"diff"`` (the default): the change from one value to the next, v[t] - v[t-1], normalised with the
  mean and std of the training part's changes; the net predicts the next change and the forecast is
  the last value plus it. The last-value forecast is the prediction "no change", so a net that has
  learnt nothing sits near that baseline, and a trend or a level the training part never reached (the
  airline series' last years) does not take the inputs out of the range the net was trained on.
- ``"level"``: the values themselves, normalised with the training mean and std; the net predicts the
  next value. Right for a stationary series; on a trending one the held-out values leave the
  training range (on the airline series the level model ends no better than the last-value forecast).
Windows: X (T,B,1) the normalised feature at t, D (T,B,1) the normalised feature at t+1. Metrics are in
original units, beside the naive last-value forecast on the same targets. :class:`SeriesTask` wraps it
in the common task interface. Built-in series: ``builtin_series("airline")`` (Box & Jenkins Series G,
see ``datasets/README.md``).
"""
from __future__ import annotations

import csv
import hashlib
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from bptt.errors import InputError

from ._common import check_float, check_int, check_outputs, check_rng, heldout_rng

_DATASETS = Path(__file__).resolve().parent / "datasets"
TRANSFORMS = ("diff", "level")
BUILTIN_SERIES: dict[str, str] = {"airline": "airline.csv"}


def builtin_series(name: str = "airline") -> Path:
    """Path of a series shipped with the package (one of :data:`BUILTIN_SERIES`)."""
    if name not in BUILTIN_SERIES:
        raise InputError(f"unknown built-in series {name!r}; choose one of {', '.join(BUILTIN_SERIES)}.")
    return _DATASETS / BUILTIN_SERIES[name]


def _number(cell: str) -> float | None:
    """float(cell) if it is a finite number, else None."""
    try:
        v = float(cell.strip())
    except ValueError:
        return None
    return v if math.isfinite(v) else None


_DECIMAL_COMMA = re.compile(r"\s*[-+]?[0-9]+,[0-9]+\s*")


def _numberish(cell: str) -> bool:
    """A number, an empty cell or a decimal-comma number ("1,5"): what a numeric column may hold by mistake."""
    return _number(cell) is not None or not cell.strip() or bool(_DECIMAL_COMMA.fullmatch(cell))


def _comma_hint(cell: str) -> str:
    return " (a decimal comma? write it with a point, e.g. 1.5)" if _DECIMAL_COMMA.fullmatch(cell) else ""


def _read_csv(path: Path, column: str | int | None) -> tuple[np.ndarray, str]:
    """Values (N,) of one CSV column and that column's name. A first row with any non-number is a header."""
    rows: list[tuple[int, list[str]]] = []          # (line number in the file, cells), blank lines skipped
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f)
            for row in reader:
                if any(c.strip() for c in row):
                    rows.append((reader.line_num, row))
    except UnicodeDecodeError as exc:
        raise InputError(f"CSV file {str(path)!r} is not valid UTF-8 (byte offset {exc.start}).") from None
    except csv.Error as exc:
        raise InputError(f"CSV file {str(path)!r} could not be parsed: {exc}.") from None
    if not rows:
        raise InputError(f"CSV file {str(path)!r} has no data rows.")
    first = rows[0][1]
    has_header = any(_number(c) is None for c in first)
    names = [c.strip() for c in first] if has_header else [str(i) for i in range(len(first))]
    body = rows[1:] if has_header else rows
    if not body:
        raise InputError(f"CSV file {str(path)!r} has a header but no data rows.")
    for line, row in body:
        if len(row) != len(names):
            raise InputError(f"CSV file {str(path)!r} row {line} has {len(row)} cells; the first row has "
                             f"{len(names)}. Every row needs the same number of columns.")
    if column is None:
        # a column "looks numeric" when most of its cells are numbers, empty or decimal-comma numbers: one bad
        # cell must not make the choice fall silently on another column
        looks = [j for j in range(len(names))
                 if 2 * sum(_numberish(row[j]) for _, row in body) >= len(body)]
        if len(names) == 1:
            j = 0
        elif len(looks) == 1:
            j = looks[0]
        else:
            for j in looks:
                for line, row in body:
                    if _number(row[j]) is None:
                        raise InputError(f"CSV file {str(path)!r} row {line}, column {names[j]!r}: cell {row[j]!r} is "
                                         f"not a finite number{_comma_hint(row[j])}, in a column of numbers; fix "
                                         "that cell, or pass column= (a name or 0-based index).")
            raise InputError(f"CSV file {str(path)!r} has columns {names}; pass column= (a name or 0-based index) "
                             f"to choose the one to forecast.")
    elif isinstance(column, str) and column in names:
        j = names.index(column)
    elif isinstance(column, (int, np.integer)) and not isinstance(column, bool) and -len(names) <= column < len(names):
        j = int(column) % len(names)
    elif isinstance(column, str) and column.lstrip("-").isdigit() and -len(names) <= int(column) < len(names):
        j = int(column) % len(names)
    else:
        raise InputError(f"unknown column {column!r} in CSV file {str(path)!r}; its columns are {names} "
                         f"(choose by name or by 0-based index).")
    values = np.empty(len(body))
    for i, (line, row) in enumerate(body):
        v = _number(row[j])
        if v is None:
            raise InputError(f"CSV file {str(path)!r} row {line}, column {names[j]!r}: cell {row[j]!r} is not a "
                             f"finite number{_comma_hint(row[j])}. Fix or remove that row.")
        values[i] = v
    return values, names[j]


def _read_npy(path: Path, column: str | int | None) -> tuple[np.ndarray, str]:
    """Values (N,) of a 1-D array or of one column of a 2-D array stored in a .npy file."""
    try:
        a = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise InputError(f".npy file {str(path)!r} could not be read ({exc}); save it with numpy.save "
                         f"from a numeric array.") from None
    if not isinstance(a, np.ndarray) or a.dtype.kind not in "iuf":
        raise InputError(f".npy file {str(path)!r} must hold a numeric (int or float) array; received dtype "
                         f"{getattr(a, 'dtype', type(a).__name__)}.")
    if isinstance(column, str) and column.lstrip("-").isdigit():
        column = int(column)                        # a stored description keeps the index as a string
    if column is not None and (isinstance(column, bool) or not isinstance(column, (int, np.integer))):
        raise InputError(f"column for a .npy file must be a 0-based integer index; received {column!r}.")
    if a.ndim == 1:
        if column not in (None, 0, -1):
            raise InputError(f".npy file {str(path)!r} is 1-D; column must be None or 0, received {column!r}.")
        v, name = a, "0"
    elif a.ndim == 2:
        if column is None and a.shape[1] != 1:
            raise InputError(f".npy file {str(path)!r} has shape {a.shape}; pass column= (0..{a.shape[1] - 1}).")
        j = 0 if column is None else int(column)
        if not -a.shape[1] <= j < a.shape[1]:
            raise InputError(f"unknown column {column!r} for .npy file {str(path)!r} of shape {a.shape}; "
                             f"columns are 0..{a.shape[1] - 1}.")
        v, name = a[:, j], str(j % a.shape[1])
    else:
        raise InputError(f".npy file {str(path)!r} must be 1-D or 2-D; received shape {a.shape}.")
    v = v.astype(np.float64)
    bad = np.flatnonzero(~np.isfinite(v))
    if bad.size:
        raise InputError(f".npy file {str(path)!r} has a non-finite value at row {bad[0]} (0-based).")
    return v, name


@dataclass(frozen=True, eq=False)
class SeriesData:
    """A numeric series (N,) split by position; values[:n_train] trains, values[n_train:] is held out.

    transform: "diff" (the net sees changes) or "level" (the values); see the module docstring.
    mean, std: of the training part's features (changes or values), used to normalise everything;
    column: the column's name; source: the file path; sha256: digest of the values (float64 bytes).
    """

    values: np.ndarray
    n_train: int
    mean: float
    std: float
    source: str
    column: str
    val_fraction: float
    sha256: str
    transform: str = "diff"

    @classmethod
    def from_file(cls, path: str | Path, column: str | int | None = None, val_fraction: float = 0.2,
                  transform: str = "diff") -> "SeriesData":
        """Read one column of a CSV (any extension but .npy) or .npy file and split it."""
        p = Path(path)
        if not p.is_file():
            raise InputError(f"series file {str(path)!r} does not exist or is not a file; pass a CSV or .npy file "
                             f"(builtin_series('airline') gives a shipped one).")
        values, name = _read_npy(p, column) if p.suffix.lower() == ".npy" else _read_csv(p, column)
        return cls.from_values(values, val_fraction, source=str(path), column=name, transform=transform)

    @classmethod
    def from_values(cls, values: Any, val_fraction: float = 0.2, source: str = "<array>",
                    column: str = "0", transform: str = "diff") -> "SeriesData":
        """Split a 1-D array of finite numbers: the last ``val_fraction`` (at least 1 value) is held out."""
        if transform not in TRANSFORMS:
            raise InputError(f"transform: got {transform!r}, expected one of {', '.join(TRANSFORMS)} "
                             "('diff': the net predicts the next change; 'level': the next value)")
        v = np.asarray(values, dtype=np.float64)
        if v.ndim != 1 or not np.all(np.isfinite(v)):
            raise InputError(f"series values must be a 1-D array of finite numbers; received shape {v.shape}.")
        val_fraction = check_float("val_fraction", val_fraction, lo=0.0, hi=1.0, lo_open=True, hi_open=True)
        n_val = max(1, int(round(len(v) * val_fraction)))
        n_train = len(v) - n_val
        need = 2 + (transform == "diff")
        if n_train < need:
            raise InputError(f"series {source!r} has {len(v)} values; with val_fraction={val_fraction} that leaves "
                             f"{n_train} for training (need at least {need}). Use a longer series.")
        with np.errstate(over="ignore", invalid="ignore"):
            big = float(np.max(np.abs(v)))
            part = _features(v[:n_train], transform)
            mean, std = float(part.mean()), float(part.std())
            spread = float(np.max(np.abs(_features(v, transform) - mean))) / std if 0 < std < math.inf else 0.0
        if not (math.isfinite(mean) and math.isfinite(std) and math.isfinite(spread)):
            raise InputError(f"series {source!r} has values too large to normalise (largest |value| {big:.3g}: "
                             "its mean or standard deviation overflows); rescale the values (e.g. divide them by a "
                             "power of ten).")
        if not v[:n_train].std() > 0:
            raise InputError(f"the training part of series {source!r} is constant ({v[0]}); it cannot be "
                             f"normalised or forecast meaningfully.")
        # a straight line has constant changes: nothing to scale, the net only has to predict the mean change
        mean, std = float(part.mean()), float(part.std()) or 1.0
        v = v.copy()
        v.flags.writeable = False
        return cls(v, n_train, mean, std, source, column, val_fraction, hashlib.sha256(v.tobytes()).hexdigest(),
                   transform)

    @property
    def train(self) -> np.ndarray:
        return self.values[: self.n_train]

    @property
    def val(self) -> np.ndarray:
        return self.values[self.n_train:]

    @property
    def offset(self) -> int:
        """Feature j describes value j + offset (0 for "level"; 1 for "diff": feature j = v[j+1] - v[j])."""
        return 1 if self.transform == "diff" else 0

    def features(self) -> np.ndarray:
        """(N - offset,) normalised features of the whole series: what the net reads and predicts."""
        return self.normalise(_features(self.values, self.transform))

    def train_features(self) -> np.ndarray:
        """(n_train - offset,) the normalised features of the training part."""
        return self.features()[: self.n_train - self.offset]

    def normalise(self, x: Any) -> np.ndarray:
        """(x - mean) / std, any shape (x: features, i.e. changes for "diff", values for "level")."""
        return (np.asarray(x, dtype=np.float64) - self.mean) / self.std

    def denormalise(self, z: Any) -> np.ndarray:
        """z * std + mean, any shape: back to original units."""
        return np.asarray(z, dtype=np.float64) * self.std + self.mean

    @staticmethod
    def _cut(z: np.ndarray, starts: np.ndarray, T: int) -> tuple[np.ndarray, np.ndarray]:
        idx = starts[None, :] + np.arange(T)[:, None]                    # (T,B)
        return z[idx][..., None], z[idx + 1][..., None]                   # (T,B,1), (T,B,1)

    def batch(self, rng: np.random.Generator, B: int, T: int) -> tuple[np.ndarray, np.ndarray]:
        """B random training windows: X (T,B,1) normalised features, D (T,B,1) the next ones."""
        rng, B, T = check_rng(rng), check_int("B", B, lo=1), check_int("T", T, lo=1)
        z = self.train_features()
        if len(z) < T + 1:
            raise InputError(f"the training part of {self.source!r} has {self.n_train} values, fewer than "
                             f"T+{1 + self.offset} = {T + 1 + self.offset}; use a shorter T.")
        return self._cut(z, rng.integers(0, len(z) - T, size=B), T)

    def n_heldout(self, T: int) -> int:
        """Number of held-out windows of length T (targets all in the held-out part)."""
        return len(self.val) + 1 - check_int("T", T, lo=1)

    def heldout(self, T: int, n: int | None = None, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """Held-out windows whose targets all lie in the held-out part (inputs may start on the last
        training value). All n_heldout(T) sliding windows in order when n is None or n >= that count,
        else n of them chosen without replacement by the held-out stream of ``seed`` (in order)."""
        count = self.n_heldout(T)
        if count < 1:
            raise InputError(f"the held-out part of {self.source!r} has {len(self.val)} values; windows of "
                             f"T={T} need at least T. Use a shorter T or a larger val_fraction.")
        starts = np.arange(count)
        if n is not None and check_int("n", n, lo=1) < count:
            starts = np.sort(heldout_rng(seed).choice(count, size=n, replace=False))
        return self._cut(self.features()[self.n_train - self.offset - 1:], starts, T)

    def errors(self, Y: Any, D: Any, burn_in: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """Forecast errors in original units over steps t >= burn_in: (the net's, the last-value
        forecast's), each (T - burn_in, B). The net forecasts value t+1 as (last value + predicted change)
        or as the predicted value; either way its error is (Y - D) * std. The last-value forecast's error
        is minus the actual change."""
        D = np.asarray(D, dtype=np.float64)
        if D.ndim != 3 or D.shape[2] != 1 or D.shape[0] < 2:
            raise InputError(f"D must have shape (T,B,1) with T >= 2; received {D.shape}.")
        k = check_int("burn_in", burn_in, lo=1, hi=D.shape[0] - 1)
        Y = check_outputs(Y, D, "squared", 1)
        err = ((np.asarray(Y, np.float64) - D) * self.std)[k:, :, 0]
        d = self.denormalise(D)[..., 0]
        base = -d[k:] if self.transform == "diff" else d[k - 1:-1] - d[k:]
        return err, base

    def metric(self, Y: Any, D: Any, burn_in: int = 1) -> dict[str, float]:
        """mse / mae of the net's forecasts in original units over steps t >= burn_in, and of the
        last-value forecast on the same targets: baseline_mse / baseline_mae."""
        err, base = self.errors(Y, D, burn_in)
        return {"mse": float((err ** 2).mean()), "mae": float(np.abs(err).mean()),
                "baseline_mse": float((base ** 2).mean()), "baseline_mae": float(np.abs(base).mean())}

    def describe(self) -> dict[str, Any]:
        return {"source": self.source, "column": self.column, "val_fraction": self.val_fraction,
                "transform": self.transform,
                "mean": self.mean, "std": self.std, "n_train": self.n_train, "n_val": int(len(self.val)),
                "sha256": self.sha256}


@dataclass(frozen=True, eq=False)
class SeriesTask:
    """One-step forecasting on windows of ``length`` values (the common task interface).

    Loss squared at every step (at = None) on normalised values. metric: mse/mae in original units over
    steps >= burn_in, the last-value baselines, and ``solved`` = fraction of windows whose mse beats the
    last-value forecast's mse on the same window.
    """

    data: SeriesData
    length: int = 24
    burn_in: int = 1
    name: ClassVar[str] = "series"
    loss: ClassVar[str] = "squared"
    n_in: ClassVar[int] = 1
    n_out: ClassVar[int] = 1
    at: ClassVar[None] = None

    def __post_init__(self) -> None:
        check_int("length", self.length, lo=2)
        check_int("burn_in", self.burn_in, lo=1, hi=self.length - 1)
        need = self.length + 1 + self.data.offset
        if self.data.n_train < need or self.data.n_heldout(self.length) < 1:
            raise InputError(f"length={self.length} is too long for {self.data.source!r}: the training part has "
                             f"{self.data.n_train} values (needs length+{need - self.length}) and the held-out part "
                             f"{len(self.data.val)} (needs length). Use a shorter length.")

    @classmethod
    def from_source(cls, path: str, column: str | int | None = None, length: int = 24, val_fraction: float = 0.2,
                    burn_in: int = 1, mean: float | None = None, std: float | None = None,
                    sha256: str | None = None, transform: str = "diff") -> "SeriesTask":
        """Load the series; stored ``mean`` / ``std`` / ``sha256`` (from a description) must match the file."""
        data = SeriesData.from_file(path, column, val_fraction, transform)
        for key, stored in (("mean", mean), ("std", std)):
            if stored is not None and not math.isclose(stored, getattr(data, key), rel_tol=1e-12, abs_tol=1e-300):
                raise InputError(f"the training {key} of {path!r} is {getattr(data, key)!r}, the stored one "
                                 f"{stored!r}: the series changed since the model was trained.")
        if sha256 is not None and sha256 != data.sha256:
            raise InputError(f"the series in {path!r} differs from the one the model was trained on (SHA-256).")
        return cls(data, length, burn_in)

    def batch(self, rng: np.random.Generator, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
        return self.data.batch(rng, batch_size, self.length)

    def heldout(self, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """All held-out windows if n >= their number, else n chosen by the held-out stream of ``seed``."""
        return self.data.heldout(self.length, n, seed)

    def metric(self, Y: Any, D: Any) -> dict[str, float]:
        m = self.data.metric(Y, D, self.burn_in)
        err, base = self.data.errors(Y, D, self.burn_in)                   # (T - burn_in, B) each
        m["solved"] = float(((err ** 2).mean(axis=0) < (base ** 2).mean(axis=0)).mean())
        return m

    def describe(self) -> dict[str, Any]:
        d = self.data
        return {"name": self.name, "path": d.source, "column": d.column, "length": self.length,
                "val_fraction": d.val_fraction, "burn_in": self.burn_in, "mean": d.mean, "std": d.std,
                "sha256": d.sha256, "transform": d.transform}


def _features(v: np.ndarray, transform: str) -> np.ndarray:
    """What the net reads of values v (N,): their changes v[1:] - v[:-1] ("diff", N-1) or v itself ("level")."""
    return np.diff(v) if transform == "diff" else v


def forecast(net, values: Any, transform: str, mean: float, std: float, horizon: int,
             warmup: int | None = None) -> np.ndarray:
    """Forecast ``horizon`` values past the end of ``values`` (N,): run the net over the normalised
    features of the last ``warmup`` values (all when None; a model reads windows as long as it was
    trained on), then feed each prediction back as the next input. Returns (horizon,) in original units."""
    v = np.asarray(values, np.float64)
    z = (_features(v, transform) - mean) / std
    if warmup is not None:
        z = z[-warmup:]
    if len(z) < 1:
        raise InputError(f"forecast: the series has {len(v)} values; a {transform} model needs at least "
                         f"{1 + (transform == 'diff')}")
    fw = net.forward(z[:, None, None].astype(net.dtype))
    y, state = fw.Y[-1], fw.state                                       # (1, 1) the next normalised feature
    last, out = float(v[-1]), []
    for _ in range(horizon):
        step = float(y[0, 0]) * std + mean
        last = last + step if transform == "diff" else step
        out.append(last)
        y, state = net.step(y.reshape(1, 1), state)
    return np.array(out)
