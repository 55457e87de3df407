"""Sampling text: greedy at temperature 0 (an argmax rollout with net.step), finite at tiny temperatures."""

from __future__ import annotations

import numpy as np
import pytest

import bptt
from bptt.cli import main
from bptt.errors import InputError
from bptt.sampling import next_char_probabilities, sample_text

VOCAB = "abcdefg"


def text_net(seed=3):
    net = bptt.Elman(len(VOCAB), 6, len(VOCAB), g2="softmax", seed=seed)
    net.meta = {"task": {"name": "text", "vocab": VOCAB}}
    return net


def argmax_rollout(net, prime, n):
    """Independent greedy decoding: one-hot of each character through net.step, argmax of the output."""
    eye = np.eye(len(VOCAB))
    state, y = None, None
    for c in prime:
        y, state = net.step(eye[[VOCAB.index(c)]], state)
    out = []
    for _ in range(n):
        k = int(np.argmax(y[0]))
        out.append(VOCAB[k])
        y, state = net.step(eye[[k]], state)
    return "".join(out)


def test_temperature_zero_is_greedy():
    net = text_net()
    assert sample_text(net, 40, prime="ab", temperature=0) == argmax_rollout(net, "ab", 40)
    assert sample_text(net, 40, prime="ab", temperature=0, seed=1) == sample_text(net, 40, prime="ab", temperature=0)


@pytest.mark.parametrize("tau", [1e-3, 1e-12, 1e-300, 5e-324])
def test_tiny_temperatures_stay_finite_and_tend_to_greedy(tau):
    y = np.array([0.2, 0.5, 0.3 - 1e-9, 1e-9])
    p = next_char_probabilities(y, tau)
    assert np.isfinite(p).all() and p.sum() == pytest.approx(1.0)
    assert p[1] == pytest.approx(1.0, abs=1e-12)
    net = text_net()
    assert sample_text(net, 30, prime="ab", temperature=tau) == argmax_rollout(net, "ab", 30)


def test_temperature_one_draws_from_the_model_probabilities():
    y = np.array([0.1, 0.2, 0.7])
    assert np.allclose(next_char_probabilities(y, 1.0), y, rtol=1e-12)
    assert np.allclose(next_char_probabilities(y, 2.0), np.sqrt(y) / np.sqrt(y).sum(), rtol=1e-12)


@pytest.mark.parametrize("tau", [-1.0, float("nan"), float("inf")])
def test_bad_temperatures_are_refused(tau):
    with pytest.raises(InputError, match="--temperature"):
        sample_text(text_net(), 5, temperature=tau)


def test_cli_temperature_zero(tmp_path, capsys):
    (tmp_path / "t.txt").write_text("abcabcabdabcabcabcabdabcaacb" * 20, encoding="utf-8")
    assert main(["train", "text", "--data", str(tmp_path / "t.txt"), "--length", "8", "--hidden", "5", "--steps",
                 "3", "--batch", "4", "--heldout", "4", "--quiet", "--out", str(tmp_path / "r")]) == 0
    capsys.readouterr()
    assert main(["sample", str(tmp_path / "r"), "--temperature", "0", "--length", "25", "--prime", "ab"]) == 0
    net = bptt.load(tmp_path / "r" / "model.npz")
    vocab = net.meta["task"]["vocab"]
    eye = np.eye(len(vocab))
    state = None
    for c in "ab":
        y, state = net.step(eye[[vocab.index(c)]], state)
    want = []
    for _ in range(25):
        k = int(np.argmax(y[0]))
        want.append(vocab[k])
        y, state = net.step(eye[[k]], state)
    assert capsys.readouterr().out == "ab" + "".join(want) + "\n"
