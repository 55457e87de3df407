"""A run folder belongs to one run: the lock, the refusal to replace a run, --force, and resume checks
that happen before anything is written."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import bptt
import bptt.train
from bptt import files, rundir
from bptt.cli import main
from bptt.config import resolve
from bptt.errors import InputError

SMALL = ["adding", "--length", "4", "--batch", "4", "--hidden", "4", "--heldout", "8", "--quiet"]


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def cli(argv, capsys):
    code = main(argv)
    out, err = capsys.readouterr()
    return code, err


# ---- the lock, in-process ------------------------------------------------------------------------
def test_lock_names_the_holder_and_is_not_reentrant(tmp_path):
    with rundir.lock(tmp_path) as p:
        assert p == tmp_path / ".lock" and p.read_text().strip() == str(os.getpid())
        assert rundir.holds(tmp_path) and rundir.holder(tmp_path) == os.getpid()
        with pytest.raises(rundir.FolderBusy, match=f"PID {os.getpid()}"):
            with rundir.lock(tmp_path):
                pass
        # another process is refused too, and told our PID
        code = ("import sys; from bptt import rundir\n"
                "try:\n    rundir.lock(sys.argv[1]).__enter__()\nexcept rundir.FolderBusy as e:\n"
                "    print(e.pid); sys.exit(3)\n")
        r = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, timeout=60)
        assert r.returncode == 3 and r.stdout.strip() == str(os.getpid()), r
    assert not rundir.holds(tmp_path) and rundir.holder(tmp_path) is None
    with rundir.lock(tmp_path):  # free again
        pass


def test_lock_missing_folder_is_input_error(tmp_path):
    with pytest.raises(InputError, match="cannot lock run folder"):
        with rundir.lock(tmp_path / "nope"):
            pass


def test_stale_temps_removed_only_under_the_lock(tmp_path):
    tmp = tmp_path / ".model.npz.tmp-123-abc"
    tmp.write_bytes(b"half")
    with pytest.raises(RuntimeError, match="without holding"):
        rundir.remove_stale_temps(tmp_path)
    assert tmp.exists()
    with rundir.lock(tmp_path):
        assert rundir.remove_stale_temps(tmp_path) == [tmp]
    assert not tmp.exists()


# ---- the lock across processes: a second writer while the first runs, and after kill -9 -------------
def _wait_for_holder(out: Path, proc, timeout=60.0) -> None:
    """Until ``proc`` holds the lock and has written its first checkpoint (its start-up is over)."""
    t0 = time.monotonic()
    while rundir.holder(out) != proc.pid or not (out / "checkpoint.npz").exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() - t0 < timeout, "the first run never took the lock"
        time.sleep(0.05)


def test_second_writer_refused_then_kill9_frees_the_folder(tmp_path):
    out = tmp_path / "run"
    first = subprocess.Popen([sys.executable, "-m", "bptt", "train", *SMALL, "--steps", "10000000",
                              "--checkpoint-every", "50", "--out", str(out)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        _wait_for_holder(out, first)
        # the holder removes stale temps right after taking the lock: wait until it trains (a metrics row),
        # so that the temp file below is one it left alone, not one it had not cleaned up yet
        t0 = time.monotonic()
        while not (out / "metrics.csv").exists() or len((out / "metrics.csv").read_text().splitlines()) < 2:
            assert first.poll() is None, first.communicate()
            assert time.monotonic() - t0 < 120, "the first run never wrote a metrics row"
            time.sleep(0.05)
        # a temp file of the live writer: a second process must not remove it
        live_tmp = out / f".checkpoint.npz.tmp-{first.pid}-feedbeef"
        live_tmp.write_bytes(b"in progress")
        for extra in (["--resume"], ["--force"], []):
            r = subprocess.run([sys.executable, "-m", "bptt", "train", *SMALL, "--steps", "5", "--out", str(out),
                                *extra], capture_output=True, text=True, timeout=120)
            assert r.returncode == 2, (extra, r.stderr)
            lines = r.stderr.splitlines()
            assert len(lines) == 1, r.stderr
            if extra:  # with no flag, the folder already holds the first run's metrics: that is refused first
                assert f"PID {first.pid}" in lines[0] and "in use" in lines[0], lines
            else:
                assert "--resume" in lines[0] and "--force" in lines[0], lines
            assert live_tmp.exists()
        assert first.poll() is None
    finally:
        first.kill()
        first.wait()
    assert first.returncode == -signal.SIGKILL
    assert rundir.holder(out) is None  # the kernel dropped the lock with the process
    r = subprocess.run([sys.executable, "-m", "bptt", "train", *SMALL, "--steps", "5", "--out", str(out), "--resume"],
                       capture_output=True, text=True, timeout=120)
    # the killed run was asked for 10000000 steps: resuming needs the same options except --steps
    assert r.returncode == 0, r.stderr
    assert not live_tmp.exists()  # stale now: removed under the new holder's lock
    assert (out / "model.npz").exists()


# ---- one run per folder: refusal and --force -----------------------------------------------------
def test_second_train_refused_and_nothing_changes(tmp_path, capsys):
    out = tmp_path / "r"
    assert main(["train", *SMALL, "--steps", "6", "--out", str(out)]) == 0
    before = snapshot(tmp_path)
    capsys.readouterr()
    code, err = cli(["train", *SMALL, "--steps", "2", "--out", str(out)], capsys)
    assert code == 2 and len(err.splitlines()) == 1
    for w in ("already holds a run", "model.npz", "--resume", "--force", "another --out"):
        assert w in err, (w, err)
    assert snapshot(tmp_path) == before


def test_default_out_is_protected_too(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["train", *SMALL, "--steps", "3"]) == 0
    before = snapshot(tmp_path)
    code, err = cli(["train", *SMALL, "--steps", "3"], capsys)
    assert code == 2 and "runs/adding" in err and snapshot(tmp_path) == before


def test_force_replaces_and_says_what(tmp_path, capsys):
    out = tmp_path / "r"
    assert main(["train", *SMALL, "--steps", "6", "--out", str(out)]) == 0
    (out / ".metrics.csv.tmp-1-dead").write_bytes(b"stale")
    capsys.readouterr()
    code = main(["train", "adding", "--length", "4", "--batch", "4", "--hidden", "4", "--heldout", "8",
                 "--steps", "2", "--out", str(out), "--force"])
    out_, err = capsys.readouterr()
    assert code == 0
    assert "--force: replaced the run" in err and "model.npz" in err and "checkpoint.npz" in err
    assert bptt.load(out / "model.npz").meta["steps"] == 2
    assert files.load_checkpoint(out / "checkpoint.npz")[2]["step"] == 2
    rows = (out / "metrics.csv").read_text().splitlines()
    assert [r.split(",")[0] for r in rows[1:]] == ["1", "2"]
    assert not (out / ".metrics.csv.tmp-1-dead").exists()


def test_resume_and_force_together_refused(tmp_path, capsys):
    code, err = cli(["train", *SMALL, "--steps", "2", "--out", str(tmp_path / "r"), "--resume", "--force"], capsys)
    assert code == 2 and "--resume" in err and "--force" in err and not (tmp_path / "r").exists()


def test_resume_a_finished_run_without_checkpoint_refused(tmp_path, capsys):
    out = tmp_path / "r"
    assert main(["train", *SMALL, "--steps", "3", "--out", str(out)]) == 0
    (out / "checkpoint.npz").unlink()
    before = snapshot(tmp_path)
    code, err = cli(["train", *SMALL, "--steps", "3", "--out", str(out), "--resume"], capsys)
    assert code == 2 and "no checkpoint.npz" in err and "--force" in err and snapshot(tmp_path) == before


def test_api_train_force(tmp_path):
    cfg = resolve({}, {"task": "adding", "length": 4, "batch": 4, "hidden": 4, "heldout": 8, "steps": 2})
    out = tmp_path / "r"
    bptt.train.train(cfg, out, quiet=True, log=lambda *a: None)
    with pytest.raises(InputError, match="already holds a run"):
        bptt.train.train(cfg, out, quiet=True, log=lambda *a: None)
    said = []
    bptt.train.train(cfg, out, force=True, quiet=True, log=said.append)
    assert any("--force: replaced" in s for s in said)


# ---- resume on the data it started with -------------------------------------------------------------
TEXT = "the quick brown fox jumps over the lazy dog. " * 40


def _interrupted_run(tmp_path, kind):
    """A run of 3 steps (its checkpoint says step 3) that a resume with --steps 6 would continue."""
    if kind == "text":
        data = tmp_path / "t.txt"
        data.write_text(TEXT)
        args = ["text", "--data", str(data), "--length", "8"]
    else:
        data = tmp_path / "s.csv"
        data.write_text("v\n" + "".join(f"{np.sin(i / 3):.5f}\n" for i in range(80)))
        args = ["series", "--data", str(data), "--length", "6"]
    args += ["--batch", "4", "--hidden", "4", "--heldout", "8", "--quiet"]
    out = tmp_path / "r"
    assert main(["train", *args, "--steps", "3", "--out", str(out)]) == 0
    return data, args, out


@pytest.mark.parametrize("kind", ["text", "series"])
def test_resume_with_changed_data_refused_before_any_write(tmp_path, capsys, kind):
    data, args, out = _interrupted_run(tmp_path, kind)
    import hashlib
    old_sha = files.load_checkpoint(out / "checkpoint.npz")[2]["task"]["sha256"]
    if kind == "text":
        data.write_text(TEXT[::-1])  # same characters, shuffled order
        new_sha = hashlib.sha256(TEXT[::-1].encode()).hexdigest()
    else:
        data.write_text("v\n" + "".join(f"{np.cos(i / 3):.5f}\n" for i in range(80)))
        new_sha = None
    before = snapshot(tmp_path)
    capsys.readouterr()
    code, err = cli(["train", *args, "--steps", "6", "--out", str(out), "--resume"], capsys)
    assert code == 2 and len(err.splitlines()) == 1, err
    assert "data changed" in err and str(data) in err and old_sha in err, err
    if new_sha:
        assert new_sha in err
    assert snapshot(tmp_path) == before  # config.toml, metrics.csv, checkpoint: untouched


def test_resume_with_changed_vocabulary_refused(tmp_path, capsys):
    data, args, out = _interrupted_run(tmp_path, "text")
    net, arrays, meta = files.load_checkpoint(out / "checkpoint.npz")
    meta = {k: v for k, v in meta.items() if k != "network"}
    meta["task"] = dict(meta["task"], vocab=meta["task"]["vocab"].replace("z", "{"))  # sorted, one changed
    files.save_checkpoint(out / "checkpoint.npz", net, arrays, meta)
    before = snapshot(tmp_path)
    capsys.readouterr()
    code, err = cli(["train", *args, "--steps", "6", "--out", str(out), "--resume"], capsys)
    assert code == 2 and "vocabulary" in err and str(data) in err, err
    assert snapshot(tmp_path) == before


def test_resume_with_same_data_continues(tmp_path, capsys):
    data, args, out = _interrupted_run(tmp_path, "text")
    assert main(["train", *args, "--steps", "6", "--out", str(out), "--resume"]) == 0
    assert bptt.load(out / "model.npz").meta["steps"] == 6


# ---- evaluate RUN finds the data relative to the run folder ----------------------------------------
@pytest.mark.parametrize("kind", ["text", "series"])
def test_evaluate_from_another_directory(tmp_path, capsys, monkeypatch, kind):
    proj = tmp_path / "proj"
    proj.mkdir()
    monkeypatch.chdir(proj)
    if kind == "text":
        Path("t.txt").write_text(TEXT)
        args = ["text", "--data", "t.txt", "--length", "8"]
    else:
        Path("s.csv").write_text("v\n" + "".join(f"{np.sin(i / 3):.5f}\n" for i in range(80)))
        args = ["series", "--data", "s.csv", "--length", "6"]
    assert main(["train", *args, "--batch", "4", "--hidden", "4", "--heldout", "8", "--steps", "2", "--quiet",
                 "--out", "runs/r"]) == 0
    capsys.readouterr()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert main(["evaluate", str(proj / "runs" / "r"), "--heldout", "4", "--json"]) == 0
    assert capsys.readouterr().out.startswith("{")
    # the whole project moved: still found, relative to the run folder
    moved = tmp_path / "moved"
    proj.rename(moved)
    assert main(["evaluate", str(moved / "runs" / "r"), "--heldout", "4", "--json"]) == 0
    capsys.readouterr()
    # the data is gone: one line naming both places looked at and --data
    (moved / ("t.txt" if kind == "text" else "s.csv")).unlink()
    code, err = cli(["evaluate", str(moved / "runs" / "r"), "--heldout", "4"], capsys)
    assert code == 2 and len(err.splitlines()) == 1 and "not found" in err and "--data" in err, err
