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
    a("--data", help="text or series file (text: any UTF-8 file; series: CSV or .npy), or shipped data by name: "
      "airline (series), docs (text)")
    a("--column", help="series column (name or 0-based index)")
    a("--cell", help="elman, lstm or gru (default elman)")
    a("--hidden", type=int, help="hidden units H (default 32; text 128)")
    a("--layers", type=int, help="stacked layers (default 1)")
    a("--g1", help="Elman hidden activation: tanh, sigmoid, relu, identity (default tanh)")
    a("--g2", help="output activation (default: softmax for classification tasks, else identity)")
    a("--init", help="uniform, orthogonal or identity (IRNN) (default uniform)")
    a("--forget-bias", type=float, help="LSTM forget-gate bias at init (default 1.0, as Jozefowicz et al. 2015 "
      "recommend; the Python API's bptt.LSTM defaults to 0.0, PyTorch's init)")
    a("--steps", type=int, help="optimiser steps (in --tbptt mode: chunks of K1 time steps)")
    a("--batch", type=int, help="sequences (or parallel streams) per step")
    a("--length", type=int, help="sequence length T (copy: the delay)")
    a("--tbptt", type=int, nargs=2, metavar=("K1", "K2"),
      help="stream training, BPTT(K1, K2): every K1 steps back-propagate the K1 newest losses through K2 states")
    a("--truncate", type=int, help="per-term truncation: each E_t back-propagates through at most K steps")
    a("--online", metavar="ALG", help="online gradient on streams: rtrl, snap1, snap2, uoro, kf-rtrl (elman), artbp")
    a("--online-every", type=int, metavar="K", help="with --online: update the weights every K stream steps (default 1)")
    a("--optimizer", help="sgd, momentum, nesterov, adagrad, rmsprop, adam, adamw (default adam)")
    a("--lr", type=float, help="learning rate (default 0.01; text 0.003)")
    a("--schedule", help="constant, step, cosine, warmup-cosine")
    a("--clip", type=float, help="clip the gradient's global norm to this (0 = off; default 1.0)")
    a("--seed", type=int, help="seed of the initial weights and of the data (default 0)")
    a("--dtype", help="float32 (default, as PyTorch, Keras and JAX train) or float64")
    a("--checkpoint-every", type=int, help="steps between checkpoints (default 100)")
    a("--track-gradients", type=int, metavar="EVERY",
      help="record effective memory, decay rate and spectral radius in metrics.csv every EVERY steps")
    a("--omega", type=float, metavar="LAMBDA", help="Pascanu et al. 2013 regulariser weight (Elman)")
    a("--heldout", type=int, help="held-out sequences of each evaluation (default 512)")
    w = p.add_argument_group("watching the run")
    w.add_argument("--eval-every", type=int, metavar="N", help="evaluate on the task's held-out data every N steps "
                   "(loss and the task's metric, in metrics.csv and loss.png; default: a tenth of the run; 0: at "
                   "the end only)")
    w.add_argument("--sample-every", type=int, metavar="N", help="text task: a short sample every N steps, in the "
                   "log and in DIR/samples.txt (default 0: none)")
    w.add_argument("--log-every", type=int, metavar="N", help="when stderr is not a terminal (a log file, CI): a "
                   "line every N steps (default 0: every 30 seconds, and at each evaluation)")
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
