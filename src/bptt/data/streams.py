"""Long streams for truncated BPTT(k1, k2): every source maps a window of stream positions to arrays.

``window(p0, n) -> (X (n,B,I), D (n,B,O) or (n,B), reset (n,B) bool, loss (n,) bool)``: a pure function
of the positions, so a training run can resume at any position without replaying the stream. ``reset``
is True where a stream starts afresh (its state goes back to zeros before that step); ``loss`` marks
the positions that carry a loss term.
"""

from __future__ import annotations

import numpy as np

from ._common import at_steps, one_hot


class SequenceStream:
    """A synthetic task's sequences laid end to end: batch j of B sequences covers positions
    [j*T, (j+1)*T); each sequence starts with a reset; batch j is drawn from default_rng([seed, 2, j]).
    ``columns=(lo, hi)``: only streams lo..hi-1 of the B (one MPI rank's share; the same values)."""

    def __init__(self, task, batch: int, seed: int, columns=None):
        self.task, self.B, self.seed, self.T = task, batch, seed, task.length
        self.lo, self.hi = columns or (0, batch)
        self.loss_at = np.zeros(self.T, bool)
        self.loss_at[at_steps(task.at, self.T)] = True
        self._cache: dict[int, tuple] = {}

    def _batch(self, j):
        if j not in self._cache:
            if len(self._cache) > 4:
                self._cache.clear()
            X, D = self.task.batch(np.random.default_rng([self.seed, 2, j]), self.B)
            if (self.lo, self.hi) != (0, self.B):
                X, D = X[:, self.lo:self.hi], D[:, self.lo:self.hi]
            self._cache[j] = X, D
        return self._cache[j]

    def window(self, p0: int, n: int):
        ps = np.arange(p0, p0 + n)
        js, offs = ps // self.T, ps % self.T
        Xs, Ds = [], []
        for j in np.unique(js):
            X, D = self._batch(int(j))
            sel = offs[js == j]
            Xs.append(X[sel])
            Ds.append(D[sel])
        reset = np.broadcast_to((offs == 0)[:, None], (n, self.hi - self.lo)).copy()
        return np.concatenate(Xs), np.concatenate(Ds), reset, self.loss_at[offs]


class _Split:
    """B parallel streams over a 1-D array: stream b reads [b*L, (b+1)*L), L = (N-1)//B, and wraps.
    ``columns=(lo, hi)``: only streams lo..hi-1 (one MPI rank's share)."""

    def __init__(self, n: int, batch: int, columns=None):
        self.B = batch
        self.lo, self.hi = columns or (0, batch)
        self.L = (n - 1) // batch
        if self.L < 1:
            from ..errors import InputError
            raise InputError(f"batch: {batch} streams need at least {batch + 1} training values; got {n}. "
                             "Use a smaller --batch.")

    def positions(self, p0, n):
        off = np.arange(p0, p0 + n) % self.L  # (n,)
        pos = np.arange(self.lo, self.hi)[None, :] * self.L + off[:, None]  # (n, hi-lo)
        return pos, np.broadcast_to((off == 0)[:, None], pos.shape).copy()


class TextStream(_Split):
    """Character streams over the training text: X one-hot (n,B,V), D next characters (n,B)."""

    def __init__(self, data, batch: int, columns=None):
        super().__init__(len(data.train), batch, columns)
        self.codes, self.V = data.train, data.n_vocab

    def window(self, p0, n):
        pos, reset = self.positions(p0, n)
        return one_hot(self.codes[pos], self.V), self.codes[pos + 1].astype(np.int64), reset, np.ones(n, bool)


class SeriesStream(_Split):
    """Normalised series streams: X (n,B,1) the feature (change or value), D (n,B,1) the next one."""

    def __init__(self, data, batch: int, columns=None):
        self.z = data.train_features()
        super().__init__(len(self.z), batch, columns)

    def window(self, p0, n):
        pos, reset = self.positions(p0, n)
        return self.z[pos][..., None], self.z[pos + 1][..., None], reset, np.ones(n, bool)


def stream_for(task, batch: int, seed: int, columns=None):
    """The stream source of a task: text and series read their training data, synthetic tasks their
    generated sequences. ``columns=(lo, hi)``: streams lo..hi-1 of the ``batch`` only."""
    if task.name == "text":
        return TextStream(task.data, batch, columns)
    if task.name == "series":
        return SeriesStream(task.data, batch, columns)
    return SequenceStream(task, batch, seed, columns)
