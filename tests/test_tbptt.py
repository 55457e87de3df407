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
from torch_ref import _loss_terms, _run_steps, _shared_cells, assert_close, torch_reference

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


# ---- BPTT(k1, k2) while the weights change: the training loop against a PyTorch re-enactment ---------------
def torch_tbptt_training(cfg, stream, net0, steps):
    """PyTorch runs BPTT(k1, k2) with SGD on the same stream: window s starts from the state at its first
    position, carried with the weights window s-1 used; all its k2 states are computed with the weights in
    force at step s (after s updates); the losses at the k1 newest positions (those that carry a loss) are
    back-propagated through the window; then p -= lr * grad. Returns the trained (rnn, lin)."""
    k1, k2 = cfg.tbptt
    kind = net0.cell.name
    rnn, lin = net0.to_torch()
    cells = _shared_cells(rnn, kind, 1)
    params = list(rnn.parameters()) + list(lin.parameters())
    if kind == "elman":  # one bias bs, held in bias_ih; bias_hh stays zero
        params = [p for p in params if p is not rnn.bias_hh_l0]
    g2 = net0.g2.name
    carry = [tuple(torch.zeros(stream.B, net0.n_hidden, dtype=torch.float64) for _ in range(net0.cell.n_carry))]
    for s in range(steps):
        end = (s + 1) * k1
        start = max(0, end - k2)
        X, D, R, lmask = stream.window(start, end - start)
        Xt = torch.from_numpy(X)
        nxt = max(0, end + k1 - k2)  # the next window's first position
        with torch.no_grad():  # the state carried to the next window, with this window's weights
            _, new_carry = (_run_steps(cells, kind, Xt, 0, nxt - start - 1, carry, None, R)
                            if nxt > start else (None, carry))
        at = np.zeros((end - start, stream.B))
        at[[i for i in range(end - start) if start + i >= end - k1 and lmask[i]]] = 1.0
        if at.any():
            out, _ = _run_steps(cells, kind, Xt, 0, end - start - 1, carry, None, R)
            E = _loss_terms(lin(out), D, at, cfg_loss(stream), g2, stream.B)
            for p in params:
                p.grad = None
            E.backward()
            with torch.no_grad():
                for p in params:
                    p -= cfg.lr * p.grad
        carry = [tuple(c.detach() for c in new_carry[0])]
    return rnn, lin


def cfg_loss(stream):
    return "cross_entropy" if isinstance(stream, TextStream) else "squared"


@pytest.mark.parametrize("cell,task,tbptt", [("elman", "text", (2, 5)), ("lstm", "text", (2, 5)),
                                             ("gru", "text", (3, 7)), ("elman", "adding", (3, 7))])
def test_training_with_changing_weights_matches_torch(tmp_path, cell, task, tbptt):
    """`bptt train --tbptt K1 K2` with SGD: after 9 updates the model equals PyTorch's re-enactment, in
    which every window's K2 states (the K2-K1 older ones included) use the weights of that window's step."""
    from bptt import config, files
    from bptt.data.streams import stream_for
    from bptt.train import build_net, build_task, train

    (tmp_path / "t.txt").write_text("abracadabra, said the cat; the bat sat on the mat. " * 6)
    flags = {"task": task, "cell": cell, "hidden": 5, "batch": 3, "steps": 9, "tbptt": tbptt, "optimizer": "sgd",
             "lr": 0.5, "clip": 0, "schedule": "constant", "heldout": 4, "checkpoint_every": 100, "dtype": "float64",
             "length": 10, "data": str(tmp_path / "t.txt") if task == "text" else None}
    cfg = config.resolve({}, flags)
    train(cfg, tmp_path / "run", quiet=True, log=lambda *a, **k: None)
    trained = files.load(tmp_path / "run" / "model.npz")
    task_obj = build_task(cfg)
    net0 = build_net(cfg, task_obj)
    rnn, lin = torch_tbptt_training(cfg, stream_for(task_obj, cfg.batch, cfg.seed), net0, cfg.steps)
    ours_rnn, ours_lin = trained.to_torch()
    rnn0, lin0 = net0.to_torch()
    moved = 0.0
    for mine, ref, start in zip([*ours_rnn.parameters(), *ours_lin.parameters()],
                                [*rnn.parameters(), *lin.parameters()], [*rnn0.parameters(), *lin0.parameters()]):
        a, b, a0 = (x.detach().numpy() for x in (mine, ref, start))
        assert np.linalg.norm(a - b) <= 1e-10 * np.linalg.norm(b)
        if np.any(b):  # (Elman's bias_hh is zero throughout)
            moved = max(moved, float(np.linalg.norm(b - a0) / np.linalg.norm(b)))
    assert moved > 1e-2  # the weights really changed between windows
