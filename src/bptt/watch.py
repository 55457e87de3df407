"""Watching a run: one object receives what training reports and fans it out.

``Watch`` gets, from the training loop, one row per step (training columns, and the held-out columns on
the steps that evaluated), the text samples, and a call at every checkpoint. It writes:

- ``DIR/metrics.csv``: one row per step; the held-out columns (``heldout_loss``, ``heldout_<metric>``)
  are empty between evaluations;
- the log (stderr): a progress bar redrawn in place when stderr is a terminal; otherwise plain lines
  (never ``\\r``), every ``log_every`` steps or every 30 s, plus one at each evaluation: step/total,
  loss, the held-out metric when it is fresh, steps/s, time left; ``quiet`` silences the log only;
- ``DIR/samples.txt``: each sample under a ``=== step N ===`` line (text models, ``sample_every``);
- ``DIR/tb/``: TensorBoard event files (``tensorboard``; needs the ``[tensorboard]`` extra, tensorboardX):
  every metrics.csv column as a scalar whose tag is the column's name, the samples as text (tag
  ``sample``) and the resolved config as text (tag ``config``).

Resume: rows and samples after the checkpoint's step are dropped (the resumed run redoes them), and
the TensorBoard log is rebuilt from metrics.csv and samples.txt into one new event file before the old
files are removed, so every step appears once in the event data whatever happened before (kill -9
included: the writer is flushed at every checkpoint, before the checkpoint is saved).

Only this object writes what a run reports; a data-parallel run lets one process own it.
"""

from __future__ import annotations

import csv
import io as _stdio
import math
import os
import re
import secrets
import sys
import time
from pathlib import Path

from . import io
from .errors import InputError

METRICS, SAMPLES, TB = "metrics.csv", "samples.txt", "tb"
HELDOUT = "heldout_"
LOG_SECONDS = 30.0
#: the figure a log line shows for each task's held-out evaluation
HEADLINE = {"text": "bpc", "series": "mse", "sine": "mse_after_burn_in", "adding": "solved", "copy": "solved",
            "order": "solved"}
TB_INSTALL = "pip install 'bptt[tensorboard]'"
PLOT_INSTALL = "pip install 'bptt[plot]'"


def heldout_columns(result: dict) -> list[str]:
    """metrics.csv columns of an evaluation result: the loss and the task's metrics (not its baselines,
    which do not change during training; the final evaluation in model.npz keeps them)."""
    keys = ["loss"] + [k for k in result if k not in ("loss", "sequences") and not k.startswith("baseline")]
    return [HELDOUT + k for k in keys]


def heldout_values(result: dict) -> dict:
    return {HELDOUT + k: v for k, v in result.items() if k != "sequences"}


def _fmt(v) -> str:
    if v is None or v == "":
        return ""
    if isinstance(v, str):
        return v
    if isinstance(v, int):
        return str(v)
    return f"{v:.9g}"


def _eta(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    s = int(round(seconds))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


def check_tensorboard() -> None:
    """Raise InputError (before anything is written) when the TensorBoard writer is not installed."""
    try:
        import tensorboardX  # noqa: F401
    except ImportError:
        raise InputError(f"--tensorboard: the TensorBoard writer (tensorboardX) is not installed; install it with: "
                         f"{TB_INSTALL}") from None


class _TensorBoard:
    """Event files under ``folder``, written by tensorboardX; one new file per start of the run."""

    def __init__(self, folder: Path, config_text: str, rows: list[dict], samples: list[tuple[int, str]]):
        from tensorboardX import SummaryWriter

        folder.mkdir(exist_ok=True)
        old = sorted(folder.glob("events.out.tfevents.*"))
        # a unique name: two starts within one second never share (and truncate) a file
        self.w = SummaryWriter(str(folder), flush_secs=10, filename_suffix=f".{os.getpid()}.{secrets.token_hex(4)}")
        self.w.add_text("config", "```\n" + config_text + "```", 0)
        for r in rows:
            self.row(r)
        for step, text in samples:
            self.sample(step, text)
        self.w.flush()
        for f in old:  # the history is in the new file now
            f.unlink(missing_ok=True)

    def row(self, row: dict) -> None:
        step = int(row["step"])
        for k, v in row.items():
            if k != "step" and v not in (None, ""):
                self.w.add_scalar(k, float(v), step)

    def sample(self, step: int, text: str) -> None:
        self.w.add_text("sample", "```\n" + text + "\n```", step)

    def flush(self) -> None:
        self.w.flush()

    def close(self) -> None:
        self.w.close()


class Watch:
    """The sink of a run's reports. ``columns``: metrics.csv's header (``step`` first)."""

    def __init__(self, out: Path, columns: list[str], *, total: int, start: int = 0, quiet: bool = False,
                 log=print, tty: bool | None = None, log_every: int = 0, headline: str | None = None,
                 tensorboard: bool = False, config_text: str = ""):
        self.out, self.columns, self.total, self.start = Path(out), list(columns), total, start
        self.quiet, self.log, self.log_every, self.headline = quiet, log, log_every, headline
        self.tty = sys.stderr.isatty() if tty is None else tty
        self.tensorboard, self.config_text = tensorboard, config_text
        self.t0 = self.last_line = self.last_draw = time.perf_counter()
        self.fresh = None  # (step, value) of the newest held-out headline figure
        self.bar = False
        self.mf = self.writer = self.tb = None

    # ---- opening: metrics.csv, samples.txt, tb/ -------------------------------------------------------
    def open(self, resume_step: int | None) -> "Watch":
        """Fresh run (``resume_step`` None): header only, no samples, a new TensorBoard log. Resume: keep
        what was recorded up to ``resume_step``, drop the rest (atomically), rebuild the TensorBoard log."""
        rows = self._kept_rows(resume_step)
        text = ",".join(self.columns) + "\n" + "".join(",".join(r[c] for c in self.columns) + "\n" for r in rows)
        io.atomic_write_bytes(self.out / METRICS, text.encode(), what="metrics file")
        samples = self._kept_samples(resume_step)
        if samples or (self.out / SAMPLES).exists():
            io.atomic_write_bytes(self.out / SAMPLES, "".join(_sample_block(s, t) for s, t in samples).encode(),
                                  what="samples file")
        if self.tensorboard:
            self.tb = _TensorBoard(self.out / TB, self.config_text, rows, samples)
        self.mf = open(self.out / METRICS, "a", newline="")
        self.writer = csv.writer(self.mf)
        return self

    def _kept_rows(self, resume_step):
        path = self.out / METRICS
        if resume_step is None or not path.exists():
            return []
        with open(path, newline="") as f:
            reader = csv.reader(f)
            header = next(reader, None) or []
            rows = []
            for r in reader:  # a column this run does not have (an older layout) is left out, a new one empty
                if r and r[0].isdigit() and int(r[0]) <= resume_step and len(r) == len(header):
                    d = dict(zip(header, r))
                    rows.append({c: d.get(c, "") for c in self.columns})
        return rows

    def _kept_samples(self, resume_step) -> list[tuple[int, str]]:
        path = self.out / SAMPLES
        if resume_step is None or not path.exists():
            return []
        return [(s, t) for s, t in read_samples(path) if s <= resume_step]

    # ---- what the loop reports ---------------------------------------------------------------------------
    def row(self, values: dict) -> None:
        """One step's row: ``values`` maps column names to numbers (missing columns are empty)."""
        step = int(values["step"])
        cells = [_fmt(values.get(c)) for c in self.columns]
        self.writer.writerow(cells)
        self.mf.flush()
        if self.tb is not None:
            self.tb.row(dict(zip(self.columns, cells)))
        evaluated = self.headline is not None and values.get(self.headline) not in (None, "")
        if evaluated:
            self.fresh = (step, float(values[self.headline]))
        self._report(step, float(values["loss"]), evaluated)

    def sample(self, step: int, text: str) -> None:
        with open(self.out / SAMPLES, "a", encoding="utf-8") as f:
            f.write(_sample_block(step, text))
        if self.tb is not None:
            self.tb.sample(step, text)
        self.line(f"sample at step {step}: {text!r}")

    def checkpoint(self) -> None:
        """Before a checkpoint is saved: everything up to this step is on disk."""
        self.mf.flush()
        if self.tb is not None:
            self.tb.flush()

    def line(self, text: str) -> None:
        """A plain line in the log (above the progress bar on a terminal)."""
        if self.quiet:
            return
        if self.bar:
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()
            self.bar = False
        self.log(text)

    def __enter__(self) -> "Watch":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self.bar:
            sys.stderr.write("\n")
            sys.stderr.flush()
            self.bar = False
        for f in (self.mf, self.tb):
            if f is not None:
                f.close()
        self.mf = self.tb = None

    # ---- the log -------------------------------------------------------------------------------------------
    def status(self, step: int, loss: float) -> str:
        now = time.perf_counter()
        rate = (step - self.start) / max(now - self.t0, 1e-9)
        eta = (self.total - step) / rate if rate > 0 else float("inf")
        held = ""
        if self.fresh is not None:
            s, v = self.fresh
            name = self.headline[len(HELDOUT):]
            held = f" | held-out {name} {v:.4g}" + (f" (step {s})" if s != step else "")
        return f"step {step}/{self.total} loss {loss:.4g}{held} | {rate:.1f} steps/s, {_eta(eta)} left"

    def _report(self, step: int, loss: float, evaluated: bool) -> None:
        if self.quiet:
            return
        now = time.perf_counter()
        if self.tty:
            if evaluated:
                self.line(self.status(step, loss))
            if now - self.last_draw >= 0.1 or step >= self.total:  # at most ten redraws a second
                self.last_draw = now
                bar = "#" * int(30 * step / self.total)
                sys.stderr.write(f"\r[{bar:<30}] {self.status(step, loss)} ")
                sys.stderr.flush()
                self.bar = True
            return
        due = (step % self.log_every == 0) if self.log_every else (now - self.last_line >= LOG_SECONDS)
        if evaluated or due or step >= self.total:
            self.last_line = now
            self.log(self.status(step, loss))


def _sample_block(step: int, text: str) -> str:
    return f"=== step {step} ===\n{text}\n\n"


def read_samples(path) -> list[tuple[int, str]]:
    """[(step, text)] from a samples.txt."""
    with open(path, encoding="utf-8") as f:
        parts = re.split(r"^=== step (\d+) ===\n", f.read(), flags=re.M)
    return [(int(step), text[:-2] if text.endswith("\n\n") else text.rstrip("\n"))
            for step, text in zip(parts[1::2], parts[2::2])]


def plot_loss(out: Path, title: str, ylabel: str) -> bool:
    """loss.png from metrics.csv: the training loss and, where evaluated, the held-out loss. False when
    matplotlib is not installed (the [plot] extra)."""
    try:
        import matplotlib
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        return False
    del matplotlib
    steps, losses, hs, hl = [], [], [], []
    with open(out / METRICS, newline="") as f:
        for r in csv.DictReader(f):
            steps.append(int(r["step"]))
            losses.append(float(r["loss"]))
            if r.get(HELDOUT + "loss"):
                hs.append(int(r["step"]))
                hl.append(float(r[HELDOUT + "loss"]))
    if not steps:
        return True
    fig = Figure(figsize=(6, 3.5), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.plot(steps, losses, lw=1, label="training (each step's batch)")
    if hs:
        ax.plot(hs, hl, "o-", lw=1.5, ms=4, label="held-out data")
    ax.set_xlabel("step")
    ax.set_ylabel(ylabel)
    ax.set_yscale("log")
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    buf = _stdio.BytesIO()
    fig.savefig(buf, format="png")
    io.atomic_write_bytes(out / "loss.png", buf.getvalue(), what="plot")
    return True
