"""``bptt explain --html FILE``: the seed's example on one self-contained HTML page.

Everything is inline: the figures as base64 SVG ``data:`` images, the formulas as MathML (rendered by
the browser, no script or font fetched), the styles in a ``<style>`` element; a Content-Security-Policy
forbids any other source. Every number comes from :func:`bptt.explain.example.seed_example`, the same
function ``bptt explain`` prints from, and the figures from :mod:`bptt.explain.figures`.
"""

from __future__ import annotations

import base64
import html
import os
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..io import atomic_write_bytes
from .example import WEIGHTS, SeedExample, factors, rel_err, term_steps
from .figures import render_all, state_gradient_norms, weight_paths

# ------------------------------------------------------------------------------------------------
# MathML, built from small pieces
# ------------------------------------------------------------------------------------------------


def _mi(x):
    return f"<mi>{html.escape(x)}</mi>"


def _mn(x):
    return f"<mn>{html.escape(str(x))}</mn>"


def _mo(x):
    return f"<mo>{html.escape(x)}</mo>"


def _row(*parts):
    return "<mrow>" + "".join(parts) + "</mrow>"


def _sub(base, sub):
    return f"<msub>{base}{sub}</msub>"


def _frac(a, b):
    return f"<mfrac>{a}{b}</mfrac>"


def _math(*parts, block=False):
    disp = ' display="block"' if block else ""
    return f'<math xmlns="http://www.w3.org/1998/Math/MathML"{disp}>' + _row(*parts) + "</math>"


def _sym(s: str) -> str:
    """'E_3' -> E with subscript 3; 'Ws' -> W with subscript s; 'S_i+1' -> S with subscript i+1."""
    if s in WEIGHTS:
        return _sub(_mi("W"), _mi(s[1]))
    base, sub = s.split("_", 1)
    if sub.isdigit():
        return _sub(_mi(base), _mn(sub))
    pieces = []
    for ch in sub:
        pieces.append(_mn(ch) if ch.isdigit() else _mo(ch) if ch in "+-" else _mi(ch))
    return _sub(_mi(base), _row(*pieces))


def _d(a: str, b: str) -> str:
    """The partial derivative da/db as a fraction."""
    return _frac(_row(_mo("∂"), _sym(a)), _row(_mo("∂"), _sym(b)))


def _chain(fs) -> str:
    return _row(*[(_mo("·") if k else "") + _d(a, b) for k, (a, b) in enumerate(fs)])


def _num(v: float) -> str:
    return _mn(f"{v:.6f}".replace("-", "−"))


def _matrix(a) -> str:
    a = np.atleast_2d(np.asarray(a, float))
    rows = "".join("<mtr>" + "".join(f"<mtd>{_num(v)}</mtd>" for v in r) + "</mtr>" for r in a)
    return _row(_mo("["), f"<mtable>{rows}</mtable>", _mo("]"))


_LARGE = '<mo largeop="true" movablelimits="false">{}</mo>'


def _general(weight: str, n) -> str:
    """dE_N/dW = sum_i chain (corrected), in MathML."""
    N = str(n)
    lhs = _d(f"E_{N}", weight)
    if weight == "Wy":
        return _math(lhs, _mo("="), _chain([(f"E_{N}", f"Y_{N}"), (f"Y_{N}", "Wy")]), block=True)
    top = _mn(N) if N.isdigit() else _mi(N)
    prod = f"<munderover>{_LARGE.format('∏')}{_row(_mi('t'), _mo('='), _mi('i'), _mo('+'), _mn(1))}{top}</munderover>"
    body = _row(_d(f"E_{N}", f"Y_{N}"), _mo("·"), _d(f"Y_{N}", f"S_{N}"), _mo("·"),
                _row(prod, _d("S_t", "S_t-1")), _mo("·"), _d("S_i", weight))
    total = f"<munderover>{_LARGE.format('∑')}{_row(_mi('i'), _mo('='), _mn(1))}{top}</munderover>"
    return _math(lhs, _mo("="), total, body, block=True)


# ------------------------------------------------------------------------------------------------
# The page
# ------------------------------------------------------------------------------------------------

CSS = """
body { font-family: Georgia, 'DejaVu Serif', serif; max-width: 70em; margin: 2em auto; padding: 0 1em;
       line-height: 1.45; color: #222; }
h1, h2, h3 { font-family: 'DejaVu Sans', Arial, sans-serif; }
code, pre { font-family: 'DejaVu Sans Mono', monospace; background: #f4f4f4; padding: 0 0.2em; }
pre { padding: 0.6em; overflow-x: auto; }
table { border-collapse: collapse; margin: 0.8em 0; }
td, th { border: 1px solid #ccc; padding: 0.3em 0.6em; vertical-align: middle; text-align: left; }
th { background: #f0f0f0; }
figure { margin: 1.2em 0; }
figure img { max-width: 100%; border: 1px solid #ddd; }
figcaption { font-size: 0.9em; color: #444; }
.wrong { background: #fdecea; } .right { background: #eaf7ea; }
.side { display: flex; flex-wrap: wrap; gap: 2em; align-items: center; }
math[display="block"] { margin: 0.6em 0; }
"""


def _figure(files: dict, name: str, caption: str) -> str:
    data = base64.b64encode(files[f"{name}.svg"]).decode("ascii")
    return (f'<figure id="fig-{name}"><img alt="{html.escape(caption)}" src="data:image/svg+xml;base64,{data}">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>")


def _weight_section(ex: SeedExample, weight: str, files: dict) -> str:
    n, p = ex.steps, []
    w = p.append
    names = {"Wy": "the output weights", "Ws": "the recurrent weights", "Wx": "the input weights"}
    w(f'<section id="adjust-{weight}"><h2>Adjusting {weight}, {names[weight]}</h2>')
    w(_general(weight, n))
    if weight == "Wy":
        w(f"<p>W<sub>y</sub> acts on the loss through Y<sub>{n}</sub> alone, so its gradient has a single term: "
          f"the error signal at the output times the state it multiplied, S<sub>{n}</sub>. The copies of "
          f"W<sub>y</sub> used at the earlier steps produced outputs that carry no loss here, and their rows of "
          f"<code>gradient_terms</code> are exactly zero.</p>")
    else:
        inp = "S<sub>i−1</sub>" if weight == "Ws" else "X<sub>i</sub>"
        w(f"<p>Every step i used the same {weight}, so the gradient is a sum of {n} terms, one per copy of the "
          f"weight in the unrolled net. Term i follows the error back from E<sub>{n}</sub> through the output, "
          f"then through the states S<sub>{n}</sub>, …, S<sub>i</sub>: each step back multiplies by the step "
          f"Jacobian ∂S<sub>t</sub>/∂S<sub>t−1</sub> = diag(g1′(z<sub>t</sub>)) W<sub>s</sub>. The last factor "
          f"∂S<sub>i</sub>/∂{weight} is the <em>immediate</em> derivative, with S<sub>i−1</sub> held fixed: "
          f"diag(g1′(z<sub>i</sub>)) ⊗ {inp}. (Taking it as the total derivative would count the older "
          f"terms twice.)</p>")
    w('<table class="terms"><tr><th>term</th><th>factor chain</th><th>value</th><th>‖term‖</th>'
      "<th>vs <code>gradient_terms</code> row</th></tr>")
    for pt in weight_paths(ex, weight):
        hand = ex.hand[weight][pt.step - 1]
        w(f'<tr class="term"><td>i = {pt.step}</td><td>{_math(_chain(pt.factors))}</td>'
          f"<td>{_math(_matrix(hand))}</td><td>{pt.norm:.3e}</td>"
          f"<td>rel. err. {rel_err(hand, pt.term):.1e}</td></tr>")
    g, num = ex.grads[weight], ex.numeric[weight]
    w(f'<tr><td colspan="2">sum of the terms (by hand)</td><td>{_math(_matrix(ex.hand[weight].sum(axis=0)))}</td>'
      f'<td>{np.linalg.norm(ex.hand[weight].sum(axis=0)):.3e}</td><td></td></tr>')
    w(f'<tr><td colspan="2"><code>net.gradients(X, D, at={n - 1})</code></td><td>{_math(_matrix(g))}</td>'
      f"<td>{np.linalg.norm(g):.3e}</td><td>rel. err. {rel_err(g, ex.hand[weight].sum(axis=0)):.1e}</td></tr>")
    w(f'<tr class="fd"><td colspan="2">central finite differences (ε = 10<sup>−6</sup>)</td>'
      f"<td>{_math(_matrix(num))}</td><td>{np.linalg.norm(num):.3e}</td>"
      f"<td>rel. err. {rel_err(g, num):.1e}</td></tr></table>")
    w(_figure(files, f"paths_{weight}",
              f"Figure: the {len(term_steps(weight, n))} term(s) of ∂E_{n}/∂{weight} as paths back from E_{n}; "
              f"line width and label give the norm of each term (from the same run as the table)."))
    w("</section>")
    return "\n".join(p)


def _errata(n: int) -> str:
    e = []
    w = e.append
    w('<section id="errata"><h2>Where the tutorial is wrong</h2>')
    w("<p>The tutorial's example stops at E<sub>3</sub>. Its formulas have four slips; the corrected versions "
      "are the ones used on this page and checked above against finite differences.</p><ol>")
    w('<li><p>In the second term of its W<sub>s</sub> sum the output is differentiated by S<sub>2</sub> '
      "directly:</p>"
      f'<div class="side"><div class="wrong">{_math(_d("E_3", "Y_3"), _mo("·"), _d("Y_3", "S_2"), _mo("·"), _d("S_3", "S_2"), _mo("·"), _d("S_2", "Ws"))}</div>'
      f'<div class="right">{_math(_chain(factors("Ws", 2, 3)))}</div></div>'
      "<p>Y<sub>3</sub> is computed from S<sub>3</sub> only; S<sub>2</sub> reaches it through S<sub>3</sub>. "
      "The factor is ∂Y<sub>3</sub>/∂S<sub>3</sub>, as in the first and third terms.</p></li>")
    w("<li><p>The left-hand side of the W<sub>s</sub> formula names a weight W<sub>V</sub> that the system "
      "does not have:</p>"
      f'<div class="side"><div class="wrong">{_math(_d("E_3", "W_V"))}</div>'
      f'<div class="right">{_math(_d("E_3", "Ws"))}</div></div></li>')
    w("<li><p>The general formula for W<sub>x</sub> keeps W<sub>s</sub> on its left-hand side:</p>"
      f'<div class="side"><div class="wrong">{_math(_d("E_N", "W_S"))}</div>'
      f'<div class="right">{_math(_d("E_N", "Wx"))}</div></div></li>')
    w("<li><p>Both general formulas write the middle factor as ∂Y<sub>N</sub>/∂S<sub>i</sub>:</p>"
      f'<div class="side"><div class="wrong">{_math(_d("E_N", "Y_N"), _mo("·"), _d("Y_N", "S_i"), _mo("·"), _d("S_i", "Ws"))}</div>'
      f'<div class="right">{_general("Ws", "N")}</div></div>'
      "<p>Read as a total derivative, ∂Y<sub>N</sub>/∂S<sub>i</sub> is the product of the step Jacobians on "
      "the right; and the last factor must then be the immediate derivative of S<sub>i</sub> (S<sub>i−1</sub> "
      "fixed). With a total ∂S<sub>i</sub>/∂W<sub>s</sub> the sum would count every older term again.</p></li>")
    w("<li><p>“BPTT works for about 8 or 10 steps” is not a property of BPTT: how fast the terms shrink "
      "depends on the weights and the activation. See the next section and <code>bptt diagnose</code>.</p></li>")
    w("</ol></section>")
    return "\n".join(e)


def build_page(ex: SeedExample, files: dict | None = None) -> str:
    """The page as a string. ``files``: the rendered figures (``figures.render_all(ex)``), drawn if None."""
    files = render_all(ex, formats=("svg",)) if files is None else files
    n, prm = ex.steps, ex.net.params
    b = []
    w = b.append
    w("<!DOCTYPE html>")
    w('<html lang="en"><head><meta charset="utf-8">')
    w("<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; img-src data:; "
      "style-src 'unsafe-inline'\">")
    w('<meta name="viewport" content="width=device-width, initial-scale=1">')
    w(f"<title>Backpropagation through time, worked out: the seed's example (N = {n})</title>")
    w(f"<style>{CSS}</style></head><body>")
    w("<h1>Backpropagation through time, worked out on one small network</h1>")
    w(f"<p>This page follows a single error, E<sub>{n}</sub>, back through an Elman network unrolled over {n} "
      "steps, and computes every piece of its gradient three ways: by writing out the chain rule by hand, with "
      "the <code>bptt</code> library's BPTT (<code>Network.gradients</code>, and <code>gradient_terms</code> "
      "for the sum term by term), and by nudging each weight up and down (central finite differences). "
      "The notation is the one of the tutorial <code>bptt</code> grew from; where that tutorial's formulas "
      "slip, this page uses the corrected ones and says so.</p>")
    w(f"<p>All numbers and figures come from one seeded run; <code>{html.escape(ex.command)}</code> prints the "
      f"same numbers as text, and <code>{html.escape(ex.command)} --figures DIR</code> writes the figures "
      "as PNG and SVG files.</p>")

    # the system
    w('<section id="system"><h2>The system</h2>')
    w(_math(_sym("S_t"), _mo("="), _sub(_mi("g"), _mn(1)), _mo("("), _sym("Wx"), _sym("X_t"), _mo("+"),
            _sym("Ws"), _sym("S_t-1"), _mo("+"), _sub(_mi("b"), _mi("s")), _mo(")"), block=True))
    w(_math(_sym("Y_t"), _mo("="), _sub(_mi("g"), _mn(2)), _mo("("), _sym("Wy"), _sym("S_t"), _mo("+"),
            _sub(_mi("b"), _mi("y")), _mo(")"), block=True))
    w(_math(_sym(f"E_{n}"), _mo("="), "<msup>" + _row(_mo("("), _sym(f"d_{n}"), _mo("−"), _sym(f"Y_{n}"),
                                                       _mo(")")) + _mn(2) + "</msup>", block=True))
    w(f"<p>One input, one output and H = {ex.hidden} hidden units; g1 = {ex.g1}, g2 = {ex.g2}. The tutorial has "
      "no biases b<sub>s</sub>, b<sub>y</sub>; the library has them, and they change none of the formulas below. "
      f"The weights are drawn with seed {ex.seed} (doubled from the library's default range, so that every term "
      f"is visible at six decimals), and so are the inputs, the target and a non-zero initial state "
      f"S<sub>0</sub>. The loss sits at the last step only: in code that is <code>at={n - 1}</code>, because "
      f"arrays count from 0 where the tutorial counts from 1.</p>")
    w('<table class="params"><tr>' + "".join(f"<th>{k}</th>" for k in ("Wx", "Ws", "bs", "Wy", "by")) + "</tr><tr>"
      + "".join(f"<td>{_math(_matrix(prm[k]))}</td>" for k in ("Wx", "Ws", "bs", "Wy", "by")) + "</tr></table>")
    w('<table class="forward"><tr><th>t</th><th>X<sub>t</sub></th><th>S<sub>t</sub></th><th>Y<sub>t</sub></th>'
      "<th>d<sub>t</sub></th></tr>")
    w(f"<tr><td>0</td><td></td><td>{_math(_matrix(ex.s0[0]))}</td><td></td><td></td></tr>")
    for t in range(n):
        d = f"{ex.D[t, 0, 0]:.6f}" if t == n - 1 else f"({ex.D[t, 0, 0]:.6f}, not in E<sub>{n}</sub>)"
        w(f"<tr><td>{t + 1}</td><td>{ex.X[t, 0, 0]:.6f}</td><td>{_math(_matrix(ex.S[t]))}</td>"
          f"<td>{ex.Y[t, 0]:.6f}</td><td>{d}</td></tr>")
    w("</table>")
    w(f"<p>E<sub>{n}</sub> = (d<sub>{n}</sub> − Y<sub>{n}</sub>)² = ({ex.D[-1, 0, 0]:.6f} − {ex.Y[-1, 0]:.6f})² "
      f"= <strong>{ex.E:.9f}</strong>, and the error signal at the output is ∂E<sub>{n}</sub>/∂Y<sub>{n}</sub> = "
      f"2 (Y<sub>{n}</sub> − d<sub>{n}</sub>) = {ex.dE_dY[0]:.6f}.</p>")
    w(_figure(files, "unrolled", f"Figure: the network unrolled over {n} steps, with this run's inputs, states "
                                 "and outputs. The same three weight matrices sit on every step."))
    w("</section>")

    b.extend(_weight_section(ex, k, files) for k in WEIGHTS)

    # the vanishing gradient
    steps, norms = state_gradient_norms(ex)
    w('<section id="vanishing"><h2>The gradient that travels back in time</h2>')
    w(f"<p>Every term of the W<sub>s</sub> and W<sub>x</sub> sums at step i carries the same vector "
      f"∂E<sub>{n}</sub>/∂S<sub>i</sub> (<code>gradient_terms(...)[\"dS\"]</code>). Going one step further "
      "back multiplies it by a step Jacobian diag(g1′(z<sub>t</sub>)) W<sub>s</sub>. When those matrices "
      "shrink vectors, the terms of distant steps shrink geometrically with the distance: the vanishing "
      "gradient. The network still sees the distant inputs in its forward pass; it just gets almost no "
      "signal telling it how to use them.</p>")
    w('<table class="dS"><tr><th>i</th><th>‖∂E/∂S<sub>i</sub>‖ (library)</th><th>by hand</th>'
      "<th>ratio to step i+1</th></tr>")
    for i in range(n, 0, -1):
        ratio = f"{norms[i - 1] / norms[i]:.3f}" if i < n and norms[i] > 0 else ""
        w(f"<tr><td>{i}</td><td>{norms[i - 1]:.6e}</td><td>{np.linalg.norm(ex.dE_dS[i - 1]):.6e}</td>"
          f"<td>{ratio}</td></tr>")
    w("</table>")
    w(_figure(files, "dS_norm", f"Figure: ‖∂E_{n}/∂S_i‖ against the step i, on a log scale."))
    w(f"<p>{n} steps are too few to see a rate reliably, and a tiny network with hand-picked weights is not a "
      "trained one. <code>bptt diagnose</code> measures the same quantity on long sequences and real nets: the "
      "average factor per step, the half-life of the gradient, and how many steps back the terms stay above 1% "
      "of the largest, for fresh nets (<code>bptt diagnose --nets elman:tanh:uniform,lstm --length 50 --out "
      "g</code>) or a trained run folder (<code>bptt diagnose RUN_DIR --out g</code>). For the seed's kind of "
      "net (tanh, uniform initialisation, H = 32) it finds the terms below 1% after about 7 steps, while an "
      "orthogonal W<sub>s</sub>, the IRNN and the LSTM's cell state reach much further; the project's "
      "<code>docs/gradient-lab.md</code> has the figures. Truncated BPTT (<code>truncate=k</code>) drops all "
      "but the k newest terms of each sum on purpose.</p></section>")
    w(_errata(n))
    w(f"<footer><p>Made by <code>{html.escape(ex.command)} --html FILE</code>.</p></footer>")
    w("</body></html>")
    return "\n".join(b)


def check_page_path(path) -> Path:
    """The page's file: its folder must exist and it must not be a folder. InputError otherwise."""
    p = Path(os.fspath(path))
    if p.is_dir():
        raise InputError(f"--html: {os.fspath(path)!r} is a folder; give a file name such as page.html")
    if not p.parent.is_dir():
        raise InputError(f"--html: the folder of {os.fspath(path)!r} does not exist; create it first")
    if not os.access(p.parent, os.W_OK | os.X_OK):
        raise InputError(f"--html: folder {os.fspath(p.parent)!r} is not writable; give another file")
    return p


def write_page(ex: SeedExample, path, files: dict | None = None) -> Path:
    """Build the page and write it to ``path`` atomically."""
    p = check_page_path(path)
    atomic_write_bytes(p, build_page(ex, files).encode("utf-8"), what="page")
    return p
