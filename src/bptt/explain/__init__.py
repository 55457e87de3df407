"""The seed tutorial's example, explained: its numbers (:mod:`.example`), the text ``bptt explain`` prints
(:mod:`.text`), its figures (:mod:`.figures`, needs matplotlib) and a self-contained HTML page (:mod:`.page`).

``seed_example(seed=0, hidden=2, g1="tanh", g2="identity", steps=3)`` is the single source of the numbers.
"""

from .example import MAX_STEPS, SeedExample, chain_text, factors, seed_example

__all__ = ["MAX_STEPS", "SeedExample", "chain_text", "factors", "seed_example"]
