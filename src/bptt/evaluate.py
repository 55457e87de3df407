"""Held-out evaluation: the loss and the task's own metric on data the training never saw."""

from __future__ import annotations

import numpy as np

from .validate import loss_mask


def evaluate(net, task, n: int = 512, seed: int = 0, chunk: int = 256) -> dict:
    """Loss per loss step and ``task.metric`` on ``n`` held-out sequences (forward in chunks of
    ``chunk`` sequences to bound memory). Returns a JSON-able dict of floats."""
    X, D = task.heldout(n, seed)
    B = X.shape[1]
    Ys, E = [], 0.0
    for b0 in range(0, B, chunk):
        xb, db = X[:, b0 : b0 + chunk], D[:, b0 : b0 + chunk]
        Y, Eb = net.forward_loss(xb, db, loss=task.loss, at=task.at)  # one forward pass for both
        Ys.append(Y)
        E += Eb * xb.shape[1]
    Y = np.concatenate(Ys, axis=1)
    n_loss = loss_mask(task.at, X.shape[0], 1, None, np.float64).sum()
    out = {"loss": float(E / B / n_loss), "sequences": int(B)}
    out.update({k: float(v) for k, v in task.metric(Y, D).items()})
    return out


# Per task: what "solved" counts, and the figure compared with the task's baseline (lower is better):
# (metric key, baseline key, what the baseline is). Templates take the task's description as keywords.
VERDICTS = {
    "adding": ("sequences whose predicted sum is within {tolerance} of the true sum",
               ("mse", "baseline_mse", "always predicting 1.0")),
    "sine": ("sequences whose mse after the first {burn_in} steps is below {threshold}",
             ("mse_after_burn_in", "baseline_last_mse", "the last-value forecast")),
    "copy": ("sequences whose {n_recall} recalled symbols are all correct",
             ("ce", "baseline_ce", "guessing the symbols without memory")),
    "order": ("sequences whose order class (XX, XY, YX or YY) is right; chance is 0.25",
              ("ce", "baseline_ce", "guessing the class without memory")),
    "text": ("held-out sequences predicted with fewer bits per character than the character frequencies give",
             ("bpc", "baseline_bpc", "the character frequencies alone (unigram entropy)")),
    "series": ("held-out windows where the net's forecasts beat the last-value forecast",
               ("mse", "baseline_mse", "the last-value forecast")),
}


def verdict(desc: dict, result: dict) -> list[str]:
    """Plain-words lines on a held-out ``result`` of the task described by ``desc`` (``task.describe()``):
    what "solved" counts, and whether the model beats the task's baseline (said plainly when it does not)."""
    name = desc.get("name")
    if name not in VERDICTS:
        return []
    means, (key, base_key, base_what) = VERDICTS[name]
    defaults = {"tolerance": 0.04, "burn_in": 5, "threshold": 0.01, "n_recall": 10}
    lines = []
    if "solved" in result:
        lines.append(f"solved {result['solved']:.4g}: the fraction of {means.format(**{**defaults, **desc})}")
    if key in result and base_key in result:
        m, b = result[key], result[base_key]
        vs = f"{key} {m:.4g} against {b:.4g} for {base_what}"
        if m < b:
            ratio = f" ({b / m:.3g}x lower)" if 0 < m and b / m < 100 else f" ({b / m:,.0f}x lower)" if 0 < m else ""
            lines.append(f"beats the baseline on average: {vs}{ratio}")
        else:
            # "on average": the fraction solved counts sequences one by one, and may be high while the mean is not
            lines.append(f"does NOT beat the baseline on average: {vs}; train longer, or change the model or its "
                         "settings")
    return lines
