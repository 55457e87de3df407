"""bptt predict DIR [--data FILE] [--column C] [--horizon N] [--json]: forecast a series N steps past its end."""

from __future__ import annotations

import json


def add_parser(sub):
    p = sub.add_parser("predict", help="forecast a numeric series with a series model", description=__doc__)
    p.add_argument("dir", help="run folder (or model .npz file) of a series model")
    p.add_argument("--data", help="CSV or .npy file with the series, or shipped data by name (airline); default: "
                   "the series the model was trained on")
    p.add_argument("--column", help="the column to forecast (name or 0-based index; default: the one the model was "
                   "trained on)")
    p.add_argument("--horizon", type=int, default=12, help="steps to forecast (default 12)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(run=run)


def run(args) -> int:
    from ..data import shipped
    from ..data.series import SeriesData, forecast
    from ..errors import InputError
    from ._load import load_model

    net = load_model(args.dir)
    desc = net.meta["task"]
    if desc["name"] != "series":
        raise InputError(f"{args.dir!r} holds a model of the {desc['name']} task; predict needs a series model "
                         "(bptt train series ...)")
    if args.horizon < 1:
        raise InputError(f"--horizon: got {args.horizon}, expected a positive number of steps")
    column = desc.get("column") if args.column is None else args.column
    path = desc.get("path") if args.data is None else shipped.resolve("series", args.data)
    try:
        data = SeriesData.from_file(path, column, transform=desc.get("transform", "diff"))
    except InputError as e:  # the data module's messages name no option
        msg = shipped.cli_message(str(e))
        raise InputError(f"{'--column' if args.column is not None and 'column' in msg else '--data'}: {msg}") from None
    fc = forecast(net, data.values, desc.get("transform", "diff"), desc["mean"], desc["std"], args.horizon,
                  warmup=desc.get("length"))
    if args.json:
        print(json.dumps({"column": data.column, "last_value": float(data.values[-1]), "forecast": fc.tolist()}))
    else:
        print(f"last value of {data.column!r}: {data.values[-1]:.6g}")
        for i, v in enumerate(fc, 1):
            print(f"  t+{i}: {v:.6g}")
    return 0
