"""BPTT(k1, k2) on streams (Williams & Peng 1990): every window's gradient against PyTorch with the state
before the window detached, and the carried state against PyTorch run over the whole stream prefix."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import bptt
from bptt.data import TextData, get_task
from bptt.data.streams import SequenceStream, TextStream
from bptt.train import stream_window
from torch_ref import _shared_cells, _run_steps, assert_close, torch_reference

TEXT = TextData.from_text("abracadabra, said the cat; the bat sat on the mat. " * 6)


def torch_state_at(net, stream, pos):
    """The state after positions [0, pos) of the stream, by PyTorch step cells (resets applied)."""
    kind = net.cell.name
    H, B = net.n_hidden, stream.B
    carries = [tuple(torch.zeros(B, H, dtype=torch.float64) for _ in range(net.cell.n_carry))]
    if pos == 0:
        return net.initial_state(B)
    X, _, R, _ = stream.window(0, pos)
    rnn, _ = net.to_torch()
    with torch.no_grad():
        _, carries = _run_steps(_shared_cells(rnn, kind, 1), kind, torch.from_numpy(X), 0, pos - 1, carries, None, R)
    parts = [c.numpy() for c in carries[0]]
    return parts[0] if len(parts) == 1 else tuple(parts)


CASES = [(cell, src, tb) for cell in ("elman", "lstm", "gru") for src in ("text", "adding")
         for tb in ((3, 3), (2, 5), (4, 7))]


@pytest.mark.parametrize("cell,source,tbptt", CASES, ids=[f"{c}-{s}-{t[0]}_{t[1]}" for c, s, t in CASES])
def test_windows_match_torch(cell, source, tbptt):
    if source == "text":
        stream = TextStream(TEXT, 3)
        n_in = n_out = TEXT.n_vocab
        loss, g2 = "cross_entropy", "softmax"
    else:
        stream = SequenceStream(get_task("adding", length=6), 2, seed=1)
        n_in, n_out, loss, g2 = 2, 1, "squared", "identity"
    net = getattr(bptt, cell.upper() if cell != "elman" else "Elman")(n_in, 5, n_out, g2=g2, seed=3)
    carry = net.initial_state(stream.B)
    updates = 0
    for step in range(9):
        w = stream_window(net, stream, tbptt, step, carry, loss)
        k1, k2 = tbptt
        start = max(0, (step + 1) * k1 - k2)
        ref_s0 = torch_state_at(net, stream, start)
        for a, b in zip(*(x if isinstance(x, tuple) else (x,) for x in (carry, ref_s0))):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-13)  # the carried state is the stream's state
        if w.grads is not None:
            _, _, R, _ = stream.window(start, w.X.shape[0])
            E, ref, _ = torch_reference(net, w.X, w.D, loss=loss, at=w.at, s0=ref_s0, resets=R)
            assert abs(E - w.E) <= 1e-12 * max(1.0, abs(E))
            ours = {k: v for k, v in w.grads.items() if k != "s0"}
            assert_close(ours, {k: ref[k] for k in ours}, 1e-10)
            assert len(w.at) <= k1 and all(i >= w.X.shape[0] - k1 for i in w.at)
            updates += 1
        carry = w.next_carry
    assert updates >= 2
