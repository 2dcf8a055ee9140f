"""Recorded sweeps in long format (one row per logged point) turned into finished :class:`RunView`\\ s.

Each run's last x is its planned budget. With an LR column, each run's per-step LR schedule is
rebuilt the way a user with sparse logs must (docs/reference.md §2): linear interpolation between logged
(x, lr) rows. The warmup before the first logged row: with ``warmup_steps`` given, a linear ramp
from 0 to the LR logged at that step; otherwise a ramp from 0 when the logged LRs rise at the
start, else the first logged LR held constant. When x is not an optimizer step (not integer, or
very large: tokens, samples), the schedule is laid on a grid of ``MAX_PSEUDO_STEPS`` pseudo-steps
shared by the whole sweep; the multi-power law is unchanged by such a rescaling of time apart
from its fitted constants, and drop terms stay comparable across the sweep.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import pandas as pd

from scaling_callback.errors import InputError
from scaling_callback.stopping.views import RunView

MAX_PSEUDO_STEPS = 20_000
MIN_POINTS = 2


def runs_from_frame(
    frame: pd.DataFrame,
    run_col: str,
    x_col: str,
    loss_col: str,
    lr_col: str | None = None,
    compute_col: str | None = None,
    warmup_steps: int | None = None,
) -> list[RunView]:
    """Finished runs of one sweep, in order of first appearance, validated with one-line errors."""
    columns = [c for c in (run_col, x_col, loss_col, lr_col, compute_col) if c is not None]
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise InputError(f"missing column(s) {', '.join(missing)}; the file has {', '.join(map(str, frame.columns))}")
    numeric = {}
    for column in columns[1:]:
        values = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=float)
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size:
            raise InputError(f"column {column!r}: non-numeric or non-finite value {frame[column].iloc[bad[0]]!r} in data row {bad[0] + 1}")
        numeric[column] = values
    if np.any(numeric[loss_col] <= 0):
        raise InputError(f"column {loss_col!r}: losses must be positive, got {numeric[loss_col].min():g}")
    if lr_col is not None and np.any(numeric[lr_col] < 0):
        raise InputError(f"column {lr_col!r}: LRs must be non-negative, got {numeric[lr_col].min():g}")
    if np.any(numeric[x_col] < 0):
        raise InputError(f"column {x_col!r}: x must be non-negative, got {numeric[x_col].min():g}")
    names = frame[run_col].astype(str).to_numpy()
    runs = []
    for name in pd.unique(names):
        rows = np.flatnonzero(names == name)
        order = rows[np.argsort(numeric[x_col][rows], kind="stable")]
        x = numeric[x_col][order]
        if x.size < MIN_POINTS:
            raise InputError(f"run {name!r} has {x.size} point(s), need at least {MIN_POINTS}")
        if np.any(np.diff(x) == 0):
            raise InputError(f"run {name!r} repeats x={x[np.flatnonzero(np.diff(x) == 0)[0]]:g}")
        compute = numeric[compute_col][order] if compute_col is not None else None
        runs.append((name, x, numeric[loss_col][order], None if lr_col is None else numeric[lr_col][order], compute))
    unit = _step_unit([r[1] for r in runs]) if lr_col is not None else 1.0
    return [_view(name, x, loss, lrs, compute, unit, warmup_steps) for name, x, loss, lrs, compute in runs]


def _view(name: str, x: np.ndarray, loss: np.ndarray, lr: np.ndarray | None, compute: np.ndarray | None,
          unit: float, warmup_steps: int | None) -> RunView:
    budget = float(x[-1])
    if budget <= 0:
        raise InputError(f"run {name!r}: its last x (the planned budget) must be positive")
    compute_per_x = float(compute[-1]) / budget if compute is not None else 1.0
    if not compute_per_x > 0:
        raise InputError(f"run {name!r}: compute at its last point must be positive")
    if lr is None:
        return RunView(name, x, loss, budget, "finished", None, compute_per_x)
    lrs = per_step_lrs(x / unit, lr, int(math.ceil(budget / unit - 1e-9)), warmup_steps)
    return RunView(name, x, loss, budget, "finished", lrs, compute_per_x, None, 1.0 / unit)


def per_step_lrs(steps: np.ndarray, lr: np.ndarray, total_steps: int, warmup_steps: int | None = None) -> np.ndarray:
    """LR of every step 1..total_steps from logged (step, lr) rows (see the module docstring for the warmup)."""
    steps, lr = np.asarray(steps, dtype=float), np.asarray(lr, dtype=float)
    if total_steps < 1:
        raise InputError(f"a schedule needs at least one step, got {total_steps}")
    if warmup_steps is not None:
        if not 0 <= warmup_steps < total_steps:
            raise InputError(f"warmup_steps={warmup_steps} is outside 0..{total_steps - 1}")
        if warmup_steps > 0:
            peak = float(np.interp(warmup_steps, steps, lr))
            keep = steps > warmup_steps
            steps = np.concatenate([[0.0, float(warmup_steps)], steps[keep]])
            lr = np.concatenate([[0.0, peak], lr[keep]])
    elif steps[0] > 1 and lr.size > 1 and lr[0] < lr.max() and lr[1] > lr[0]:
        steps, lr = np.concatenate([[0.0], steps]), np.concatenate([[0.0], lr])
    return np.interp(np.arange(1, total_steps + 1, dtype=float), steps, lr)


def _step_unit(xs: Sequence[np.ndarray]) -> float:
    """1 when x already counts optimizer steps; else the x per pseudo-step of a shared grid."""
    largest = max(float(x[-1]) for x in xs)
    integral = all(np.all(x == np.round(x)) for x in xs)
    if integral and largest <= 10 * MAX_PSEUDO_STEPS:
        return 1.0
    return largest / MAX_PSEUDO_STEPS
