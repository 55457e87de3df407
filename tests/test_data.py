"""Tests of bptt.data: synthetic tasks, text data, series data, registry and metrics."""
import json
import math

import numpy as np
import pytest

from bptt.data import (BUILTIN_TEXT, TASKS, AddingTask, CopyTask, OrderTask, SeriesData, SineTask, Task,
                       TextData, at_steps, bits_per_char, builtin_series, builtin_text, get_task, heldout_rng,
                       loss_mask, task_from_description)
from bptt.errors import InputError

SYNTHETIC = ["sine", "adding", "copy", "order"]


def small(name):
    """Synthetic tasks with short sequences, so the tests stay fast."""
    return {"sine": SineTask(length=30), "adding": AddingTask(length=20), "copy": CopyTask(delay=5),
            "order": OrderTask(length=40)}[name]


def perfect(task, D):
    """Outputs after g2 that are exactly right: D itself, or one-hot probabilities of D."""
    return np.eye(task.n_out)[D] if task.loss == "cross_entropy" else D.copy()


# ------------------------------------------------------------------------------------ common interface

@pytest.mark.parametrize("name", SYNTHETIC)
def test_shapes_and_dtypes(name):
    task = small(name)
    assert isinstance(task, Task)
    X, D = task.batch(np.random.default_rng(0), 5)
    T = task.length
    assert X.shape == (T, 5, task.n_in) and X.dtype == np.float64
    if task.loss == "cross_entropy":
        assert D.shape == (T, 5) and D.dtype == np.int64
        assert D.min() >= 0 and D.max() < task.n_out
    else:
        assert task.loss == "squared"
        assert D.shape == (T, 5, task.n_out) and D.dtype == np.float64
    assert np.all(np.isfinite(X))
    steps = at_steps(task.at, T)
    assert steps.min() >= 0 and steps.max() < T


@pytest.mark.parametrize("name", SYNTHETIC)
def test_heldout_deterministic_and_disjoint_from_training(name):
    task = small(name)
    X1, D1 = task.heldout(64, seed=3)
    X2, D2 = task.heldout(64, seed=3)
    np.testing.assert_array_equal(X1, X2)
    np.testing.assert_array_equal(D1, D2)
    X3, _ = task.heldout(64, seed=4)
    assert not np.array_equal(X1, X3)
    # the training stream of the same seed gives other sequences: no held-out sequence appears in it
    Xt, _ = task.batch(np.random.default_rng(3), 64)                  # same seed, same size
    held = {X1[:, b].tobytes() for b in range(64)}
    assert not held & {Xt[:, b].tobytes() for b in range(64)}


@pytest.mark.parametrize("name", SYNTHETIC)
def test_perfect_predictions_solve_the_task(name):
    task = small(name)
    X, D = task.heldout(200, seed=0)
    m = task.metric(perfect(task, D), D)
    assert m["solved"] == 1.0
    assert json.dumps(m)  # plain floats


@pytest.mark.parametrize("name", SYNTHETIC)
def test_describe_round_trip_through_json(name):
    task = small(name)
    again = task_from_description(json.loads(json.dumps(task.describe())))
    assert again == task
    X, D = task.heldout(3, seed=1)
    X2, D2 = again.heldout(3, seed=1)
    np.testing.assert_array_equal(X, X2)


def test_registry_errors():
    assert set(SYNTHETIC) | {"text", "series"} == set(TASKS)
    with pytest.raises(InputError, match="adding, copy"):
        get_task("nope")
    with pytest.raises(InputError, match="length"):
        get_task("adding", length=1)
    with pytest.raises(InputError, match="Accepted parameters"):
        get_task("sine", lenght=10)
    with pytest.raises(InputError, match="integer"):
        get_task("copy", delay=2.5)
    with pytest.raises(InputError, match="windows"):
        get_task("order", length=40, first=(30, 35))


def test_metric_rejects_bad_outputs():
    task = small("copy")
    X, D = task.heldout(4, seed=0)
    with pytest.raises(InputError, match="shape"):
        task.metric(np.zeros((task.length, 4, 3)), D)
    logits = np.random.default_rng(0).normal(size=(task.length, 4, task.n_out))
    with pytest.raises(InputError, match="softmax"):
        task.metric(logits, D)
    with pytest.raises(InputError, match="NaN"):
        small("adding").metric(np.full((20, 2, 1), np.nan), np.zeros((20, 2, 1)))


def test_at_steps_and_mask():
    np.testing.assert_array_equal(at_steps(None, 4), [0, 1, 2, 3])
    np.testing.assert_array_equal(at_steps(-1, 4), [3])
    np.testing.assert_array_equal(at_steps([3, 1], 4), [1, 3])
    np.testing.assert_array_equal(loss_mask(-1, 3), [False, False, True])
    with pytest.raises(InputError):
        at_steps(4, 4)


def test_heldout_stream_differs_from_training_stream():
    assert heldout_rng(5).random() != np.random.default_rng(5).random()
    with pytest.raises(InputError):
        heldout_rng(-1)


# ------------------------------------------------------------------------------------- individual tasks

def test_sine_targets_are_next_values_and_criterion():
    task = SineTask(length=30)
    X, D = task.batch(np.random.default_rng(1), 8)
    np.testing.assert_allclose(D[:-1], X[1:], atol=1e-15)          # noise-free: D[t] = x[t+1]
    noisy = SineTask(length=30, noise_std=0.3)
    Xn, Dn = noisy.batch(np.random.default_rng(1), 8)
    assert np.std(Xn[1:] - Dn[:-1]) == pytest.approx(0.3, rel=0.2)  # noise on inputs only
    Xh, Dh = task.heldout(500, seed=0)
    zero = task.metric(np.zeros_like(Dh), Dh)
    assert zero["solved"] == 0.0 and zero["mse"] == pytest.approx(0.5, abs=0.05)
    last = np.concatenate([Xh[:1], Dh[:-1]])                          # predict the current value
    assert task.metric(last, Dh)["solved"] == 0.0                     # freq >= 0.25: mse >= 0.031 > 0.01


def test_adding_targets_markers_and_baseline():
    task = AddingTask(length=30)
    X, D = task.batch(np.random.default_rng(2), 1000)
    marks = X[:, :, 1]
    assert set(np.unique(marks)) == {0.0, 1.0}
    assert np.all(marks.sum(axis=0) == 2)
    assert np.all(marks[:15].sum(axis=0) == 1) and np.all(marks[15:].sum(axis=0) == 1)
    np.testing.assert_allclose(D[-1, :, 0], (X[:, :, 0] * marks).sum(axis=0), rtol=0, atol=1e-15)
    assert np.all(D[:-1] == 0.0)
    assert X[:, :, 0].min() >= 0.0 and X[:, :, 0].max() <= 1.0
    Xh, Dh = task.heldout(20000, seed=0)
    m = task.metric(np.ones_like(Dh), Dh)
    assert m["mse"] == pytest.approx(1 / 6, abs=0.006) and m["mse"] == m["baseline_mse"]
    assert m["solved"] == pytest.approx(1 - 0.96 ** 2, abs=0.006)     # 7.8 %: P(|sum - 1| < 0.04)
    off = Dh.copy()
    off[-1] += 0.05
    assert task.metric(off, Dh)["solved"] == 0.0


def test_copy_targets_equal_inputs():
    task = CopyTask(delay=7, n_recall=4, n_symbols=5)
    assert task.length == 15 and task.n_in == 7 and task.n_out == 6 and task.at == [11, 12, 13, 14]
    X, D = task.batch(np.random.default_rng(3), 50)
    codes = X.argmax(axis=-1)
    np.testing.assert_array_equal(X.sum(axis=-1), 1.0)
    np.testing.assert_array_equal(D[-4:], codes[:4])                  # recall = the first symbols
    assert codes[:4].min() >= 1 and codes[:4].max() <= 5
    np.testing.assert_array_equal(codes[4:10], 0)                     # delay-1 blanks
    np.testing.assert_array_equal(codes[10], 6)                       # delimiter
    np.testing.assert_array_equal(codes[11:], 0)
    np.testing.assert_array_equal(D[:11], 0)
    # memoryless baseline: blank before, uniform over symbols at recall steps
    Xh, Dh = task.heldout(300, seed=0)
    P = np.zeros((15, 300, 6))
    P[:, :, 0] = 1.0
    P[11:] = np.r_[0.0, np.full(5, 0.2)]
    m = task.metric(P, Dh)
    assert m["ce"] == pytest.approx(math.log(5)) and m["baseline_ce"] == pytest.approx(math.log(5))
    assert m["accuracy"] == pytest.approx(0.2, abs=0.03)
    # argmax of a tie picks symbol 1, so only sequences recalling 1,1,1,1 count as solved
    assert m["solved"] == np.mean(np.all(Dh[11:] == 1, axis=0))
    big = CopyTask()                                                  # 10 recalls of 8 symbols
    _, Db = big.heldout(300, seed=0)
    Pb = np.zeros((big.length, 300, 9))
    Pb[..., 1:] = 1 / 8
    assert big.metric(Pb, Db)["solved"] == 0.0
    assert CopyTask().baseline_ce * 10 / CopyTask(delay=100).length == pytest.approx(10 * math.log(8) / 120)


def test_order_labels():
    task = OrderTask(length=100)
    assert task.first == (10, 20) and task.second == (50, 60)
    X, D = task.batch(np.random.default_rng(4), 400)
    codes = X.argmax(axis=-1)                                         # (T,B)
    assert np.all(codes[0] == 0) and np.all(codes[-1] == 1)
    for b in range(400):
        pos = np.flatnonzero(codes[:, b] >= 6)
        assert len(pos) == 2 and 10 <= pos[0] <= 20 and 50 <= pos[1] <= 60
        y1, y2 = codes[pos, b] - 6
        assert D[-1, b] == 2 * y1 + y2
    assert set(np.unique(D[-1])) == {0, 1, 2, 3}
    Xh, Dh = task.heldout(4000, seed=0)
    const = np.zeros((100, 4000, 4))
    const[..., 0] = 1.0
    assert task.metric(const, Dh)["solved"] == pytest.approx(0.25, abs=0.03)


# ------------------------------------------------------------------------------------------------ text

def test_text_encode_decode_and_errors(tmp_path):
    data = TextData.from_text("hello world, hello bptt!\n" * 4, val_fraction=0.25)
    assert data.vocab == "".join(sorted(set(data.vocab)))
    s = "hello bptt"
    codes = data.encode(s)
    assert codes.dtype == np.int64 and data.decode(codes) == s
    with pytest.raises(InputError, match="'Z'"):
        data.encode("heZlo")
    with pytest.raises(InputError):
        data.decode([0, data.n_vocab])
    assert len(data.train) == 75 and len(data.val) == 25
    assert data.decode(np.concatenate([data.train, data.val])) == "hello world, hello bptt!\n" * 4
    json.dumps(data.describe())

    missing = tmp_path / "none.txt"
    with pytest.raises(InputError, match="does not exist"):
        TextData.from_file(missing)
    (tmp_path / "empty.txt").write_bytes(b"")
    with pytest.raises(InputError, match="empty"):
        TextData.from_file(tmp_path / "empty.txt")
    (tmp_path / "bin.dat").write_bytes(b"abc\x00\x01\x02def")
    with pytest.raises(InputError, match="NUL"):
        TextData.from_file(tmp_path / "bin.dat")
    (tmp_path / "latin1.txt").write_bytes("café crème".encode("latin-1"))
    with pytest.raises(InputError, match="UTF-8"):
        TextData.from_file(tmp_path / "latin1.txt")
    (tmp_path / "aaa.txt").write_text("a" * 100)
    with pytest.raises(InputError, match="single character"):
        TextData.from_file(tmp_path / "aaa.txt")
    (tmp_path / "short.txt").write_text("ab")
    with pytest.raises(InputError, match="too short"):
        TextData.from_file(tmp_path / "short.txt")
    with pytest.raises(InputError, match="T\\+1"):
        data.batch(np.random.default_rng(0), 2, 80)


def test_text_batch_windows(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text("the quick brown fox jumps over the lazy dog. " * 20, encoding="utf-8")
    data = TextData.from_file(path)
    X, D = data.batch(np.random.default_rng(0), 6, 12)
    assert X.shape == (12, 6, data.n_vocab) and D.shape == (12, 6) and D.dtype == np.int64
    np.testing.assert_array_equal(X.argmax(-1)[1:], D[:-1])           # D is the next character
    Xh, Dh = data.heldout(4, 10, seed=1)
    Xh2, _ = data.heldout(4, 10, seed=1)
    np.testing.assert_array_equal(Xh, Xh2)
    val_text = data.decode(data.val)
    for b in range(4):                                                 # held-out windows come from the last 10 %
        assert data.decode(Xh[:, b].argmax(-1)) in val_text


def test_text_stream_contiguous_with_resets():
    text = "".join(chr(97 + (i * 7) % 26) for i in range(103))
    data = TextData.from_text(text, val_fraction=0.02)                # 101 training characters
    B, T = 4, 7
    L = (len(data.train) - 1) // B                                     # 25 steps per stream
    chunks = list(data.stream(B, T, epochs=2))
    assert len(chunks) == math.ceil(2 * L / T)
    X = np.concatenate([c.X.argmax(-1) for c in chunks])               # (steps,B)
    D = np.concatenate([c.D for c in chunks])
    R = np.concatenate([c.reset for c in chunks])
    # the first pass of the B streams, laid end to end, is the text, shifted by one for the targets
    np.testing.assert_array_equal(X[:L].T.ravel(), data.train[:B * L])
    np.testing.assert_array_equal(D[:L].T.ravel(), data.train[1:B * L + 1])
    np.testing.assert_array_equal(X[1:L], D[:L - 1])                  # contiguous, across chunk borders too
    assert np.array_equal(np.flatnonzero(R[:, 0]), np.arange(0, len(R), L)) and np.all(R == R[:, :1])
    np.testing.assert_array_equal(X[L:2 * L], X[:L])                   # the second pass repeats the first
    assert next(iter(data.stream(2, 3, epochs=None))).X.shape == (3, 2, data.n_vocab)


def test_text_baselines_and_task(tmp_path):
    data = TextData.from_text("abababababababababac" * 3 + "aaaaaaaaac", val_fraction=0.15)
    counts = np.bincount(data.train, minlength=data.n_vocab) + 1.0
    p = counts / counts.sum()
    assert data.unigram_entropy_bits() == pytest.approx(-np.mean(np.log2(p[data.val])))
    assert bits_per_char(math.log(2)) == pytest.approx(1.0)

    path = tmp_path / "t.txt"
    path.write_text("to be or not to be, that is the question. " * 30, encoding="utf-8")
    task = get_task("text", path=str(path), length=16)
    assert isinstance(task, Task) and task.n_in == task.n_out == len(set(path.read_text()))
    X, D = task.heldout(8, seed=0)
    m = task.metric(np.eye(task.n_out)[D], D)
    assert m["solved"] == 1.0 and m["bpc"] == pytest.approx(0.0, abs=1e-12) and m["accuracy"] == 1.0
    uniform = np.full(X.shape, 1.0 / task.n_out)
    assert task.metric(uniform, D)["bpc"] == pytest.approx(math.log2(task.n_out))
    desc = json.loads(json.dumps(task.describe()))
    assert task_from_description(desc).describe() == task.describe()
    path.write_text("to be or not to be, that is the question? " * 30, encoding="utf-8")
    with pytest.raises(InputError, match="changed|differs"):
        task_from_description(desc)


def test_builtin_text():
    text = builtin_text()
    assert len(text) > 300_000 and "Module argparse" in text
    assert builtin_text() == text
    data = TextData.from_file(BUILTIN_TEXT)
    assert data.source == BUILTIN_TEXT and data.n_vocab > 60
    assert 3.0 < data.unigram_entropy_bits() < 6.0


# ---------------------------------------------------------------------------------------------- series

def test_series_csv_columns_and_errors(tmp_path):
    p = tmp_path / "s.csv"
    p.write_text("date,a,b\n" + "".join(f"d{i},{i},{i * i}\n" for i in range(20)))
    with pytest.raises(InputError, match="column="):
        SeriesData.from_file(p)                                        # two numeric columns: ambiguous
    np.testing.assert_array_equal(SeriesData.from_file(p, column="b").values, np.arange(20.0) ** 2)
    np.testing.assert_array_equal(SeriesData.from_file(p, column=1).values, np.arange(20.0))
    with pytest.raises(InputError, match=r"\['date', 'a', 'b'\]"):
        SeriesData.from_file(p, column="c")
    bad = tmp_path / "bad.csv"
    bad.write_text("x\n1\n2\n\n3\nfoo\n5\n")
    with pytest.raises(InputError, match="row 6.*'foo'"):
        SeriesData.from_file(bad)
    nohead = tmp_path / "nohead.csv"
    nohead.write_text("".join(f"{i},{2 * i}\n" for i in range(10)))
    np.testing.assert_array_equal(SeriesData.from_file(nohead, column=1).values, 2.0 * np.arange(10))
    with pytest.raises(InputError, match="does not exist"):
        SeriesData.from_file(tmp_path / "none.csv")
    const = tmp_path / "const.csv"
    const.write_text("v\n" + "3\n" * 10)
    with pytest.raises(InputError, match="constant"):
        SeriesData.from_file(const)


def test_series_npy(tmp_path):
    a = np.arange(30.0).reshape(15, 2)
    np.save(tmp_path / "a.npy", a)
    np.testing.assert_array_equal(SeriesData.from_file(tmp_path / "a.npy", column=1).values, a[:, 1])
    with pytest.raises(InputError, match="column"):
        SeriesData.from_file(tmp_path / "a.npy")
    np.save(tmp_path / "v.npy", a[:, 0])
    assert len(SeriesData.from_file(tmp_path / "v.npy").values) == 15


def test_series_normalisation_windows_and_metric():
    v = np.sin(np.arange(60) * 0.3) * 5 + 10
    data = SeriesData.from_values(v, val_fraction=0.25, transform="level")
    assert data.n_train == 45
    assert data.mean == pytest.approx(v[:45].mean()) and data.std == pytest.approx(v[:45].std())
    np.testing.assert_allclose(data.denormalise(data.normalise(v)), v, rtol=0, atol=1e-12)
    X, D = data.batch(np.random.default_rng(0), 5, 8)
    assert X.shape == D.shape == (8, 5, 1)
    np.testing.assert_allclose(X[1:], D[:-1])
    Xh, Dh = data.heldout(8)
    assert Xh.shape == (8, data.n_heldout(8), 1) == (8, 8, 1)
    np.testing.assert_allclose(data.denormalise(Dh[:, 0, 0]), v[45:53])  # targets start the held-out part
    np.testing.assert_allclose(data.denormalise(Dh[-1, -1, 0]), v[-1])
    m = data.metric(Dh, Dh)
    assert m["mse"] == 0.0 and m["mae"] == 0.0
    d = data.denormalise(Dh)
    assert m["baseline_mse"] == pytest.approx(np.mean((d[1:] - d[:-1]) ** 2))
    m2 = data.metric(Dh + 0.1, Dh)
    assert m2["mae"] == pytest.approx(0.1 * data.std)


def test_series_diff_transform_windows_metric_and_forecast():
    """The default transform: the net reads and predicts changes, normalised by the training changes."""
    v = np.sin(np.arange(60) * 0.3) * 5 + 0.2 * np.arange(60) + 10         # seasonal with a trend
    data = SeriesData.from_values(v, val_fraction=0.25)
    assert data.transform == "diff" and data.n_train == 45
    dv = np.diff(v)                                                        # dv[j] = v[j+1] - v[j]
    assert data.mean == pytest.approx(dv[:44].mean()) and data.std == pytest.approx(dv[:44].std())
    X, D = data.batch(np.random.default_rng(0), 5, 8)
    np.testing.assert_allclose(X[1:], D[:-1])
    assert np.all(data.denormalise(D) <= dv[:44].max() + 1e-12)           # training targets: training changes
    Xh, Dh = data.heldout(8)
    assert Xh.shape == (8, data.n_heldout(8), 1) == (8, 8, 1)
    # the first held-out target is the change into the first held-out value, the last one into the last value
    np.testing.assert_allclose(data.denormalise(Dh[:, 0, 0]), v[45:53] - v[44:52])
    np.testing.assert_allclose(data.denormalise(Dh[-1, -1, 0]), v[-1] - v[-2])
    # the last-value forecast is "no change": its errors are the changes themselves; the net's are (Y-D)*std
    m = data.metric(Dh, Dh)
    assert m["mse"] == 0.0
    ch = data.denormalise(Dh)[1:, :, 0]
    assert m["baseline_mse"] == pytest.approx(np.mean(ch ** 2))
    no_change = np.full_like(Dh, -data.mean / data.std)
    assert data.metric(no_change, Dh)["mse"] == pytest.approx(m["baseline_mse"])
    # forecast: warm up on the last changes, then feed each predicted change back
    from bptt import Elman
    from bptt.data.series import forecast
    net = Elman(1, 4, 1, seed=2)
    fc = forecast(net, v, "diff", data.mean, data.std, horizon=5, warmup=8)
    z = (dv[-8:] - data.mean) / data.std
    fw = net.forward(z[:, None, None])
    y, state, last, want = fw.Y[-1], fw.state, v[-1], []
    for _ in range(5):
        last = last + y[0, 0] * data.std + data.mean
        want.append(last)
        y, state = net.step(y, state)
    np.testing.assert_allclose(fc, want, rtol=1e-12)
    with pytest.raises(InputError, match="transform"):
        SeriesData.from_values(v, transform="log")
    line = SeriesData.from_values(np.arange(20.0))                         # constant changes: std falls back to 1
    assert line.mean == 1.0 and line.std == 1.0


def test_airline_dataset():
    data = SeriesData.from_file(builtin_series("airline"))
    assert len(data.values) == 144 and data.column == "passengers"
    assert data.values.sum() == 40363 and data.values[0] == 112 and data.values[-1] == 432
    assert data.values.max() == 622 and data.n_train == 115
    task = get_task("series", path=str(builtin_series("airline")), length=12)
    assert isinstance(task, Task)
    X, D = task.heldout(1000, seed=0)
    assert D.shape == (12, 18, 1)
    m = task.metric(D, D)
    assert m["solved"] == 1.0 and m["baseline_mse"] > 0
    no_change = np.full_like(D, -task.data.mean / task.data.std)         # the last-value forecast, as a change
    assert task.metric(no_change, D)["solved"] == 0.0  # the baseline does not beat itself
    again = task_from_description(json.loads(json.dumps(task.describe())))
    assert again.describe() == task.describe()
    with pytest.raises(InputError, match="airline"):
        builtin_series("co2")
