"""Bad input to the ``bptt`` command line, one table row each.

Every row runs ``bptt.cli.main(argv)`` in-process and checks: exit code 2, stderr exactly one line that
names the option (or file) and what was expected, no traceback, nothing on stdout, and nothing written:
every file under the test's folder (inputs, run folders, the --out folder, which for train rows is tried
both absent and holding a finished run) is byte for byte what it was, and no new file appeared (no
model.npz, no checkpoint, no ``.*.tmp-*`` left over). Bad input to the Python API is in test_validation.py.
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path
from typing import Callable, NamedTuple

import numpy as np
import pytest

from bptt.cli import main

TEXT = "the quick brown fox jumps over the lazy dog. " * 40
TINY = ["--steps", "3", "--hidden", "4", "--heldout", "8", "--quiet", "--checkpoint-every", "1"]


def series_csv(bad_cell: str | None = None) -> str:
    """80 rows of t,value,label; ``bad_cell`` replaces the value in data row 7."""
    rows = ["t,value,label"]
    for i in range(80):
        v = f"{100 + 10 * math.sin(i / 3) + 0.5 * i:.4f}"
        rows.append(f"{i},{bad_cell if (bad_cell is not None and i == 6) else v},x")
    return "\n".join(rows) + "\n"


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Tiny finished runs (3 steps, H = 4): {"adding", "text", "series"} -> folder."""
    root = tmp_path_factory.mktemp("runs")
    (root / "text.txt").write_text(TEXT, encoding="utf-8")
    (root / "series.csv").write_text(series_csv(), encoding="utf-8")
    argvs = {
        "adding": ["adding", "--length", "4", "--batch", "4"],
        "text": ["text", "--data", str(root / "text.txt"), "--length", "8", "--batch", "4"],
        "series": ["series", "--data", str(root / "series.csv"), "--column", "value", "--length", "6", "--batch", "4"],
    }
    out = {}
    for name, args in argvs.items():
        out[name] = root / name
        assert main(["train", *args, *TINY, "--out", str(out[name])]) == 0, name
        assert (out[name] / "model.npz").exists() and (out[name] / "checkpoint.npz").exists()
    return out


class Ctx:
    """What a row's argv is built from: input files and private copies of the trained runs, all under tmp."""

    def __init__(self, tmp: Path, runs: dict):
        self.tmp, self.runs = tmp, runs
        self.out = str(tmp / "out")

    def file(self, name: str, data: str | bytes) -> str:
        p = self.tmp / "in" / name
        p.parent.mkdir(exist_ok=True)
        p.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))
        return str(p)

    def npy(self, name: str, a: np.ndarray) -> str:
        p = self.tmp / "in" / name
        p.parent.mkdir(exist_ok=True)
        np.save(p, a)
        return str(p)

    def run(self, kind: str) -> str:
        dst = self.tmp / kind
        if not dst.exists():
            shutil.copytree(self.runs[kind], dst)
        return str(dst)

    def csv(self) -> str:
        return self.file("series.csv", series_csv())

    def text(self) -> str:
        return self.file("text.txt", TEXT)


def train(*args: str) -> Callable[[Ctx], list[str]]:
    """argv of `bptt train` with small sizes first (so a row that wrongly succeeds is still quick);
    the row's own options come after and win."""
    return lambda c: ["train", "--steps", "2", "--hidden", "3", "--batch", "2", "--heldout", "4",
                      "--out", c.out, *_args(c, args)]


def _args(c: Ctx, args) -> list[str]:
    return [a(c) if callable(a) else a for a in args]


def on(command: str, kind: str, *args) -> Callable[[Ctx], list[str]]:
    """argv of ``bptt COMMAND RUN ...`` on a private copy of the trained run ``kind``."""
    return lambda c: [command, c.run(kind), *_args(c, args)]


def diagnose(*args) -> Callable[[Ctx], list[str]]:
    return lambda c: ["diagnose", *_args(c, args), "--out", str(c.tmp / "d")]


def toml(text: str | bytes, *extra: str) -> Callable[[Ctx], list[str]]:
    """`bptt train --config FILE` with only the file's values (no size flags: they would override it)."""
    return lambda c: ["train", "--config", c.file("run.toml", text), "--out", c.out, *extra]


class Case(NamedTuple):
    id: str
    argv: Callable[[Ctx], list[str]]
    words: list[str]  # every one must occur in the stderr line
    modes: tuple[str, ...] = ("out-absent",)  # train rows: also with --out holding a finished run


T2 = ("out-absent", "out-has-run")  # train rows run twice
csv_ = lambda c: c.csv()  # noqa: E731
text_ = lambda c: c.text()  # noqa: E731

CASES = [
    # ---- train: data files
    Case("empty text --data", train("text", "--data", lambda c: c.file("e.txt", b"")), ["--data", "empty"], T2),
    Case("NUL bytes in --data", train("text", "--data", lambda c: c.file("b.bin", b"ab\x00cd" * 50)),
         ["--data", "NUL", "UTF-8"], T2),
    Case("invalid UTF-8 --data", train("text", "--data", lambda c: c.file("l.txt", "café".encode("latin-1") * 50)),
         ["--data", "not valid UTF-8"], T2),
    Case("missing --data", train("text", "--data", lambda c: str(c.tmp / "nope.txt")), ["--data", "does not exist"],
         T2),
    Case("--data is a folder", train("text", "--data", lambda c: str(c.tmp)), ["--data", "not a file"]),
    Case("text too short for --length", train("text", "--data", text_, "--length", "5000"),
         ["--length", "5000", "shorter"], T2),
    Case("series without --data", train("series"), ["--data", "series", "CSV"], T2),
    Case("unknown --column", train("series", "--data", csv_, "--column", "price"),
         ["--column", "price", "'t', 'value', 'label'"], T2),
    Case("--column index out of range", train("series", "--data", csv_, "--column", "7"), ["--column", "7"]),
    Case("non-numeric CSV cell", train("series", "--data", lambda c: c.file("s.csv", series_csv("n/a")),
                                       "--column", "value"), ["--data", "row 8", "'n/a'", "finite number"], T2),
    Case("NaN CSV cell", train("series", "--data", lambda c: c.file("s.csv", series_csv("nan")), "--column", "value"),
         ["--data", "'nan'", "finite number"]),
    Case("binary CSV", train("series", "--data", lambda c: c.file("s.csv", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")),
         ["--data", "not valid UTF-8"]),
    Case("empty CSV", train("series", "--data", lambda c: c.file("s.csv", b"")), ["--data", "no data rows"]),
    Case("CSV header only", train("series", "--data", lambda c: c.file("s.csv", "t,value\n")),
         ["--data", "no data rows"]),
    Case("CSV ragged row", train("series", "--data", lambda c: c.file("s.csv", "a,b\n1,2\n3\n")),
         ["--data", "cells", "same number of columns"]),
    Case("CSV with two numeric columns, no --column",
         train("series", "--data", lambda c: c.file("s.csv", "a,b\n1,2\n3,4\n")),
         ["--column", "'a', 'b'"]),
    Case(".npy of strings", train("series", "--data", lambda c: c.npy("s.npy", np.array(["a", "b", "c"]))),
         ["--data", "numeric"]),
    Case(".npy 3-D", train("series", "--data", lambda c: c.npy("s.npy", np.zeros((4, 3, 2)))),
         ["--data", "1-D or 2-D"]),
    Case("constant series", train("series", "--data", lambda c: c.file("s.csv", "v\n" + "5\n" * 60)),
         ["--data", "constant"]),
    Case("--data for a synthetic task", train("adding", "--data", text_), ["--data", "adding", "text and series"], T2),
    Case("--column for a text task", train("text", "--data", text_, "--column", "value"), ["--column", "series"]),
    # ---- train: sizes and numbers
    Case("negative --hidden", train("--hidden", "-3"), ["--hidden", "-3", "integer >= 1"], T2),
    Case("zero --hidden", train("--hidden", "0"), ["--hidden", "integer >= 1"]),
    Case("non-integer --hidden", train("--hidden", "2.5"), ["--hidden", "invalid int value", "'2.5'"]),
    Case("--steps 0", train("--steps", "0"), ["--steps", "integer >= 1"], T2),
    Case("--batch 0", train("--batch", "0"), ["--batch", "integer >= 1"], T2),
    Case("--layers 0", train("--layers", "0"), ["--layers", "integer >= 1"]),
    Case("--length 1", train("adding", "--length", "1"), ["--length", "integer >= 2"], T2),
    Case("--heldout 0", train("--heldout", "0"), ["--heldout", "integer >= 1"]),
    Case("--checkpoint-every 0", train("--checkpoint-every", "0"), ["--checkpoint-every", "integer >= 1"]),
    Case("--seed -1", train("--seed", "-1"), ["--seed", "integer >= 0"]),
    Case("--track-gradients -1", train("--track-gradients", "-1"), ["--track-gradients", "integer >= 0"]),
    Case("--tbptt 5 3", train("--tbptt", "5", "3"), ["--tbptt", "K1=5", "K2=3", "K1 <= K2"], T2),
    Case("--tbptt 0 3", train("--tbptt", "0", "3"), ["--tbptt", "1 <= K1"]),
    Case("--tbptt one number", train("--tbptt", "5"), ["--tbptt", "expected 2 arguments"]),
    Case("--tbptt with --truncate", train("--tbptt", "3", "5", "--truncate", "2"),
         ["--truncate", "--tbptt", "choose one"], T2),
    Case("--truncate 0", train("--truncate", "0"), ["--truncate", "integer >= 1"]),
    Case("--lr 0", train("--lr", "0"), ["--lr", "> 0"], T2),
    Case("--lr -1", train("--lr", "-1"), ["--lr", "> 0"]),
    Case("--lr nan", train("--lr", "nan"), ["--lr", "nan", "finite number"], T2),
    Case("--lr inf", train("--lr", "inf"), ["--lr", "finite number"]),
    Case("--lr not a number", train("--lr", "fast"), ["--lr", "invalid float value", "'fast'"]),
    Case("--clip -1", train("--clip", "-1"), ["--clip", ">= 0"], T2),
    Case("--forget-bias nan", train("--cell", "lstm", "--forget-bias", "nan"), ["--forget-bias", "finite number"]),
    Case("--omega with lstm", train("--cell", "lstm", "--omega", "0.5"), ["--omega", "Elman", "lstm"], T2),
    Case("--omega -1", train("--omega", "-1"), ["--omega", ">= 0"]),
    # ---- train: names
    Case("unknown --cell", train("--cell", "rnn"), ["--cell", "'rnn'", "elman, lstm, gru"], T2),
    Case("unknown --optimizer", train("--optimizer", "adamax"), ["--optimizer", "'adamax'", "adam"], T2),
    Case("unknown --schedule", train("--schedule", "linear"), ["--schedule", "'linear'", "cosine"], T2),
    Case("unknown --init", train("--init", "xavier"), ["--init", "'xavier'", "orthogonal"], T2),
    Case("unknown --g1", train("--g1", "swish"), ["--g1", "'swish'", "tanh"], T2),
    Case("softmax as --g1", train("--g1", "softmax"), ["--g1", "softmax", "g2"]),
    Case("unknown --g2", train("--g2", "gelu"), ["--g2", "'gelu'", "identity"], T2),
    Case("--g2 identity for text", train("text", "--data", text_, "--g2", "identity"),
         ["--g2", "'identity'", "cross_entropy", "softmax"], T2),
    Case("--g2 softmax for adding", train("adding", "--g2", "softmax"), ["--g2", "'softmax'", "squared"]),
    Case("unknown --dtype", train("--dtype", "float16"), ["--dtype", "'float16'", "float64"], T2),
    Case("unknown task", train("regression"), ["task", "'regression'", "adding"]),
    Case("unknown option", train("--hiden=3"), ["unrecognized option --hiden", "--hidden?", "'bptt train --help'"]),
    # an unknown option followed by a value: named itself, not its value taken for the task
    Case("unknown option and value", train("--stepz", "5"), ["unrecognized option --stepz", "--steps?",
                                                             "'bptt train --help'"]),
    Case("unknown option of sample", on("sample", "text", "--temprature", "0"),
         ["unrecognized option --temprature", "--temperature?", "'bptt sample --help'"]),
    Case("unknown option of evaluate", on("evaluate", "adding", "--jsn"),
         ["unrecognized option --jsn", "--json?", "'bptt evaluate --help'"]),
    Case("--batch too large for memory", train("--batch", "1000000000"), ["--batch", "GiB", "smaller"], T2),
    Case("--hidden too large for memory", train("--hidden", "1000000000"), ["--hidden", "GiB", "smaller"]),
    Case("--heldout too large for memory", train("--heldout", "1000000000"), ["--heldout", "GiB", "smaller"]),
    # ---- train: config files
    Case("TOML syntax error", toml("hidden = \n"), ["--config", "not valid TOML"], T2),
    Case("TOML not UTF-8", toml(b"hidden = 3\n\xff\xfe\n"), ["--config", "not valid TOML"]),
    Case("TOML missing", lambda c: ["train", "--config", str(c.tmp / "none.toml"), "--out", c.out],
         ["--config", "does not exist"]),
    Case("TOML unknown key", toml("hiden = 3\n"), ["--config", "unknown key", "'hiden'", "hidden"], T2),
    Case("TOML table", toml("[model]\nhidden = 3\n"), ["--config", "unknown key", "'model'"]),
    Case("TOML hidden is a string", toml('hidden = "big"\n'), ["--hidden", "'big'", "integer"], T2),
    Case("TOML hidden is a bool", toml("hidden = true\n"), ["--hidden", "True", "integer"]),
    Case("TOML hidden is a float", toml("hidden = 3.0\n"), ["--hidden", "3.0", "integer"]),
    Case("TOML lr is a string", toml('lr = "fast"\n'), ["--lr", "'fast'", "number"]),
    Case("TOML tbptt is a number", toml("tbptt = 5\n"), ["--tbptt", "5", "two integers"]),
    Case("TOML tbptt of three", toml("tbptt = [1, 2, 3]\n"), ["--tbptt", "two integers"]),
    Case("TOML tbptt k2 < k1", toml("tbptt = [5, 3]\n"), ["--tbptt", "K1 <= K2"]),
    Case("TOML cell is a number", toml("cell = 3\n"), ["--cell", "3", "elman"]),
    Case("TOML task unknown", toml('task = "regression"\n'), ["task", "'regression'", "adding"]),
    Case("TOML data is a number", toml('task = "text"\ndata = 5\n'), ["--data", "5", "file"]),
    Case("TOML g1 is a list", toml('g1 = ["tanh"]\n'), ["--g1", "tanh"]),
    Case("TOML steps 0, flags valid", toml("steps = 0\n", "--hidden", "3"), ["--steps", "0", "integer >= 1"]),
    # ---- train: the output folder and resuming
    Case("--out under a regular file", lambda c: train("--out", c.file("f", "x") + "/run")(c),
         ["--out", "cannot create", "Not a directory"]),
    Case("--out is a regular file", lambda c: train("--out", c.file("f", "x"))(c), ["--out", "cannot create"]),
    Case("--resume with other options", lambda c: train("adding", "--length", "4", "--batch", "4", "--hidden", "7",
                                                        "--steps", "3", "--resume")(c),
         ["--resume", "--hidden", "4", "7", "same options", "--config", "config.toml"], ("out-has-run",)),
    # the task is positional: the message names it as the task, never as a --task option that does not exist
    Case("--resume with another task", lambda c: train("sine", "--length", "8", "--batch", "4", "--hidden", "4",
                                                       "--steps", "3", "--resume")(c),
         ["--resume", "the task 'adding'", "'sine'", "config.toml"], ("out-has-run",)),
    Case("--resume on a damaged checkpoint",
         train("adding", "--length", "4", "--batch", "4", "--hidden", "4", "--steps", "3", "--resume",
               lambda c: _damage(c.out, lambda b: b[:-100], "checkpoint.npz") and "--quiet"),
         ["checkpoint.npz", "cannot read checkpoint file"], ("out-has-run",)),
    # ---- train: run folders, hostile inputs (issue 9)
    Case("train over a finished run", train("adding"), ["--out", "already holds a run", "--resume", "--force",
                                                        "another --out"], ("out-has-run",)),
    Case("--resume with --force", train("--resume", "--force"), ["--resume", "--force", "choose one"], T2),
    Case("--resume: checkpoint step a string",
         train("adding", "--length", "4", "--batch", "4", "--hidden", "4", "--steps", "3", "--resume",
               lambda c: _ckpt_meta(c.out, step="3") and "--quiet"), ["checkpoint.npz", "step", "'3'"],
         ("out-has-run",)),
    Case("--resume: checkpoint elapsed missing",
         train("adding", "--length", "4", "--batch", "4", "--hidden", "4", "--steps", "3", "--resume",
               lambda c: _ckpt_meta(c.out, elapsed=None) and "--quiet"), ["checkpoint.npz", "elapsed", "missing"],
         ("out-has-run",)),
    Case("--resume: checkpoint train a list",
         train("adding", "--length", "4", "--batch", "4", "--hidden", "4", "--steps", "3", "--resume",
               lambda c: _ckpt_meta(c.out, train=[1]) and "--quiet"), ["checkpoint.npz", "train"],
         ("out-has-run",)),
    Case("series values near 1e200",
         train("series", "--data", lambda c: c.file("big.csv", "v\n" + "".join(f"{(-1) ** i * 1.5e200 + i * 1e198}\n"
                                                                               for i in range(80)))),
         ["--data", "too large to normalise", "rescale"], T2),
    Case("CSV empty cell in the only numeric-looking column",
         train("series", "--data", lambda c: c.file("s.csv", series_csv(""))), ["row 8", "'value'", "''"], T2),
    Case("CSV empty cell in --column",
         train("series", "--data", lambda c: c.file("s.csv", series_csv("")), "--column", "value"),
         ["row 8", "'value'", "not a finite number"]),
    Case("CSV quoted decimal commas",
         train("series", "--data", lambda c: c.file("s.csv", "t,value\n" + "".join(f'{i},"{i},5"\n' for i in range(60)))),
         ["row 2", "'value'", "decimal comma"], T2),
    Case("CSV one quoted decimal comma in --column",
         train("series", "--data", lambda c: c.file("s.csv", series_csv('"101,5"')), "--column", "value"),
         ["row 8", "'value'", "decimal comma"]),
    Case("non-UTF-8 --data name", train("text", "--data", lambda c: c.file("caf\udce9.txt", TEXT)),
         ["--data", "not valid UTF-8", "rename"], T2),
    Case("non-UTF-8 --out name", train("--out", lambda c: str(c.tmp / "r\udcff")), ["--out", "not valid UTF-8"]),
    Case("TOML nested 100000 deep", toml("hidden = " + "[" * 100_000 + "]" * 100_000 + "\n"),
         ["--config", "too deeply"], T2),
    Case("--layers 10**9 (blamed on --layers)", train("--layers", "1000000000"),
         ["--layers", "GiB", "smaller --layers"], T2),
    # ---- evaluate
    Case("evaluate: folder without model.npz", lambda c: ["evaluate", str(c.tmp)], ["model.npz", "bptt train"]),
    Case("evaluate: missing folder", lambda c: ["evaluate", str(c.tmp / "no-run")], ["'", "no-run", "model.npz"]),
    Case("evaluate: truncated model.npz",
         lambda c: ["evaluate", _damage(c.run("adding"), lambda b: b[: len(b) // 2])], ["model.npz", "truncated"]),
    Case("evaluate: bit-flipped model.npz",
         lambda c: ["evaluate", _damage(c.run("adding"), lambda b: b[:200] + bytes([b[200] ^ 0x10]) + b[201:])],
         ["model.npz", "cannot read model file"]),
    Case("evaluate: not an npz", lambda c: ["evaluate", c.file("model.npz", "hello")],
         ["model.npz", "not a bptt file"]),
    Case("evaluate: a checkpoint given as the model", lambda c: ["evaluate", c.run("adding") + "/checkpoint.npz"],
         ["checkpoint.npz", "expected a 'bptt-model' file"]),
    Case("evaluate --data: unseen characters",
         on("evaluate", "text", "--data", lambda c: c.file("z.txt", "Zebra! " * 30)),
         ["--data", "never saw", "'!'"]),
    Case("evaluate --data: empty", on("evaluate", "text", "--data", lambda c: c.file("e.txt", b"")),
         ["--data", "empty"]),
    Case("evaluate --data: binary", on("evaluate", "text", "--data", lambda c: c.file("b.bin", b"\x00\x01" * 40)),
         ["--data", "NUL"]),
    Case("evaluate --data: synthetic model", on("evaluate", "adding", "--data", text_),
         ["--data", "adding", "text and series"]),
    Case("evaluate --data: series lacks the column",
         on("evaluate", "series", "--data", lambda c: c.file("o.csv", "a,b\n" + "1,2\n" * 40)),
         ["--data", "'value'", "'a', 'b'"]),
    Case("evaluate --heldout too large", on("evaluate", "adding", "--heldout", "1000000000"),
         ["--heldout", "GiB", "smaller --heldout"]),
    Case("evaluate --seed -1", on("evaluate", "adding", "--seed", "-1"), ["--seed", ">= 0"]),
    Case("evaluate --heldout 0", on("evaluate", "adding", "--heldout", "0"), ["--heldout", "positive"]),
    # ---- sample
    Case("sample: unknown --prime character", on("sample", "text", "--prime", "the Zoo"),
         ["--prime", "'Z'", "position 4", "vocabulary"]),
    Case("sample: non-text model", on("sample", "adding"), ["adding task", "text model"]),
    Case("sample --temperature -1", on("sample", "text", "--temperature", "-1"), ["--temperature", ">= 0"]),
    Case("sample --temperature nan", on("sample", "text", "--temperature", "nan"), ["--temperature", "finite"]),
    Case("sample --length 0", on("sample", "text", "--length", "0"), ["--length", "positive"]),
    Case("sample --seed -1", on("sample", "text", "--seed", "-1"), ["--seed", ">= 0"]),
    # ---- predict
    Case("predict: non-series model", on("predict", "adding", "--data", csv_), ["adding task", "series model"]),
    Case("predict --horizon 0", on("predict", "series", "--data", csv_, "--horizon", "0"), ["--horizon", "positive"]),
    Case("predict unknown --column", on("predict", "series", "--column", "nope"), ["--column", "'nope'"]),
    Case("evaluate --column on a non-series model", on("evaluate", "adding", "--column", "x"),
         ["--column", "series models"]),
    Case("predict --data missing", on("predict", "series", "--data", lambda c: str(c.tmp / "no.csv")),
         ["--data", "does not exist"]),
    Case("predict --data non-numeric", on("predict", "series", "--data", lambda c: c.file("s.csv", series_csv("?"))),
         ["--data", "'?'", "finite number"]),
    # ---- diagnose
    Case("diagnose --length 0", diagnose("--length", "0"), ["--length", ">= 1"]),
    Case("diagnose --out is a folder", lambda c: ["diagnose", "--out", str(c.tmp)], ["--out", "is a folder"]),
    Case("diagnose unknown --cell", diagnose("--cell", "rnn"), ["--cell", "'rnn'"]),
    Case("diagnose bad --hidden", diagnose("--hidden", "8,x"), ["--hidden", "'x'"]),
    Case("diagnose unknown --g1", diagnose("--g1", "swish"), ["g1", "'swish'"]),
    Case("diagnose --fraction 2", diagnose("--fraction", "2"), ["--fraction", "between 0 and 1"]),
    Case("diagnose DIR with --cell", diagnose(lambda c: c.run("adding"), "--cell", "gru"), ["--cell", "fresh nets"]),
    Case("diagnose DIR without model", diagnose(lambda c: str(c.tmp)), ["no model here", "model.npz"]),
    Case("diagnose --data not an npz", diagnose("--data", text_), ["--data", ".npz"]),
    Case("diagnose --out under a file", lambda c: ["diagnose", "--out", str(Path(c.file("f.txt", "x")) / "d")],
         ["--out", "is a file"]),
    # ---- the command itself
    Case("unknown command", lambda c: ["fit"], ["invalid choice", "'fit'"]),
]


def _ckpt_meta(run: str, **fields) -> str:
    """Rewrite RUN/checkpoint.npz with meta fields changed (None: removed), bypassing the writer's checks."""
    from bptt import files
    from bptt import io as bio

    _, arrays, meta = files.load_checkpoint(Path(run) / "checkpoint.npz")
    net_arrays = {k: v for k, v in bio.read_npz(Path(run) / "checkpoint.npz")[0].items()}
    for k, v in fields.items():
        if v is None:
            meta.pop(k, None)
        else:
            meta[k] = v
    bio.write_npz(Path(run) / "checkpoint.npz", net_arrays, meta, kind="checkpoint")
    return run


def _damage(run: str, change, name: str = "model.npz") -> str:
    """Replace the bytes of RUN/NAME by change(bytes); returns RUN."""
    p = Path(run) / name
    p.write_bytes(change(p.read_bytes()))
    return run


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


ROWS = [pytest.param(case, mode, id=f"{case.id} [{mode}]" if len(case.modes) > 1 else case.id)
        for case in CASES for mode in case.modes]


@pytest.mark.parametrize(("case", "mode"), ROWS)
def test_bad_input(case, mode, runs, tmp_path, capsys):
    c = Ctx(tmp_path, runs)
    if mode == "out-has-run":
        shutil.copytree(runs["adding"], c.out)
    argv = case.argv(c)
    before = snapshot(tmp_path)
    try:
        code = main(argv)
    except SystemExit as e:  # argparse usage errors
        code = e.code
    out, err = capsys.readouterr()
    assert code == 2, err
    assert "Traceback" not in err
    assert err.endswith("\n") and len(err.splitlines()) == 1, err
    assert out == "", out
    for w in case.words:
        assert w in err, (w, err)
    after = snapshot(tmp_path)
    assert after == before, sorted(set(after) ^ set(before)) or "a file changed"
    assert not any(p.name.startswith(".") and ".tmp-" in p.name for p in tmp_path.rglob("*"))


def test_table_size():
    assert len(CASES) >= 40 and len(ROWS) > len(CASES)

