"""Weights both ways between bptt nets and PyTorch's ``nn.RNN`` / ``nn.LSTM`` / ``nn.GRU`` + ``nn.Linear``.

bptt's cell parameters use PyTorch's layouts, so moving them is a copy, never a reshuffle:

    bptt name (+ suffix ``_l{l}[_reverse]``)      torch name (``_l{l}[_reverse]``)
    LSTM/GRU  W_ih, W_hh, b_ih, b_hh               weight_ih, weight_hh, bias_ih, bias_hh
    Elman     Wx, Ws, bs                           weight_ih, weight_hh, bias_ih (+ bias_hh, see below)
    output    Wy (O, D*H), by (O,)                 nn.Linear(D*H, O): weight, bias

The Elman cell has one bias: ``to_torch`` puts bs into bias_ih and zeros into bias_hh; ``from_torch`` sums
the two. bptt is time-major, as a module with ``batch_first=False``. PyTorch holds no output activation:
apply ``g2`` (``net.g2.name``) to the Linear's output yourself. torch is imported only inside these
functions; it is not a dependency of bptt.
"""

from __future__ import annotations

import numpy as np

from .errors import InputError

_TORCH_NAMES = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")


def _torch(caller: str):
    try:
        import torch
    except ImportError:
        raise InputError(
            f"{caller}: PyTorch is not installed, and it is needed only for this interchange. "
            "Install it with `pip install torch==2.13.0` (the version bptt's tests use) or `pip install torch`."
        ) from None
    return torch


def _torch_dtype(torch, dtype: np.dtype):
    return {np.dtype(np.float32): torch.float32, np.dtype(np.float64): torch.float64}[np.dtype(dtype)]


def to_torch(net):
    """A PyTorch copy of ``net``: returns (rnn, linear).

    rnn: ``nn.RNN(nonlinearity=g1)`` for Elman (g1 must be 'tanh' or 'relu'), ``nn.LSTM`` or ``nn.GRU``
    with ``num_layers=net.layers``, ``bidirectional=net.bidirectional``, ``batch_first=False``, bias=True;
    linear: ``nn.Linear(D*H, O)`` holding Wy, by. Both in the net's dtype (float32 or float64), on the CPU.
    """
    torch = _torch("to_torch")
    nn = torch.nn
    name = net.cell.name
    kw = dict(input_size=net.n_in, hidden_size=net.n_hidden, num_layers=net.layers, bias=True,
              batch_first=False, bidirectional=net.bidirectional, dtype=_torch_dtype(torch, net.dtype))
    if name == "elman":
        g1 = net.cell.g1.name
        if g1 not in ("tanh", "relu"):
            raise InputError(f"to_torch: torch.nn.RNN supports g1 'tanh' or 'relu'; this Elman net has g1={g1!r}. "
                             "Only nets with g1='tanh' or 'relu' can be exported.")
        rnn = nn.RNN(nonlinearity=g1, **kw)
        ours = ("Wx", "Ws", "bs", None)
    elif name in ("lstm", "gru"):
        rnn = (nn.LSTM if name == "lstm" else nn.GRU)(**kw)
        ours = ("W_ih", "W_hh", "b_ih", "b_hh")
    else:
        raise InputError(f"to_torch: cell {name!r} has no PyTorch counterpart; expected 'elman', 'lstm' or 'gru'")
    P = net.params
    with torch.no_grad():
        for l in range(net.layers):
            for d in range(net.directions):
                tsuf = f"_l{l}" + ("_reverse" if d else "")
                for tname, oname in zip(_TORCH_NAMES, ours):
                    param = getattr(rnn, tname + tsuf)
                    if oname is None:
                        param.zero_()
                    else:
                        param.copy_(torch.from_numpy(np.ascontiguousarray(P[oname + net.suffix(l, d)])))
        linear = nn.Linear(net.directions * net.n_hidden, net.n_out, dtype=kw["dtype"])
        linear.weight.copy_(torch.from_numpy(np.ascontiguousarray(P["Wy"])))
        linear.bias.copy_(torch.from_numpy(np.ascontiguousarray(P["by"])))
    return rnn, linear


def from_torch(rnn_module, linear=None, g2: str = "identity"):
    """A bptt net holding the weights of a PyTorch recurrent module (copied; the module is not kept).

    rnn_module: ``nn.RNN`` (nonlinearity 'tanh' or 'relu' -> ``Elman``), ``nn.LSTM`` (proj_size 0) or
    ``nn.GRU``, any num_layers and bidirectional, float32 or float64; without biases (bias=False) the
    bptt biases are zeros. linear: an ``nn.Linear(D*H, O)`` output head, or None for an identity head
    (Wy = I, by = 0, O = D*H, so Y = g2(S)). g2: bptt's output activation (torch keeps none).
    The net's dtype follows the module's. Dropout between layers, a training-time option, is not carried.
    """
    torch = _torch("from_torch")
    nn = torch.nn
    from .network import GRU, LSTM, Elman

    m = rnn_module
    if isinstance(m, nn.LSTM):
        if getattr(m, "proj_size", 0):
            raise InputError(f"from_torch: got nn.LSTM with proj_size={m.proj_size}; bptt's LSTM has no "
                             "projection. Use proj_size=0.")
        cls, extra, ours = LSTM, {}, ("W_ih", "W_hh", "b_ih", "b_hh")
    elif isinstance(m, nn.GRU):
        cls, extra, ours = GRU, {}, ("W_ih", "W_hh", "b_ih", "b_hh")
    elif isinstance(m, nn.RNN):
        cls, extra, ours = Elman, {"g1": m.nonlinearity}, ("Wx", "Ws", "bs", None)
    else:
        raise InputError(f"from_torch: rnn_module: got {type(m).__name__}, expected torch.nn.RNN, "
                         "torch.nn.LSTM or torch.nn.GRU")
    dtype = m.weight_ih_l0.dtype
    if dtype not in (torch.float32, torch.float64):
        raise InputError(f"from_torch: the module's dtype is {dtype}; expected torch.float32 or torch.float64. "
                         "Convert it first, e.g. module.double().")
    np_dtype = np.float32 if dtype == torch.float32 else np.float64
    D = 2 if m.bidirectional else 1
    H = m.hidden_size

    def arr(t):  # exact copy of a tensor's values
        return t.detach().cpu().numpy().astype(np_dtype, copy=True)

    if linear is not None:
        if not isinstance(linear, nn.Linear):
            raise InputError(f"from_torch: linear: got {type(linear).__name__}, expected torch.nn.Linear or None")
        if linear.in_features != D * H:
            raise InputError(f"from_torch: linear: in_features is {linear.in_features}, expected D*H = {D * H} "
                             f"(hidden_size {H} x {D} direction(s)) to sit on top of the recurrent module")
        if linear.weight.dtype != dtype:
            raise InputError(f"from_torch: linear: dtype {linear.weight.dtype} differs from the module's {dtype}; "
                             "convert both to the same dtype")
        Wy = arr(linear.weight)
        by = arr(linear.bias) if linear.bias is not None else np.zeros(linear.out_features, np_dtype)
    else:
        Wy, by = np.eye(D * H, dtype=np_dtype), np.zeros(D * H, np_dtype)

    net = cls(m.input_size, H, Wy.shape[0], g2=g2, dtype=np_dtype, layers=m.num_layers,
              bidirectional=bool(m.bidirectional), **extra)
    params = {"Wy": Wy, "by": by}
    for l in range(m.num_layers):
        for d in range(D):
            tsuf = f"_l{l}" + ("_reverse" if d else "")
            t = {n: getattr(m, n + tsuf, None) for n in _TORCH_NAMES}
            W_ih, W_hh = arr(t["weight_ih"]), arr(t["weight_hh"])
            zeros = np.zeros(W_ih.shape[0], np_dtype)
            b_ih = arr(t["bias_ih"]) if t["bias_ih"] is not None else zeros
            b_hh = arr(t["bias_hh"]) if t["bias_hh"] is not None else zeros.copy()
            suf = net.suffix(l, d)
            if ours[3] is None:  # Elman: one bias, the sum of torch's two
                params.update({"Wx" + suf: W_ih, "Ws" + suf: W_hh, "bs" + suf: b_ih + b_hh})
            else:
                params.update({n + suf: a for n, a in zip(ours, (W_ih, W_hh, b_ih, b_hh))})
    return net.set_params(params)
