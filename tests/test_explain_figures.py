"""bptt explain --figures / --html: the data the figures are drawn from, the files, and bad input."""

import os
import struct
import subprocess
import sys
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from bptt import Elman
from bptt.explain.example import MAX_STEPS, chain_text, factors, rel_err, seed_example
from bptt.explain.figures import FIGURES, state_gradient_norms, weight_paths

pytest.importorskip("matplotlib")


def _bptt(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "bptt", "explain", *args], capture_output=True, text=True, cwd=cwd)


def _independent_terms(ex):
    """gradient_terms of a net rebuilt from the example's parameters (not the example's own call)."""
    net = Elman(1, ex.hidden, 1, g1=ex.g1, g2=ex.g2)
    for k, v in ex.net.params.items():
        net.params[k] = v.copy()
    return net.gradient_terms(ex.X, ex.D, at=ex.steps - 1, s0=ex.s0)


@pytest.mark.parametrize("steps", [1, 3, MAX_STEPS])
def test_figure_data_are_the_rows_of_gradient_terms(steps):
    ex = seed_example(seed=3, hidden=3, steps=steps)
    terms = _independent_terms(ex)
    for w in ("Ws", "Wx"):
        paths = weight_paths(ex, w)
        assert [p.step for p in paths] == list(range(steps, 0, -1))
        for p in paths:
            np.testing.assert_array_equal(p.term, terms[w][p.step - 1])
            assert p.norm == np.linalg.norm(terms[w][p.step - 1])
            assert p.nodes[0] == f"E_{steps}" and p.nodes[-1] == f"S_{p.step}"
            assert len(p.factors) == 3 + steps - p.step  # dE/dY . dY/dS_N . (N - i step Jacobians) . dS_i/dW
        # the drawn terms are the whole sum: they add up to the gradient, which matches finite differences
        np.testing.assert_allclose(sum(p.term for p in paths), ex.grads[w], rtol=0, atol=1e-14)
        assert rel_err(ex.grads[w], ex.numeric[w]) <= 1e-6
        # and each equals the seed's chain rule written out by hand
        for p in paths:
            assert rel_err(p.term, ex.hand[w][p.step - 1]) <= 1e-12
    (wy,) = weight_paths(ex, "Wy")  # one term: only Y_N carries loss
    np.testing.assert_array_equal(wy.term, terms["Wy"][steps - 1])
    assert not terms["Wy"][: steps - 1].any()
    i, norms = state_gradient_norms(ex)
    np.testing.assert_array_equal(i, np.arange(1, steps + 1))
    np.testing.assert_array_equal(norms, np.linalg.norm(terms["dS"][:, 0], axis=-1))
    np.testing.assert_allclose(norms, np.linalg.norm(ex.dE_dS, axis=-1), rtol=1e-12)


def test_factor_chains_are_the_corrected_ones():
    assert chain_text("Ws", 2, 3) == "dE_3/dY_3 . dY_3/dS_3 . dS_3/dS_2 . dS_2/dWs"
    assert chain_text("Wx", 1, 3) == "dE_3/dY_3 . dY_3/dS_3 . dS_3/dS_2 . dS_2/dS_1 . dS_1/dWx"
    assert factors("Wy", 3, 3) == [("E_3", "Y_3"), ("Y_3", "Wy")]


def _png_size(path):
    with open(path, "rb") as fh:
        head = fh.read(24)
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", head[16:24])


def test_figures_written_with_one_labelled_path_per_term(tmp_path):
    import matplotlib.image as mpimg

    out = tmp_path / "figs"
    r = _bptt("--figures", str(out), "--steps", "4", "--seed", "1")
    assert r.returncode == 0, r.stderr
    assert "bptt explain --seed 1 --hidden 2 --steps 4" in r.stdout  # says which printed example it is
    assert sorted(os.listdir(out)) == sorted(f"{n}.{e}" for n in FIGURES for e in ("png", "svg"))
    ex = seed_example(seed=1, steps=4)
    for name in FIGURES:
        w, h = _png_size(out / f"{name}.png")
        assert w >= 600 and h >= 350, (name, w, h)
        img = mpimg.imread(out / f"{name}.png")[..., :3]
        assert (img.min(axis=-1) < 0.9).mean() > 0.01  # drawn on: a blank canvas has none
        # each file says which printed example its numbers come from (text in the figure, and its metadata)
        assert f"`{ex.command}` prints".encode() in (out / f"{name}.png").read_bytes()
        assert f"`{ex.command}` prints" in (out / f"{name}.svg").read_text("utf-8")
        ids = [el.get("id") or "" for el in ET.parse(out / f"{name}.svg").iter()]
        if name.startswith("paths_"):
            w = name.split("_")[1]
            steps = [p.step for p in weight_paths(ex, w)]
            for kind in ("path", "label", "tag"):
                found = sorted(int(i.rsplit("-i", 1)[1]) for i in ids if i.startswith(f"{kind}-{w}-i"))
                assert found == sorted(steps), (name, kind, found)
    assert len(steps) == 4


def test_text_walk_through_prints_the_figures_numbers():
    """bptt explain (text) and the figures share one source: the text shows every drawn term's norm."""
    r = _bptt("--steps", "5", "--seed", "2", "--hidden", "3")
    assert r.returncode == 0, r.stderr
    ex = seed_example(seed=2, hidden=3, steps=5)
    for w in ("Ws", "Wx"):
        for p in weight_paths(ex, w):
            assert f"term i={p.step}: {chain_text(w, p.step, 5)}" in r.stdout
            assert f"(|term| = {p.norm:.3e})" in r.stdout
    for i, v in zip(*state_gradient_norms(ex)):
        assert f"|dE_5/dS_{i}| = {v:.6e}" in r.stdout


def test_html_page_is_self_contained(tmp_path):
    page = tmp_path / "seed.html"
    r = _bptt("--html", str(page))
    assert r.returncode == 0, r.stderr
    text = page.read_text("utf-8")
    assert "<script" not in text and "<link" not in text
    import re

    srcs = re.findall(r'(?:src|href)="([^"]*)"', text)
    assert len(srcs) == 5 and all(s.startswith("data:image/svg+xml;base64,") for s in srcs)
    assert "default-src 'none'" in text
    assert text.count("<math") > 30 and "bptt diagnose" in text
    ex = seed_example()
    for w in ("Ws", "Wx"):  # every term's norm on the page, the same numbers as the figures
        for p in weight_paths(ex, w):
            assert f"{p.norm:.3e}" in text
    assert f"{ex.E:.9f}" in text


@pytest.mark.parametrize("steps", ["0", "100", "-1"])
def test_bad_steps(tmp_path, steps):
    r = _bptt("--steps", steps, "--figures", str(tmp_path / "f"), "--html", str(tmp_path / "p.html"))
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1
    assert "--steps" in r.stderr and "1 to 8" in r.stderr and "Traceback" not in r.stderr
    assert os.listdir(tmp_path) == []
    r = _bptt("--steps", steps)  # the text walk-through refuses it too
    assert r.returncode == 2 and "--steps" in r.stderr


def test_unwritable_targets_write_nothing(tmp_path):
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    for args, what in ([("--figures", str(a_file)), "--figures"],
                       [("--figures", str(a_file / "sub")), "--figures"],
                       [("--html", str(tmp_path / "missing" / "p.html")), "--html"],
                       [("--html", str(tmp_path)), "--html"],
                       [("--figures", str(tmp_path / "ok"), "--html", str(tmp_path)), "--html"]):
        r = _bptt(*args)
        assert r.returncode == 2, (args, r.stderr)
        assert len(r.stderr.strip().splitlines()) == 1 and what in r.stderr and "Traceback" not in r.stderr
        assert sorted(os.listdir(tmp_path)) == ["file.txt"], args
    # a target that turns out to be unwritable while writing (the last figure's name is a folder):
    # every figure is committed together or none is, and no temporary file is left
    out = tmp_path / "figs"
    (out / "dS_norm.svg").mkdir(parents=True)
    r = _bptt("--figures", str(out))
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "dS_norm.svg" in r.stderr
    assert os.listdir(out) == ["dS_norm.svg"]


def test_missing_matplotlib_is_one_line(tmp_path):
    code = ("import sys; sys.modules['matplotlib'] = None\n"
            "from bptt.cli import main; sys.exit(main(sys.argv[1:]))")
    r = subprocess.run([sys.executable, "-c", code, "explain", "--figures", str(tmp_path / "f")],
                       capture_output=True, text=True)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1
    assert "pip install 'bptt[plot]'" in r.stderr and os.listdir(tmp_path) == []
