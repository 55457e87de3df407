"""bptt sample DIR --length N [--prime TEXT] [--temperature X] [--seed S]: text from a character model."""

from __future__ import annotations

from ..sampling import sample_text  # noqa: F401  (the library function; re-exported)


def add_parser(sub):
    p = sub.add_parser("sample", help="generate text from a character model", description=__doc__)
    p.add_argument("dir", help="run folder (or model .npz file) of a text model")
    p.add_argument("--length", type=int, default=300, help="characters to generate (default 300)")
    p.add_argument("--prime", default="", help="text to start from (its characters must be in the vocabulary)")
    p.add_argument("--temperature", type=float, default=0.8, help="0 = always the most likely character (greedy); higher is more "
                   "varied (default 0.8)")
    p.add_argument("--seed", type=int, default=0, help="seed of the sampling (default 0)")
    p.set_defaults(run=run)


def run(args) -> int:
    from ..errors import InputError
    from ._load import load_model

    net = load_model(args.dir)
    if net.meta["task"]["name"] != "text":
        raise InputError(f"{args.dir!r} holds a model of the {net.meta['task']['name']} task; sample needs a text model "
                         "(bptt train text ...)")
    print(args.prime + sample_text(net, args.length, args.prime, args.temperature, args.seed))
    return 0
