"""The ``bptt`` command line. Each command lives in ``bptt.commands.<name>`` with two functions:
``add_parser(subparsers)`` and ``run(args) -> int``. Exit codes: 0 success, 2 bad usage or bad input
(one line on stderr, no traceback), 130 after Ctrl-C.
"""

from __future__ import annotations

import argparse
import difflib
import importlib
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
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    try:
        return int(args.run(args) or 0)
    except BrokenPipeError:  # `bptt explain | head`: the reader left; not an error of ours
        sys.stderr.close()
        return 0
    except TrainingDiverged as e:
        print(f"bptt {args.command}: {e}", file=sys.stderr)
        return 1
    except Interrupted as e:
        print(f"bptt {args.command}: {e}", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("bptt: interrupted", file=sys.stderr)
        return 130
    except (BPTTError, OSError) as e:
        print(f"bptt {args.command}: error: {e}", file=sys.stderr)
        return 2
    except MemoryError as e:  # sizes too large for this machine: one line, not a traceback
        print(f"bptt {args.command}: error: out of memory ({e}); use smaller sizes", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
