"""``Gradients``: what ``Network.gradients`` returns, in a module of its own so that the network, the
fast backends, the memory-budgeted loop and the online algorithms can all build one without importing
each other."""

from __future__ import annotations


class Gradients(dict):
    """dE/dparam for every parameter name, plus ``s0``; also reachable as attributes (``g.Ws``)."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


__all__ = ["Gradients"]
