"""bptt train TASK --out DIR: train a network, with checkpoints that resume exactly."""

from __future__ import annotations

import sys

from .. import config as C

HELP_TASKS = ("adding (default), sine, copy, order, text (--data FILE; default: the shipped docs text), "
              "series (--data FILE, or the shipped --data airline)")


def add_parser(sub):
    from ..data import shipped

    p = sub.add_parser("train", help="train a network on a task",
                       description=__doc__ + "\nTasks: " + HELP_TASKS + ".\nShipped data: " + shipped.listing() + ".")
    p.add_argument("task", nargs="?", default=None, choices=["adding", "sine", "copy", "order", "text", "series"],
                   help="the task (default: adding)")
    p.add_argument("--out", default=None, help="output folder (default: runs/TASK)")
    p.add_argument("--config", default=None, help="TOML file whose keys are the long option names")
    p.add_argument("--resume", action="store_true", help="continue from DIR/checkpoint.npz if there is one")
    p.add_argument("--force", action="store_true",
                   help="start over in an --out that holds a run, replacing its model, checkpoint and metrics")
    p.add_argument("--quiet", action="store_true", help="no progress bar or log lines, no summary")
    a = p.add_argument
    d = C.default_help  # every "default ..." below comes from the config's tables
    a("--data", help="text or series file (text: any UTF-8 file; series: CSV or .npy), or shipped data by name: "
      "airline (series), docs (text)")
    a("--column", help="series column (name or 0-based index)")
    a("--cell", help=f"elman, lstm or gru ({d('cell')})")
    a("--hidden", type=int, help=f"hidden units H ({d('hidden')})")
    a("--layers", type=int, help=f"stacked layers ({d('layers')})")
    a("--g1", help=f"Elman hidden activation: tanh, sigmoid, relu, identity ({d('g1')})")
    a("--g2", help="output activation (default: softmax for classification tasks, else identity)")
    a("--init", help=f"uniform, orthogonal or identity (IRNN) ({d('init')})")
    a("--forget-bias", type=float, help=f"LSTM forget-gate bias at init ({d('forget_bias')}, as Jozefowicz et al. "
      "2015 recommend; the Python API's bptt.LSTM defaults to 0.0, PyTorch's init)")
    a("--steps", type=int, help=f"optimiser steps (in --tbptt mode: chunks of K1 time steps; {d('steps')})")
    a("--batch", type=int, help=f"sequences (or parallel streams) per step ({d('batch')})")
    a("--length", type=int, help=f"sequence length T (copy: the delay; {d('length')})")
    a("--tbptt", type=int, nargs=2, metavar=("K1", "K2"),
      help="stream training, BPTT(K1, K2): every K1 steps back-propagate the K1 newest losses through K2 states")
    a("--truncate", type=int, help="per-term truncation: each E_t back-propagates through at most K steps")
    a("--online", metavar="ALG", help="online gradient on streams: rtrl, snap1, snap2, uoro, kf-rtrl (elman), artbp")
    a("--online-every", type=int, metavar="K", help="with --online: update the weights every K stream steps (default 1)")
    a("--optimizer", help=f"sgd, momentum, nesterov, adagrad, rmsprop, adam, adamw ({d('optimizer')})")
    a("--lr", type=float, help=f"learning rate ({d('lr')})")
    a("--schedule", help=f"constant, step, cosine, warmup-cosine ({d('schedule')})")
    a("--clip", type=float, help=f"clip the gradient's global norm to this (0 = off; {d('clip')})")
    a("--seed", type=int, help=f"seed of the initial weights and of the data ({d('seed')})")
    a("--dtype", help=f"float32 (as PyTorch, Keras and JAX train) or float64 ({d('dtype')})")
    a("--checkpoint-every", type=int, help=f"steps between checkpoints ({d('checkpoint_every')})")
    a("--track-gradients", type=int, metavar="EVERY",
      help="record effective memory, decay rate and spectral radius in metrics.csv every EVERY steps")
    a("--omega", type=float, metavar="LAMBDA", help="Pascanu et al. 2013 regulariser weight (Elman)")
    a("--heldout", type=int, help=f"held-out sequences of each evaluation ({d('heldout')})")
    w = p.add_argument_group("watching the run")
    w.add_argument("--eval-every", type=int, metavar="N", help="evaluate on the task's held-out data every N steps "
                   "(loss and the task's metric, in metrics.csv and loss.png; default: a tenth of the run; 0: at "
                   "the end only)")
    w.add_argument("--sample-every", type=int, metavar="N", help="text task: a short sample every N steps, in the "
                   "log and in DIR/samples.txt (" + d("sample_every") + ": none)")
    w.add_argument("--log-every", type=int, metavar="N", help="when stderr is not a terminal (a log file, CI): a "
                   "line every N steps (" + d("log_every") + ": every 30 seconds, and at each evaluation)")
    w.add_argument("--tensorboard", action="store_true", default=None, help="write TensorBoard event files under "
                   "DIR/tb/ (needs: pip install 'bptt[tensorboard]'; view: tensorboard --logdir runs)")
    p.set_defaults(run=run)


def run(args) -> int:
    from ..comm import world
    from ..train import train
    from . import show

    flags = {k: getattr(args, k) for k in C.FIELDS if hasattr(args, k)}
    if flags.get("tbptt") is not None:
        flags["tbptt"] = tuple(flags["tbptt"])
    file_values = C.read_toml(args.config) if args.config else {}
    cfg = C.resolve(file_values, flags)
    out = args.out or f"runs/{cfg.task}"
    say = (lambda *a, **k: None) if args.quiet else (lambda *a, **k: print(*a, **k, file=sys.stderr))
    result = train(cfg, out, resume=args.resume, force=args.force, quiet=args.quiet, log=say)
    if not args.quiet:
        world().root_only(show.summary)(out, result)  # under mpiexec: rank 0 prints
    return 0
