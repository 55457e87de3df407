"""Every bad input to the network API raises our InputError (a ValueError) naming the argument."""

from __future__ import annotations

import numpy as np
import pytest

import bptt
from bptt.errors import InputError

rng = np.random.default_rng(0)
X = rng.standard_normal((6, 2, 3))
D = rng.standard_normal((6, 2, 2))
C = rng.integers(0, 2, (6, 2))


def net(**kw):
    return bptt.Elman(3, 4, 2, **kw)


def sm():
    return bptt.Elman(3, 4, 2, g2="softmax")


Xnan = X.copy()
Xnan[2, 1, 0] = np.nan
Dinf = D.copy()
Dinf[0, 0, 1] = np.inf

CASES = [
    # (what, callable, words the message must contain)
    ("X rank 2", lambda: net().gradients(X[0], D), ["X", "rank 3"]),
    ("X rank 4", lambda: net().gradients(X[None], D), ["X", "rank"]),
    ("X wrong I", lambda: net().gradients(X[:, :, :2], D), ["X", "n_in", "3"]),
    ("X integer", lambda: net().gradients(X.astype(int), D), ["X", "int64", "astype"]),
    ("X NaN", lambda: net().gradients(Xnan, D), ["X", "NaN", "(2, 1, 0)"]),
    ("X ragged", lambda: net().gradients([[[1.0]], [[1.0, 2.0]]], D), ["X"]),
    ("X empty T", lambda: net().gradients(X[:0], D[:0]), ["X", "at least one step"]),
    ("D mismatched T", lambda: net().gradients(X, D[:5]), ["D", "T of X", "6"]),
    ("D mismatched B", lambda: net().gradients(X, D[:, :1]), ["D", "B of X"]),
    ("D wrong O", lambda: net().gradients(X, D[:, :, :1]), ["D", "n_out"]),
    ("D inf", lambda: net().gradients(X, Dinf), ["D", "NaN or inf"]),
    ("D int for squared", lambda: net().gradients(X, C[:, :, None]), ["D", "floating"]),
    ("class out of range", lambda: sm().gradients(X, C + 1, loss="cross_entropy"), ["D", "class index 2", "n_out = 2"]),
    ("class negative", lambda: sm().gradients(X, C - 1, loss="cross_entropy"), ["D", "-1"]),
    ("class float", lambda: sm().gradients(X, C.astype(float), loss="cross_entropy"), ["D", "integer class"]),
    ("class shape", lambda: sm().gradients(X, C[:3], loss="cross_entropy"), ["D", "(6, 2)"]),
    ("unknown loss", lambda: net().gradients(X, D, loss="hinge"), ["loss", "hinge", "squared"]),
    ("CE without softmax", lambda: net().gradients(X, C, loss="cross_entropy"), ["cross_entropy", "g2='softmax'"]),
    ("unknown g1", lambda: bptt.Elman(1, 2, 1, g1="swish"), ["g1", "swish", "tanh"]),
    ("softmax as g1", lambda: bptt.Elman(1, 2, 1, g1="softmax"), ["g1", "softmax", "g2"]),
    ("unknown g2", lambda: bptt.Elman(1, 2, 1, g2="gelu"), ["g2", "gelu"]),
    ("unknown init", lambda: bptt.Elman(1, 2, 1, init="xavier"), ["init", "xavier", "orthogonal"]),
    ("zero hidden", lambda: bptt.Elman(1, 0, 1), ["n_hidden", ">= 1"]),
    ("float hidden", lambda: bptt.Elman(1, 2.5, 1), ["n_hidden", "integer"]),
    ("bad dtype", lambda: bptt.Elman(1, 2, 1, dtype=np.int32), ["dtype", "float32"]),
    ("negative seed", lambda: bptt.Elman(1, 2, 1, seed=-1), ["seed"]),
    ("at too large", lambda: net().gradients(X, D, at=6), ["at", "6", "outside"]),
    ("at too negative", lambda: net().gradients(X, D, at=-7), ["at", "-7"]),
    ("at float", lambda: net().gradients(X, D, at=1.5), ["at", "1.5"]),
    ("at bool", lambda: net().gradients(X, D, at=True), ["at"]),
    ("at empty", lambda: net().gradients(X, D, at=[]), ["at", "empty"]),
    ("at duplicate", lambda: net().gradients(X, D, at=[1, 1]), ["at", "twice"]),
    ("at list outside", lambda: net().gradients(X, D, at=[0, 9]), ["at", "9"]),
    ("truncate 0", lambda: net().gradients(X, D, truncate=0), ["truncate", ">= 1"]),
    ("truncate float", lambda: net().gradients(X, D, truncate=2.0), ["truncate", "integer"]),
    ("s0 wrong H", lambda: net().gradients(X, D, s0=np.zeros((2, 5))), ["s0", "H", "4"]),
    ("s0 wrong B", lambda: net().gradients(X, D, s0=np.zeros((3, 4))), ["s0", "B"]),
    ("s0 NaN", lambda: net().gradients(X, D, s0=np.full((2, 4), np.nan)), ["s0", "NaN"]),
    ("lengths too long", lambda: net().gradients(X, D, lengths=[7, 2]), ["lengths", "T = 6"]),
    ("lengths zero", lambda: net().gradients(X, D, lengths=[0, 2]), ["lengths"]),
    ("lengths shape", lambda: net().gradients(X, D, lengths=[3]), ["lengths", "(2,)"]),
    ("at beyond a length", lambda: net().gradients(X, D, at=5, lengths=[6, 3]), ["at", "sequence 1", "length is 3"]),
    ("resets not bool", lambda: net().gradients(X, D, resets=np.zeros((6, 2))), ["resets", "booleans"]),
    ("bidirectional truncate", lambda: net(bidirectional=True).gradients(X, D, truncate=2), ["truncate", "causal"]),
    ("bidirectional resets", lambda: net(bidirectional=True).gradients(X, D, resets=np.zeros((6, 2), bool)), ["resets", "causal"]),
    ("set_params missing", lambda: net().set_params({"Wx": np.zeros((4, 3))}), ["params", "expected"]),
    ("set_params NaN", lambda: net().set_params({**net().params, "Ws": np.full((4, 4), np.nan)}), ["Ws", "NaN"]),
]


@pytest.mark.parametrize("what,call,words", CASES, ids=[c[0] for c in CASES])
def test_bad_input(what, call, words):
    with pytest.raises(InputError) as e:
        call()
    assert isinstance(e.value, ValueError)
    for w in words:
        assert w in str(e.value), (w, str(e.value))


def test_float32_data_into_float64_net_is_exact():
    """float32 X is converted to the net's float64 exactly (an exact widening, not a wrong result)."""
    n = net()
    E64, g64 = n.gradients(X.astype(np.float32).astype(np.float64), D)
    E32, g32 = n.gradients(X.astype(np.float32), D)
    assert E64 == E32 and all(np.array_equal(g64[k], g32[k]) for k in g64)


def test_softmax_with_squared_is_allowed():
    E, g = sm().gradients(X, D, loss="squared")
    assert np.isfinite(E) and g["Wy"].shape == (2, 4)
