"""The ``bptt`` command line. Each command lives in ``bptt.commands.<name>`` with two functions:
``add_parser(subparsers)`` and ``run(args) -> int``. Exit codes: 0 success, 2 bad usage or bad input
(one line on stderr, no traceback), 130 after Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import importlib
import os
import sys

from ._version import __version__
from .errors import BPTTError, Interrupted, TrainingDiverged

# command name -> module in bptt.commands (imported lazily so `bptt --help` stays fast)
COMMANDS = ["explain", "train", "evaluate", "sample", "predict", "diagnose", "experiment", "bench"]


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # usage errors: one line, exit 2, named by the (sub)command: "bptt train: error: ..."
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")

    def parse_known_args(self, args=None, namespace=None):
        # A command's parser names an unknown option itself, before argparse reads its value as a
        # positional (`bptt train --stepz 5` said "argument task: invalid choice: '5'") or leaves it to
        # the top-level parser (which pointed at 'bptt --help' instead of the command's help).
        if self._subparsers is None and args is not None:
            known = [o for o in self._option_string_actions if o.startswith("--")]
            for arg in args:
                if arg == "--":
                    break
                name = arg.split("=", 1)[0]
                if name.startswith("--") and not any(o.startswith(name) for o in known):
                    close = difflib.get_close_matches(name, known, n=1, cutoff=0.7)
                    self.error(f"unrecognized option {name}" + (f" (did you mean {close[0]}?)" if close else ""))
        return super().parse_known_args(args, namespace)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="bptt", description="Recurrent networks trained by backpropagation through time, in NumPy.")
    parser.add_argument("--version", action="version", version=f"bptt {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMANDS:
        importlib.import_module(f"bptt.commands.{name}").add_parser(sub)
    return parser


def main(argv=None) -> int:
    from . import comm as _comm

    mpi = _comm.launched_by_mpi()
    parser = build_parser()
    with _quiet_unless(not mpi or _comm.env_rank() == 0):  # under mpiexec, usage errors and --help: rank 0 only
        args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    if not mpi:
        rc, line, _ = _run(args)
        if line:
            print(line, file=sys.stderr)
        return rc
    try:
        world = _comm.world()
    except BPTTError as e:  # launched by mpiexec without mpi4py: every rank stops, rank 0 says why
        if _comm.env_rank() == 0:
            print(f"bptt {args.command}: error: {e}", file=sys.stderr)
        return 2
    if world.is_root or args.command in PARALLEL:
        rc, line, peer = _run(args)
    else:  # the other commands run once, on rank 0
        rc, line, peer = 0, None, False
    rc, line = world.agree(rc, line, peer)
    if line:
        print(line, file=sys.stderr)
    return rc


# commands that use every MPI rank (the others run on rank 0 alone under mpiexec)
PARALLEL = ("train", "experiment")


@contextlib.contextmanager
def _quiet_unless(speak: bool):
    if speak:
        yield
        return
    with open(os.devnull, "w") as null, contextlib.redirect_stdout(null), contextlib.redirect_stderr(null):
        yield


def _run(args) -> tuple[int, str | None, bool]:
    """Run the command: (exit code, the error line to print or None, whether the error only follows
    another MPI rank's)."""
    from .comm import PeerFailed

    try:
        return int(args.run(args) or 0), None, False
    except BrokenPipeError:  # `bptt explain | head`: the reader left; not an error of ours
        sys.stderr.close()
        return 0, None, False
    except TrainingDiverged as e:
        return 1, f"bptt {args.command}: {e}", False
    except Interrupted as e:
        return 130, f"bptt {args.command}: {e}", False
    except KeyboardInterrupt:
        return 130, "bptt: interrupted", False
    except (BPTTError, OSError) as e:
        return 2, f"bptt {args.command}: error: {e}", isinstance(e, PeerFailed)
    except MemoryError as e:  # sizes too large for this machine: one line, not a traceback
        return 2, f"bptt {args.command}: error: out of memory ({e}); use smaller sizes", False


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
