"""Sparse logged metrics of one run (each on its own steps) → one row per step where the loss or the LR is logged.

Loggers write each metric on the steps it was logged: the training loss every ``log_every_n_steps``,
``LearningRateMonitor``'s LR on others, this callback's ``scaling/*`` rows on its own, validation on
yet others. Rows of the long format are the steps where the chosen loss or the LR is logged (the loss is NaN
on LR-only rows, which keep a dense schedule's shape under a sparse validation loss); there:

- the LR is interpolated linearly in step between its logged values (the rebuild docs/reference.md §2
  prescribes for sparse logs). Without any LR column it is recovered from the LR sum:
  ``(S(s) − S(s')) / (s − s')`` is the mean LR of the steps s'+1..s, placed at their middle;
- cumulative quantities (``lr_sum``, tokens, FLOPs, samples) are interpolated linearly with
  0 at step 0, and continued at their last rate after their last logged step.

Step conventions: Lightning logs ``self.log`` values (and ``LearningRateMonitor``'s LR) at
``global_step`` *before* the optimizer step they belong to (the loss of the 10th step at step 9),
whereas the step of this project — and of the callback's ``scaling/*`` metrics — counts the
optimizer steps done (10). ``lightning_offset`` is added to the steps of every metric not named
``scaling/*``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from scaling_callback.errors import InputError
from scaling_callback.io.columns import ColumnMap, detect

CUMULATIVE = ("lr_sum", "tokens", "flops", "samples")
OWN_PREFIX = "scaling/"


def rows_by_step(
    long: pd.DataFrame, columns: ColumnMap, where: str, offset: int = 0
) -> tuple[pd.DataFrame, dict[str, str | None]]:
    """One run's ``step, name, value`` records → rows ``step, loss, lr, lr_sum, tokens, flops, samples`` (+ extras).

    Returns the rows and the metric name used for each role (None: absent, or derived).
    """
    long = long.dropna(subset=["value"])
    long = long[np.isfinite(long["value"].to_numpy(dtype=float))]
    if long.empty:
        raise InputError(f"{where}: no finite values logged (an empty run)")
    names = list(dict.fromkeys(long["name"]))
    used = {"loss": detect("loss", names, columns.loss, where, required=True)}
    for role in ("lr", "lr_sum", "tokens", "flops", "samples"):
        used[role] = detect(role, names, getattr(columns, role), where)
    if offset:
        shift = np.where(long["name"].astype(str).str.startswith(OWN_PREFIX), 0, offset)
        long = long.assign(step=long["step"].to_numpy() + shift)
    series = {name: part.groupby("step")["value"].last().sort_index() for name, part in long.groupby("name", sort=False)}
    loss = series[used["loss"]]
    loss = loss[loss.index >= 0]
    if loss.empty:
        raise InputError(f"{where}: loss column {used['loss']!r} has no finite values")
    index = loss.index
    if used["lr"]:  # steps where only the LR was logged keep the schedule's shape (loss NaN there)
        index = index.union(series[used["lr"]].index[series[used["lr"]].index >= 0])
    steps = index.to_numpy(dtype=float)
    frame = pd.DataFrame({"step": steps.astype(np.int64) if np.all(steps == np.round(steps)) else steps,
                          "loss": loss.reindex(index).to_numpy(dtype=float)})
    for role in CUMULATIVE:
        frame[role] = _cumulative(series[used[role]], steps) if used[role] else np.nan
    if used["lr"]:
        lr = series[used["lr"]]
        frame["lr"] = np.interp(steps, lr.index.to_numpy(dtype=float), lr.to_numpy(dtype=float))
    elif used["lr_sum"]:
        frame["lr"] = _lr_from_sums(series[used["lr_sum"]], steps)
        used["lr"] = f"derived from {used['lr_sum']}"
    else:
        frame["lr"] = np.nan
    role_names = {v for v in used.values() if v}
    for name, values in series.items():
        if name not in role_names and name not in frame.columns:
            frame[name] = values.reindex(index).to_numpy(dtype=float)
    return frame, used


def _cumulative(values: pd.Series, steps: np.ndarray) -> np.ndarray:
    x = np.concatenate([[0.0], values.index.to_numpy(dtype=float)])
    y = np.concatenate([[0.0], values.to_numpy(dtype=float)])
    keep = np.concatenate([[True], x[1:] > 0])
    x, y = x[keep], y[keep]
    out = np.interp(steps, x, y)
    if x.size >= 2:
        rate = (y[-1] - y[-2]) / (x[-1] - x[-2])
        after = steps > x[-1]
        out[after] = y[-1] + rate * (steps[after] - x[-1])
    return out


def _lr_from_sums(sums: pd.Series, steps: np.ndarray) -> np.ndarray:
    s = np.concatenate([[0.0], sums.index.to_numpy(dtype=float)])
    total = np.concatenate([[0.0], sums.to_numpy(dtype=float)])
    keep = np.concatenate([[True], s[1:] > 0])
    s, total = s[keep], total[keep]
    if s.size < 2:
        return np.full(steps.shape, np.nan)
    mean_lr = np.diff(total) / np.diff(s)
    middle = 0.5 * (s[1:] + s[:-1]) + 0.5  # steps s'+1..s: their middle
    return np.interp(steps, middle, mean_lr)
