import subprocess
import sys

import pytest

from bptt.cli import main


def test_explain_walks_through_the_seed(capsys):
    assert main(["explain"]) == 0
    out = capsys.readouterr().out
    for text in ("E_3 = (d_3 - Y_3)^2", "dY_3/dS_2", "W_V", "dS_3/dS_2 . dS_2/dS_1 . dS_1/dWs",
                 "central finite differences", "dE_N/dW_X"):
        assert text in out, text
    # every reported relative error is small
    errs = [float(line.split("rel. err. ")[1].split(")")[0].split()[0].rstrip(":"))
            for line in out.splitlines() if "rel. err. " in line]
    assert len(errs) >= 9 and max(errs) < 1e-8


@pytest.mark.parametrize("argv", [["--version"], ["--help"], ["explain", "--help"]])
def test_version_and_help(argv):
    r = subprocess.run([sys.executable, "-m", "bptt", *argv], capture_output=True, text=True)
    assert r.returncode == 0 and "bptt" in r.stdout


def test_bad_usage_is_exit_2_one_line():
    r = subprocess.run([sys.executable, "-m", "bptt", "explain", "--g1", "swish"], capture_output=True, text=True)
    assert r.returncode == 2 and "swish" in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("flags,says", [(["--html", "page.html"], "--html: the page draws its figures with matplotlib"),
                                        (["--figures", "figs"], "--figures needs matplotlib")])
def test_explain_without_matplotlib_names_what_needs_it(tmp_path, monkeypatch, capsys, flags, says):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    assert main(["explain", *flags]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and says in err[0] and "pip install 'bptt[plot]'" in err[0]
    assert not any(tmp_path.iterdir())  # nothing written
