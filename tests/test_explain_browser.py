"""The page of ``bptt explain --html`` rendered by a real browser (headless Chromium, DevTools protocol).

Needs Chromium (Debian: ``apt-get install chromium``; ``.ci/run`` installs it). Without it the test skips,
unless BPTT_REQUIRE_BROWSER=1 (set by .ci/run) turns the absence into a failure.
"""

import io
import os

import numpy as np
import pytest

from _chromium import Browser, find_chromium

pytest.importorskip("matplotlib")
EXE = find_chromium()
if EXE is None and os.environ.get("BPTT_REQUIRE_BROWSER") != "1":
    pytest.skip("Chromium is not installed (Debian: apt-get install chromium); .ci/run installs it",
                allow_module_level=True)

from bptt.explain.example import seed_example  # noqa: E402
from bptt.explain.figures import weight_paths  # noqa: E402
from bptt.explain.page import write_page  # noqa: E402

LAYOUT = """(() => {
  const box = e => { const r = e.getBoundingClientRect();
                     return {x: r.x + scrollX, y: r.y + scrollY, width: r.width, height: r.height}; };
  const fracs = [...document.querySelectorAll('mfrac')].map(f => {
      const [a, b] = [...f.children].map(c => c.getBoundingClientRect());
      return {above: a.bottom <= b.top + 1, width: f.getBoundingClientRect().width}; });
  return {
    math: [...document.querySelectorAll('math')].map(box),
    blockMath: [...document.querySelectorAll('#system > math > mrow')].map(box),
    fracs: fracs,
    images: [...document.querySelectorAll('figure img')].map(i => ({ok: i.complete && i.naturalWidth > 0,
                                                                    ...box(i)})),
    headings: [...document.querySelectorAll('h2')].map(h => h.textContent),
    termRows: [...document.querySelectorAll('section[id^=adjust-] tr.term')].length,
    text: document.body.innerText,
  };
})()"""


def _ink(png: bytes) -> float:
    """Fraction of pixels that are clearly not white."""
    import matplotlib.image as mpimg

    img = mpimg.imread(io.BytesIO(png))[..., :3]
    return float((img.min(axis=-1) < 0.8).mean())


@pytest.fixture(scope="module")
def browser():
    assert EXE is not None, "BPTT_REQUIRE_BROWSER=1 but no chromium on PATH"
    b = Browser(EXE)
    yield b
    b.close()


def test_error_capture_works(browser, tmp_path):
    """Control: a page that tries to fetch something and logs an error is caught by the same check."""
    bad = tmp_path / "bad.html"
    bad.write_text("<!DOCTYPE html><html><head><meta http-equiv=\"Content-Security-Policy\" "
                   "content=\"default-src 'none'; script-src 'unsafe-inline'\"></head><body>"
                   "<img src=\"https://example.invalid/x.png\"><script>console.error('seen')</script></body></html>")
    errors = browser.open(bad.as_uri()).errors()
    assert any("seen" in e for e in errors) and any("example.invalid" in e for e in errors), errors


def test_page_renders_formulas_and_figures(browser, tmp_path):
    ex = seed_example()
    path = write_page(ex, tmp_path / "seed.html")
    page = browser.open(path.as_uri())
    assert page.errors() == []
    lay = page.evaluate(LAYOUT)

    # formulas: MathML laid out by the browser: every fraction stacks its numerator above its denominator
    assert len(lay["math"]) > 30 and all(m["width"] > 0 and m["height"] > 0 for m in lay["math"])
    assert len(lay["fracs"]) > 50 and all(f["above"] and f["width"] > 0 for f in lay["fracs"])
    assert len(lay["blockMath"]) == 3
    for m in lay["blockMath"]:
        assert _ink(page.screenshot({k: m[k] for k in ("x", "y", "width", "height")})) > 0.02

    # figures: the five SVGs decoded and drawn, each region of the screenshot non-blank
    assert len(lay["images"]) == 5
    for im in lay["images"]:
        assert im["ok"] and im["width"] > 300 and im["height"] > 200, im
        assert _ink(page.screenshot({k: im[k] for k in ("x", "y", "width", "height")})) > 0.01

    # the walk-through's parts and its numbers, as rendered text
    heads = " | ".join(lay["headings"])
    for h in ("The system", "Adjusting Wy", "Adjusting Ws", "Adjusting Wx", "travels back in time",
              "Where the tutorial is wrong"):
        assert h in heads, heads
    assert lay["termRows"] == 1 + 2 * ex.steps
    text = lay["text"]
    assert f"{ex.E:.9f}" in text and "bptt diagnose" in text and "finite differences" in text
    for p in weight_paths(ex, "Ws"):
        assert f"{p.norm:.3e}" in text
    np.testing.assert_array_less(0, [len(text)])
