"""PyTorch as the gradient oracle: the same net (built by ``net.to_torch()``), data, loss and options.

``torch_reference`` returns (E, grads in bptt's names, Y). Full BPTT runs the torch module itself
(``pack_padded_sequence(enforce_sorted=False)`` for lengths). Truncated BPTT runs torch's own cells
(``nn.RNNCell`` / ``LSTMCell`` / ``GRUCell``) sharing the module's parameters step by step: for each loss
step t, E_t back-propagates from t down to t-k+1 with every layer's state before the window detached.
Stream resets (which nn.RNN has no notion of) also take the step-by-step path, with k = T if not truncated.
``assert_close`` compares dicts entry by entry with the norm-wise relative error.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

TORCH_NAMES = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
OUR_NAMES = {"elman": ("Wx", "Ws", "bs", None), "lstm": ("W_ih", "W_hh", "b_ih", "b_hh"),
             "gru": ("W_ih", "W_hh", "b_ih", "b_hh")}
G2 = {"identity": lambda z: z, "tanh": torch.tanh, "sigmoid": torch.sigmoid, "relu": torch.relu,
      "softmax": lambda z: torch.softmax(z, dim=-1)}


def loss_mask(at, T, B, lens):
    """(T, B) bool: which steps carry a loss term (written independently of bptt.validate)."""
    m = np.zeros((T, B), bool)
    for b in range(B):
        L = int(lens[b])
        steps = range(L) if at is None else [a if a >= 0 else L + a for a in (at if isinstance(at, list) else [at])]
        m[list(steps), b] = True
    return m


def _loss_terms(Z, D, m, loss, g2, B):
    """E summed over the (t, b) pairs where the float weight array m (T', B) is 1; Z (T', B, O)."""
    w = torch.from_numpy(m.astype(np.float64)).to(Z.dtype) / B
    if loss == "squared":
        diff = G2[g2](Z) - torch.from_numpy(D).to(Z.dtype)
        return (w[:, :, None] * diff * diff).sum()
    logp = torch.log_softmax(Z, dim=-1)
    picked = torch.gather(logp, -1, torch.from_numpy(D).long()[:, :, None])[:, :, 0]
    return -(w * picked).sum()


def _shared_cells(rnn, cell, layers):
    """Torch step cells per layer (unidirectional) that share the module's parameters."""
    out = []
    for l in range(layers):
        n_in = rnn.input_size if l == 0 else rnn.hidden_size
        kw = dict(dtype=rnn.weight_ih_l0.dtype)
        c = {"elman": lambda: nn.RNNCell(n_in, rnn.hidden_size, nonlinearity=rnn.nonlinearity, **kw),
             "lstm": lambda: nn.LSTMCell(n_in, rnn.hidden_size, **kw),
             "gru": lambda: nn.GRUCell(n_in, rnn.hidden_size, **kw)}[cell]()
        for n in TORCH_NAMES:
            setattr(c, n, getattr(rnn, f"{n}_l{l}"))  # the same Parameter object: grads land in rnn
        out.append(c)
    return out


def _run_steps(cells, kind, Xt, lo, hi, carries, mask, resets):
    """Steps lo..hi through all layers; carries[l] tuple of (B, H). Returns (top outputs, carries)."""
    carries = list(carries)
    outs = []
    for t in range(lo, hi + 1):
        inp = Xt[t]
        for l, c in enumerate(cells):
            prev = carries[l]
            if resets is not None and resets[t].any():
                r = torch.from_numpy(resets[t])[:, None]
                prev = tuple(torch.where(r, torch.zeros_like(p), p) for p in prev)
            new = c(inp, prev) if kind == "lstm" else (c(inp, prev[0]),)
            if mask is not None and not mask[t].all():
                m = torch.from_numpy(mask[t])[:, None]
                new = tuple(torch.where(m, n, p) for n, p in zip(new, prev))
            carries[l] = new
            inp = new[0]
        outs.append(inp)
    return torch.stack(outs), carries


def torch_reference(net, X, D, loss="squared", at=None, truncate=None, s0=None, lengths=None, resets=None):
    """(E, grads, Y) from PyTorch for ``net.gradients(X, D, loss, at, truncate, s0, lengths, resets)``.

    grads: bptt's parameter names plus "s0" (same form as net's s0); Y (T, B, O). Steps past a length
    carry no meaning in Y (torch pads the hidden output with zeros, bptt carries the state): mask them.
    """
    kind = net.cell.name
    rnn, lin = net.to_torch()
    T, B, _ = X.shape
    LD, H, g2 = net.layers * net.directions, net.n_hidden, net.g2.name
    lens = np.full(B, T) if lengths is None else np.asarray(lengths)
    lm = loss_mask(at, T, B, lens)
    mask = None if lengths is None else np.arange(T)[:, None] < lens[None, :]
    n_carry = 2 if kind == "lstm" else 1
    parts = [np.zeros((LD, B, H))] * n_carry if s0 is None else list(s0) if n_carry == 2 else [s0]
    leaves = [torch.tensor(np.array(p).reshape(LD, B, H), requires_grad=True) for p in parts]
    Xt = torch.from_numpy(X)

    if truncate is None and resets is None:
        h0 = tuple(leaves) if kind == "lstm" else leaves[0]
        inp = Xt if lengths is None else pack_padded_sequence(Xt, torch.as_tensor(lens), enforce_sorted=False)
        out, _ = rnn(inp, h0)
        if lengths is not None:
            out, _ = pad_packed_sequence(out, total_length=T)
        Z = lin(out)
        E = _loss_terms(Z, D, lm, loss, g2, B)
        E.backward()
        Y = G2[g2](Z).detach().numpy()
    else:
        assert net.directions == 1, "truncated BPTT and resets are defined for unidirectional nets only"
        truncate = T if truncate is None else truncate
        cells = _shared_cells(rnn, kind, net.layers)
        start = [tuple(leaf[l] for leaf in leaves) for l in range(net.layers)]
        with torch.no_grad():  # the forward pass, keeping every layer's carry after each step
            carries, states, outs = start, [], []
            for t in range(T):
                o, carries = _run_steps(cells, kind, Xt, t, t, carries, mask, resets)
                states.append(carries)
                outs.append(o[0])
            Z = lin(torch.stack(outs))
            E = _loss_terms(Z, D, lm, loss, g2, B)
            Y = G2[g2](Z).numpy()
        for t in np.flatnonzero(lm.any(axis=1)):
            lo = max(0, t - truncate + 1)
            c0 = start if lo == 0 else [tuple(x.detach() for x in c) for c in states[lo - 1]]
            o, _ = _run_steps(cells, kind, Xt, lo, t, c0, mask, resets)
            _loss_terms(lin(o[-1:]), D[t : t + 1], lm[t : t + 1], loss, g2, B).backward()

    grads = {}
    for l in range(net.layers):
        for d in range(net.directions):
            tsuf = f"_l{l}" + ("_reverse" if d else "")
            for tn, on in zip(TORCH_NAMES, OUR_NAMES[kind]):
                if on is not None:
                    grads[on + net.suffix(l, d)] = getattr(rnn, tn + tsuf).grad.numpy()
    grads["Wy"] = lin.weight.grad.numpy()
    grads["by"] = lin.bias.grad.numpy()
    # no window reaches step 0 (truncation): torch leaves grad None, the gradient is zero
    s0g = [np.zeros(leaf.shape) if leaf.grad is None else leaf.grad.numpy() for leaf in leaves]
    s0g = [a[0] if LD == 1 else a for a in s0g]
    grads["s0"] = tuple(s0g) if n_carry == 2 else s0g[0]
    return float(E.detach()), grads, Y


def _flat(d):
    """Dict of arrays (tuples allowed, as LSTM's s0) -> dict name -> array."""
    out = {}
    for k, v in d.items():
        if isinstance(v, tuple):
            out.update({f"{k}[{i}]": np.asarray(a) for i, a in enumerate(v)})
        else:
            out[k] = np.asarray(v)
    return out


def rel_errors(ours, ref) -> dict:
    """name -> ||a - b|| / max(||b||, 1e-300) for every entry of ref (same names required)."""
    a, b = _flat(ours), _flat(ref)
    assert set(a) == set(b), f"names differ: ours {sorted(a)} vs ref {sorted(b)}"
    out = {}
    for k in b:
        assert a[k].shape == b[k].shape, f"{k}: shape {a[k].shape} vs {b[k].shape}"
        out[k] = float(np.linalg.norm(a[k] - b[k]) / max(np.linalg.norm(b[k]), 1e-300))
    return out


def assert_close(ours, ref, rtol) -> float:
    """Assert every entry's norm-wise relative error <= rtol; returns the worst."""
    errs = rel_errors(ours, ref)
    name = max(errs, key=errs.get)
    assert errs[name] <= rtol, f"worst {name}: rel. err. {errs[name]:.3e} > {rtol:g}; all: {errs}"
    return errs[name]
