"""bptt explain: the worked example of the tutorial bptt follows (backpropagation through time for an Elman
network, its notation X, S, Y, d, E, Wx, Ws, Wy, g1, g2): N = 3 steps, one loss term E_N, formula by formula.

Every number comes from the library (Elman.gradients and gradient_terms) and is checked against the chain
rule written out by hand and central finite differences. --figures DIR draws the tutorial's missing pictures
(the unrolled net, the paths of every BPTT term, ||dE_N/dS_i||) as PNG and SVG; --html FILE writes one
self-contained page with all of it. Same seed, same numbers everywhere.
"""

from __future__ import annotations

from ..explain.example import MAX_STEPS, check_steps, seed_example
from ..explain.text import explain_text


def add_parser(sub):
    p = sub.add_parser("explain", help="walk through a worked BPTT example (N=3, E_3) with real numbers",
                       description=__doc__)
    p.add_argument("--seed", type=int, default=0, help="seed of the weights, inputs and target (default 0)")
    p.add_argument("--hidden", type=int, default=2, help="hidden units H (default 2, so matrices stay readable)")
    p.add_argument("--g1", default="tanh", help="hidden activation g1 (default tanh)")
    p.add_argument("--g2", default="identity", help="output activation g2 (default identity)")
    p.add_argument("--steps", type=int, default=3, help=f"N, the steps unrolled (1..{MAX_STEPS}; default 3, the tutorial's)")
    p.add_argument("--figures", metavar="DIR", help="write the figures as DIR/*.png and *.svg (needs matplotlib)")
    p.add_argument("--html", metavar="FILE", help="write the whole walk-through as one self-contained HTML page")
    p.set_defaults(run=run)


def run(args) -> int:
    check_steps(args.steps)
    if args.figures is None and args.html is None:
        print(explain_text(seed_example(args.seed, args.hidden, args.g1, args.g2, args.steps)))
        return 0
    from ..explain import figures, page

    # every check before any drawing or writing: a bad option leaves nothing behind
    if args.figures is not None:
        figures.check_folder(args.figures)
    if args.html is not None:
        page.check_page_path(args.html)
    figures.require_matplotlib("--figures needs" if args.html is None else
                               "--html: the page draws its figures with" if args.figures is None else
                               "--figures and --html (the page embeds the figures) need")
    ex = seed_example(args.seed, args.hidden, args.g1, args.g2, args.steps)
    files = figures.render_all(ex)
    if args.figures is not None:
        written = figures.write_figures(ex, args.figures, files)
        print(f"wrote {len(written)} figures ({', '.join(p.name for p in written)}) to {args.figures}")
    if args.html is not None:
        page.write_page(ex, args.html, files)
        print(f"wrote {args.html}: the walk-through with its figures, one self-contained page")
    print(f"numbers: the seeded example that `{ex.command}` prints (E_{ex.steps} = {ex.E:.9f})")
    return 0
