"""Training: batches or streams, any cell, any optimiser, checkpoints that resume exactly.

Two modes:
- batch mode (default): each step draws B sequences (deterministically from ``[seed, 1, step]``) and
  back-propagates through them whole (or with per-term truncation ``truncate=k``);
- stream mode (``tbptt=(k1, k2)``, Williams & Peng 1990): one long stream per batch row; each step
  moves k1 steps on, back-propagates the losses of those k1 newest steps through the k2 newest states
  (the state before them is a constant), then updates. The state at the window start is carried
  across steps; the window's states are recomputed with the current parameters.

Everything a step needs is a pure function of (parameters, optimiser state, step, carried state), so a
checkpoint of those resumes bit for bit, and an interrupted run loses nothing.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import shlex
import signal
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np

from . import files, io, optim, rundir, schema, train_step
from .config import TrainConfig, to_toml, utf8
from .errors import InputError, Interrupted, ModelFileError
from .network import Network

CKPT, MODEL, METRICS, CONFIG = "checkpoint.npz", "model.npz", "metrics.csv", "config.toml"
BASE_COLUMNS = ["step", "loss", "grad_norm", "lr", "seconds"]
TRACK_COLUMNS = ["effective_memory", "decay_rate", "spectral_radius"]
LOSS_LABEL = {"squared": "squared error per predicted step", "cross_entropy": "cross-entropy per predicted step (nats)"}


def build_task(cfg: TrainConfig):
    from .data import BUILTIN_TEXT, get_task, shipped

    kw = {}
    if cfg.length is not None:
        kw["delay" if cfg.task == "copy" else "length"] = cfg.length
    if cfg.task == "text":
        kw["path"] = shipped.resolve("text", cfg.data) or BUILTIN_TEXT
    elif cfg.task == "series":
        kw["path"] = shipped.resolve("series", cfg.data)
        if cfg.column is not None:
            kw["column"] = int(cfg.column) if cfg.column.lstrip("-").isdigit() else cfg.column
    elif cfg.data is not None:
        raise InputError(f"--data: the {cfg.task} task generates its own data; --data is for text and series")
    try:
        return get_task(cfg.task, **kw)
    except InputError as e:  # the data module names its own arguments: say which option is meant
        msg = shipped.cli_message(str(e))
        if cfg.task not in ("text", "series") or msg.startswith("length"):
            opt = "--length"
        else:
            opt = "--column" if "column" in msg and "cell" not in msg else "--data"
        raise InputError(f"{opt}: {msg}") from None


def build_net(cfg: TrainConfig, task) -> Network:
    from . import network

    g2 = cfg.g2 or ("softmax" if task.loss == "cross_entropy" else "identity")
    if task.loss == "cross_entropy" and g2 != "softmax":
        raise InputError(f"--g2: got {g2!r} for the {task.name} task, whose loss is cross_entropy; expected softmax "
                         "(or leave --g2 out)")
    if g2 == "softmax" and task.n_out == 1:
        raise InputError(f"--g2: got 'softmax' for the {task.name} task, whose loss is {task.loss} on 1 output "
                         "(a softmax over 1 output is always 1); expected another activation (or leave --g2 out)")
    common = dict(g2=g2, seed=cfg.seed, init=cfg.init, dtype=np.dtype(cfg.dtype), layers=cfg.layers)
    if cfg.cell == "elman":
        return network.Elman(task.n_in, cfg.hidden, task.n_out, g1=cfg.g1, **common)
    cls = getattr(network, cfg.cell.upper(), None)
    if cls is None:
        raise InputError(f"--cell: {cfg.cell} is not available in this build")
    if cfg.cell == "lstm":
        common["forget_bias"] = cfg.forget_bias
    return cls(task.n_in, cfg.hidden, task.n_out, **common)


def check_sizes(task, hidden: int = 0, layers: int = 1, batch: int = 0, heldout: int = 0, k2: int = 0) -> None:
    """Refuse, before anything is written, sizes whose arrays cannot fit in this machine's memory
    (a rough lower bound: inputs, states and gates of a batch, the held-out inputs, the weights)."""
    try:
        limit = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # not available on this platform
        return
    def need(T, batch, hidden, layers, heldout):
        return {"--length" if T > batch else "--batch": 8 * T * batch * (task.n_in + task.n_out + 4 * hidden * layers),
                "--heldout": 8 * T * heldout * task.n_in,
                "--hidden": 8 * 4 * hidden * (hidden + task.n_in) * layers}

    sizes = {"T": max(task.length, k2), "batch": batch, "hidden": hidden, "layers": layers, "heldout": heldout}
    opt, bytes_ = max(need(**sizes).items(), key=lambda kv: kv[1])
    if bytes_ > limit:
        # blame the first option that alone brings the need under the limit when set to 1 (--layers 200000
        # is a --layers problem even though the batch's states are the biggest array)
        names = {"layers": "--layers", "hidden": "--hidden", "heldout": "--heldout", "batch": "--batch",
                 "T": "--length"}
        for k, name in names.items():
            if sizes[k] > 1 and max(need(**dict(sizes, **{k: 1})).values()) <= limit:
                opt = name
                break
        raise InputError(f"{opt}: the arrays need at least {bytes_ / 2**30:.3g} GiB, more than this machine's "
                         f"{limit / 2**30:.3g} GiB of memory; expected a smaller {opt}")


def build_optimizer(cfg: TrainConfig):
    sched = optim.schedule(cfg.schedule, cfg.lr, cfg.steps)
    return optim.get(cfg.optimizer, sched)


# ---- carried state <-> arrays ----------------------------------------------------------------------
def _state_arrays(state) -> dict:
    if isinstance(state, dict):  # an online algorithm's state (bptt.online.train)
        return {f"online/{k}": v for k, v in state.items()}
    parts = state if isinstance(state, tuple) else (state,)
    return {f"carry/{k}": np.asarray(a) for k, a in enumerate(parts)}


def _state_from(arrays: dict):
    if any(k.startswith("online/") for k in arrays):
        return {k[7:]: v for k, v in arrays.items() if k.startswith("online/")}
    parts = [arrays[f"carry/{k}"] for k in range(len([a for a in arrays if a.startswith("carry/")]))]
    return parts[0] if len(parts) == 1 else tuple(parts)


class _Signals:
    """SIGINT/SIGTERM set a flag; the loop finishes its step, checkpoints and stops."""

    def __init__(self):
        self.caught = None

    def __enter__(self):
        self.old = {}
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self.old[sig] = signal.signal(sig, self._handler)
            except ValueError:  # not in the main thread
                pass
        return self

    def _handler(self, signum, frame):
        self.caught = signum

    def __exit__(self, *exc):
        for sig, h in self.old.items():
            signal.signal(sig, h)


class Window(NamedTuple):
    X: np.ndarray  # (n, B, I) the window's inputs, n <= k2
    D: np.ndarray  # its targets
    at: list  # window positions whose loss is back-propagated (the k1 newest, where the task has a loss)
    s0: object  # the carried state at the window's start (a constant: no gradient flows into it)
    E: float | None  # loss of those steps (None when none of them carries a loss)
    grads: object  # Gradients, or None
    next_carry: object  # the state where the next window starts


def stream_window(net, stream, tbptt, step: int, carry, loss: str) -> Window:
    """Step ``step`` of BPTT(k1, k2) (Williams & Peng 1990) on a stream.

    The window is the k2 newest positions [end-k2, end), end = (step+1)*k1 (clipped at 0); the losses of
    the k1 newest are back-propagated through the whole window from ``carry``, the state at its start.
    Returns the window's gradient and the state at the next window's start, end+k1-k2, computed before
    any update (with the weights this window used)."""
    k1, k2 = tbptt
    end = (step + 1) * k1
    start = max(0, end - k2)
    X, D, R, lmask = stream.window(start, end - start)
    at = [i for i in range(end - start) if start + i >= end - k1 and lmask[i]]
    nxt = max(0, end + k1 - k2)
    new_carry = carry if nxt == start else net.forward(X[: nxt - start], s0=carry, resets=R[: nxt - start]).state
    E = g = None
    if at:
        E, g = net.gradients(X, D, loss=loss, at=at, s0=carry, resets=R)
    return Window(X, D, at, carry, E, g, new_carry)


def _metrics_columns(cfg):
    return BASE_COLUMNS + (TRACK_COLUMNS if cfg.track_gradients else [])


def resolve_for_task(cfg: TrainConfig, task) -> TrainConfig:
    """``cfg`` with every value the run uses written out: the task's length (copy: its delay), the output
    activation, the evaluation interval (a tenth of the run unless given)."""
    length = task.delay if cfg.task == "copy" else task.length
    g2 = cfg.g2 or ("softmax" if task.loss == "cross_entropy" else "identity")
    every = max(1, cfg.steps // 10) if cfg.eval_every is None else cfg.eval_every
    return dataclasses.replace(cfg, length=length, g2=g2, eval_every=every)


def train(cfg: TrainConfig, out: str | os.PathLike, *, resume: bool = False, force: bool = False,
          quiet: bool = False, log=print, comm=None) -> dict:
    """Run (or resume) training into the folder ``out``. Returns the held-out evaluation.

    The folder belongs to this run while it trains (``bptt.rundir.lock``: a second writer is refused, naming
    this process's PID). A folder that already holds a run is refused unless ``resume`` (continue it from its
    checkpoint) or ``force`` (start over: its model, checkpoint, metrics and plot are replaced, and ``log`` says
    so). Everything (options, data, checkpoint) is checked before the first byte is written.

    ``comm``: the processes that train together (default :func:`bptt.comm.world`: this process alone,
    or the ranks of ``mpiexec -n R``, which split each step's batch; see :mod:`bptt.parallel`). Only
    its root takes the folder's lock, writes files and calls ``log``."""
    from .comm import world
    from .parallel import DataParallel, rank_blas_threads

    comm = comm or world()
    if cfg.online is not None and comm.size > 1:
        raise InputError(f"--online: online gradient algorithms train in one process; got {comm.size} MPI ranks. "
                         "Run without mpiexec, or use --tbptt K1 K2 (stream training, which MPI ranks split)")
    dp = DataParallel(comm, cfg.batch)
    log = comm.root_only(log)
    out = Path(utf8("--out", os.fspath(out)))
    if resume and force:
        raise InputError("--resume and --force: choose one (--resume continues the run in --out, --force replaces it)")
    task = build_task(cfg)
    check_sizes(task, cfg.hidden, cfg.layers, cfg.batch, cfg.heldout, cfg.tbptt[1] if cfg.tbptt else 0)
    cfg = resolve_for_task(cfg, task)
    if cfg.tensorboard:
        from .watch import check_tensorboard
        check_tensorboard()
    opt = build_optimizer(cfg)
    fresh = build_net(cfg, task)  # checks the options that shape the net (e.g. --g2) before the folder
    seen = _fingerprint(out)
    start = _starting_point(cfg, task, out, opt, fresh, resume=resume, force=force)
    # every option, input and checkpoint is checked by now: only from here on is the folder touched (by the root)
    with contextlib.ExitStack() as held:
        def take_folder():
            try:
                out.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise InputError(f"--out: cannot create folder {str(out)!r}: {e.strerror or e}") from None
            held.enter_context(rundir.lock(out))
            changed = _fingerprint(out) != seen
            if changed:  # another process changed the folder before we held it: check again
                _starting_point(cfg, task, out, opt, fresh, resume=resume, force=force)
            rundir.remove_stale_temps(out)  # temp files of a write that a kill -9 cut short
            if force:
                gone = rundir.replace_run(out)
                if gone:
                    log(f"--force: replaced the run that was in {str(out)!r} ({', '.join(gone)})")
            return changed

        if comm.on_root(take_folder, share=True):  # (a refusal on the root is every rank's error)
            start = _starting_point(cfg, task, out, opt, fresh, resume=resume, force=True)
        with rank_blas_threads(comm) as threads:  # ranks sharing cores: fewer BLAS threads each
            return _train_in(cfg, out, task, opt, start, quiet=quiet, log=log, comm=comm, dp=dp, threads=threads)


def _fingerprint(out: Path) -> tuple:
    """What the checks before the lock looked at: the run files' identity, size and time."""
    fp = []
    for name in rundir.RUN_FILES:
        try:
            st = (out / name).stat()
            fp.append((name, st.st_ino, st.st_size, st.st_mtime_ns))
        except OSError:
            fp.append((name, None))
    return tuple(fp)


class _Start(NamedTuple):
    net: Network
    opt_state: dict
    step: int
    elapsed: float
    carry: object
    note: str | None


def _starting_point(cfg: TrainConfig, task, out: Path, opt, net: Network, *, resume: bool, force: bool) -> _Start:
    """Read-only: refuse a folder holding another run, and for ``resume`` load and check the checkpoint
    (options, data) -> where training starts (``net``, freshly built, when not resuming)."""
    from . import resume as resuming

    rundir.refuse_existing_run(out, resume=resume, force=force)
    ckpt_path = out / CKPT
    if resume and ckpt_path.exists():
        net, arrays, meta, step, elapsed = load_resumable(ckpt_path)
        extension = resuming.check(cfg, meta["train"], step, out)
        check_same_data(meta.get("task"), task, ckpt_path)
        opt_state = optim.state_from_arrays({k[4:]: v for k, v in arrays.items() if k.startswith("opt/")})
        carry = _state_from(arrays) if any(k.startswith(("carry/", "online/")) for k in arrays) else None
        return _Start(net, opt_state, step, elapsed, carry,
                      f"resuming from step {step} ({ckpt_path})" + (f"; {extension}" if extension else ""))
    note = f"no checkpoint in {str(out)!r} yet: starting from the beginning" if resume else None
    return _Start(net, opt.init(net.params), 0, 0.0, None, note)


def load_resumable(ckpt_path) -> tuple[Network, dict, dict, int, float]:
    """A training checkpoint, every field checked: (net, arrays, meta, step, elapsed). Any problem is one
    ModelFileError naming the file and the field."""
    net, arrays, meta = files.load_checkpoint(ckpt_path)
    try:
        step, elapsed = schema.training_state(meta, arrays)
    except InputError as e:
        raise ModelFileError(f"cannot resume from checkpoint file {str(ckpt_path)!r}: {e}") from None
    return net, arrays, meta, step, elapsed


def check_same_data(saved: dict | None, task, ckpt_path) -> None:
    """Refuse to resume on data other than the checkpoint's: the text/series file's SHA-256 and the
    vocabulary must be the ones recorded when the run started (InputError naming the file and both)."""
    now = task.describe()
    if not isinstance(saved, dict):
        return
    src = now.get("path", "the data")
    if "sha256" in now and saved.get("sha256") != now["sha256"]:
        raise InputError(f"--resume: the data changed since the checkpoint {str(ckpt_path)!r}: {src!r} now has "
                         f"SHA-256 {now['sha256']}, the run started on {saved.get('sha256')}; resume with the "
                         "original file, or start over with --force or another --out")
    if "vocab" in now and saved.get("vocab") != now["vocab"]:
        raise InputError(f"--resume: the vocabulary of {src!r} changed since the checkpoint {str(ckpt_path)!r} "
                         f"({len(now['vocab'])} characters now, {len(saved.get('vocab') or '')} then); resume "
                         "with the original file, or start over with --force or another --out")


def gradient_loop(net, cfg: TrainConfig, task, batch: int) -> tuple[str, int]:
    """The gradient loop a step runs, (``backend_for``'s 'numba' or 'numpy', or 'online'), and the threads
    the compiled loops split a call over (``bptt.fast.threads_for``; 1 otherwise). ``batch``: this rank's
    share of the batch."""
    if getattr(cfg, "online", None):
        return "online", 1
    from .fast import backend_for, threads_for

    T = cfg.tbptt[1] if cfg.tbptt else task.length
    which = backend_for(net, batch, T=T, truncate=cfg.truncate, resets=True if cfg.tbptt else None)
    return which, (threads_for(net, batch, T) if which == "numba" else 1)


def _backend_line(net, cfg: TrainConfig, task, batch: int) -> str:
    """Which gradient loop a step runs (``batch``: this rank's share of the batch), for the first log line."""
    which, n = gradient_loop(net, cfg, task, batch)
    if which == "online":
        return f"gradients: online {cfg.online}"
    if which != "numba":
        return f"gradients: NumPy loop, {cfg.dtype}"
    return f"gradients: compiled numba loops{f' on {n} threads' if n > 1 else ''}, {cfg.dtype}"


def steps_split(net, cfg: TrainConfig, task, batch: int) -> bool:
    """Whether each step's gradient call splits its batch over threads of its own (``gradient_loop``). Then
    the loop keeps OpenBLAS on one thread (``one_blas_thread``): its idle workers would otherwise spin for
    ~100 ms after every multi-threaded NumPy product of the loop (the held-out evaluation's output layer,
    ...) on the cores the split needs."""
    return gradient_loop(net, cfg, task, batch)[1] > 1


def one_blas_thread(split: bool):
    """A context manager: OpenBLAS on one thread inside when ``split`` (``steps_split``), else nothing."""
    if not split:
        return contextlib.nullcontext()
    from .fast import blas

    return blas.single_threaded()


def _train_in(cfg: TrainConfig, out: Path, task, opt, start: _Start, *, quiet: bool, log, comm, dp,
              threads: str | None = None) -> dict:
    """The run itself, in a folder the root holds (validated; nothing refused from here on)."""
    from . import watch
    from .evaluate import evaluate

    from .data.tasks import with_path_from_run

    net, opt_state, step, elapsed, carry, note = start
    carry = None if carry is None else dp.local_state(carry)  # this rank's streams
    ckpt_path = out / CKPT
    task_meta = with_path_from_run(task.describe(), out)  # `bptt evaluate RUN` finds the data from anywhere
    heldout_cols = watch.heldout_columns(evaluate(net, task, n=1, seed=cfg.seed))  # names only: one sequence

    def open_sink():  # what a run reports: the root's alone (elsewhere a stand-in that does nothing)
        log(f"training {cfg.cell} (H={cfg.hidden}) on {cfg.task} for {cfg.steps} steps into {out}/"
            + (f" on {comm.size} MPI ranks" if comm.size > 1 else "") + (f", {threads}" if threads else "")
            + f" ({_backend_line(net, cfg, task, dp.b)})")
        if note:
            log(note)
        config_text = to_toml(cfg)
        io.atomic_write_bytes(out / CONFIG, config_text.encode(), what="config file")
        headline = watch.HELDOUT + watch.HEADLINE.get(task.name, "loss")
        return watch.Watch(out, _metrics_columns(cfg) + heldout_cols, total=cfg.steps, start=step, quiet=quiet,
                           log=log, log_every=cfg.log_every, headline=headline if headline in heldout_cols else None,
                           tensorboard=cfg.tensorboard, config_text=config_text).open(step if step else None)

    sink = comm.root_object(open_sink)

    stream = online = None
    if cfg.online is not None:  # online gradient algorithms on streams (bptt.online.train)
        from .online.train import OnlineStream
        online = OnlineStream(cfg, task, net)
        carry = online.init(net) if carry is None else carry
    elif cfg.tbptt is not None:
        stream = dp.stream(task, cfg.seed)
        if carry is None:
            carry = net.initial_state(dp.b)

    def checkpoint(at_step):
        dp.check_same(net.params, at_step, force=True)
        whole = dp.whole_state(carry) if carry is not None else None  # every rank's streams, in global order
        arrays = {f"opt/{k}": v for k, v in optim.state_to_arrays(opt_state).items()}
        if whole is not None:
            arrays.update(_state_arrays(whole))

        def save():
            sink.checkpoint()
            files.save_checkpoint(ckpt_path, net, arrays, {
                "task": task_meta, "train": cfg.to_dict(), "step": at_step,
                "elapsed": elapsed + (time.perf_counter() - t_start)})

        comm.on_root(save)

    tracker = None
    if cfg.track_gradients:
        from . import diagnostics
        tracker = diagnostics.tracked_metrics
    omega = None
    if cfg.omega:
        from . import diagnostics
        omega = diagnostics
    sampler = None
    if cfg.sample_every:
        from .sampling import sample_text

        def sampler(step):  # a short sample, the same for a resumed run
            return sample_text(net, 120, temperature=0.7, seed=step, vocab=task.data.vocab)
    result = None
    t_start = time.perf_counter()
    last_good = step if ckpt_path.exists() else None  # a fresh run has no checkpoint before its first one

    # overflow on the way to a NaN is reported once, as TrainingDiverged, not as numpy warnings
    split = steps_split(net, cfg, task, dp.b)  # then OpenBLAS on one thread while the steps run
    with sink, _Signals() as sigs, np.errstate(over="ignore", invalid="ignore"), one_blas_thread(split):
        codes = stream is None and train_step.uses_codes(task, cfg)  # integer inputs: a row lookup
        n_batch_loss = train_step.n_loss_steps(task)
        while step < cfg.steps:
            if online is not None:
                w = online.window(net, step, carry)
                X, D, at, s0, E, g, carry, n_loss = w
            elif stream is None:
                X, D = dp.columns(*train_step.batch_data(task, cfg, step, codes))  # this rank's share
                at, s0 = task.at, None
                E, g = net.gradients(X, D, loss=task.loss, at=at, truncate=cfg.truncate)
                n_loss = n_batch_loss
            else:
                w = stream_window(net, stream, cfg.tbptt, step, carry, task.loss)
                X, D, at, s0, E, g, carry = w.X, w.D, w.at, w.s0, w.E, w.grads, w.next_carry
                n_loss = len(at)
            step += 1
            if g is not None:
                g.pop("s0", None)
                if omega is not None:
                    _, og = omega.omega(net, X, D, loss=task.loss, at=at, s0=s0)
                    g = omega.add_omega(g, og, cfg.omega)
            E, g, stop = dp.reduce(E, g, sigs.caught)  # the whole batch's, on every rank (MPI: one allreduce)
            if g is not None:
                opt_state, norm, lr = train_step.update(net, g, E, opt, opt_state, cfg.clip, step=step,
                                                        lr_flag=cfg.lr, last_good=last_good, ckpt=ckpt_path)
                dp.check_same(net.params, step)
                loss = E / max(n_loss, 1)
                row = {"step": step, "loss": loss, "grad_norm": norm, "lr": lr,
                       "seconds": round(elapsed + time.perf_counter() - t_start, 3)}
                if tracker is not None and step % cfg.track_gradients == 0:
                    whole = dp.whole_batch(X, D, s0)  # (on the root) the measurement is not a sum over the batch
                    if whole is not None:
                        row.update(tracker(net, *whole[:2], loss=task.loss, at=(at if at is not None else -1),
                                           s0=whole[2]))
                if step == cfg.steps or (cfg.eval_every and step % cfg.eval_every == 0):
                    result = evaluate(net, task, n=cfg.heldout, seed=cfg.seed)
                    row.update(watch.heldout_values(result))
                sink.row(row)
                if sampler is not None and step % cfg.sample_every == 0:
                    sink.sample(step, sampler(step))
            if step % cfg.checkpoint_every == 0 or step == cfg.steps or stop:
                checkpoint(step)
                last_good = step
            if stop:  # a signal on any rank: every rank stops after the same step
                name = "SIGINT" if sigs.caught in (signal.SIGINT, None) else "SIGTERM"
                again = shlex.join(["bptt", "train", "--config", str(out / CONFIG), "--out", str(out), "--resume"])
                raise Interrupted(f"{name} at step {step}: checkpoint written to {str(ckpt_path)!r}; "
                                  f"resume with: {again}")
    elapsed += time.perf_counter() - t_start
    late = sigs.caught  # a signal during the last step's evaluation, after the loop's stop decision
    with _Signals() as sigs:  # a signal now: the checkpoint of the last step is written; stop cleanly
        sigs.caught = late
        if result is None:  # nothing left to train (a finished checkpoint): the same evaluation
            result = evaluate(net, task, n=cfg.heldout, seed=cfg.seed)
        if sigs.caught:
            raise Interrupted(f"{_signame(sigs.caught)} during the final evaluation: the checkpoint of step {step} is "
                              f"in {str(ckpt_path)!r}; finish (evaluate and write model.npz) with the same command and "
                              "--resume")

        def finish():
            files.save(net, out / MODEL, {"task": task_meta, "train": cfg.to_dict(), "heldout": result,
                                          "steps": step, "seconds": round(elapsed, 3)})
            if sigs.caught:
                raise Interrupted(f"{_signame(sigs.caught)} while saving: {str(out / MODEL)!r} was written whole; "
                                  "the run is complete (loss.png was not drawn)")
            if not watch.plot_loss(out, f"{task.name} task, {cfg.cell} (H={cfg.hidden})", LOSS_LABEL[task.loss]):
                sink.line(f"matplotlib is not installed: no loss.png (install it with: {watch.PLOT_INSTALL})")

        comm.on_root(finish)
    return result


def _signame(signum) -> str:
    return "SIGINT" if signum == signal.SIGINT else "SIGTERM"
