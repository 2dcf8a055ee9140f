"""Long-format runs → :class:`~scaling_callback.fitting.curves.Curve` objects for the per-run fitters, and one
:class:`~scaling_callback.fitting.decayed_finals.SizeRun` per model size for the one-run-per-size frontier."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from scaling_callback.errors import InputError
from scaling_callback.fitting.curves import Curve
from scaling_callback.fitting.decayed_finals import SizeRun
from scaling_callback.io.long_format import require
from scaling_callback.laws.schedule import Schedule

MIN_USABLE_POINTS = 3


def curves_from_frame(frame: pd.DataFrame, warmup_steps: int, where: str = "input") -> list[Curve]:
    """One curve per run: losses at steps ≥ ``warmup_steps``, schedule rebuilt from every logged LR.

    The per-step schedule interpolates the logged LRs linearly (docs/reference.md §2); the warmup is a
    linear ramp to the LR at ``warmup_steps`` whose sum S_W is the logged LR sum at that step when
    the log has one (the callback's ``scaling/lr_sum``), else ½·η·W.
    """
    require(frame, "step", where)
    require(frame, "lr", where)
    curves = []
    for name, part in frame.groupby("run", sort=False):
        label = f"{where} run {name!r}" if frame["run"].nunique() > 1 else where
        steps = part["step"].to_numpy(dtype=float)
        if np.any(steps != np.round(steps)) or np.any(np.diff(steps) <= 0):
            raise InputError(f"{label}: step must be integer and strictly increasing")
        loss, lr = part["loss"].to_numpy(dtype=float), part["lr"].to_numpy(dtype=float)
        scheduled = np.isfinite(lr)
        if np.any(lr[scheduled] < 0):
            raise InputError(f"{label}: lr must be non-negative (step {int(steps[scheduled][lr[scheduled] < 0][0])})")
        observed = np.isfinite(loss)
        if np.any(loss[observed] <= 0):
            raise InputError(f"{label}: loss must be positive (step {int(steps[observed][loss[observed] <= 0][0])})")
        usable = observed & (steps >= warmup_steps)
        if usable.sum() < MIN_USABLE_POINTS:
            raise InputError(
                f"{label}: {int(usable.sum())} usable point(s) after the {warmup_steps}-step warmup, "
                f"need at least {MIN_USABLE_POINTS}"
            )
        warmup_sum = None
        sums = part["lr_sum"].to_numpy(dtype=float)
        known = np.isfinite(sums)
        if warmup_steps > 0 and known.any() and steps[known][0] <= warmup_steps:
            warmup_sum = float(np.interp(warmup_steps, steps[known], sums[known]))
        end = int(steps[observed][-1])
        schedule = Schedule.from_logged(
            steps[scheduled], lr[scheduled], warmup_steps=warmup_steps, warmup_sum=warmup_sum, total_steps=end
        )
        curves.append(Curve(schedule, steps[usable].astype(np.int64), loss[usable], str(name)))
    return curves


def size_runs_from_frame(
    frame: pd.DataFrame, params_column: str, warmup_steps: int | None = None, where: str = "input"
) -> list[SizeRun]:
    """One :class:`SizeRun` per run of a long frame: its curve, schedule, N (``params_column``) and tokens per step.

    Tokens per step are the median of tokens/step over the run's rows; a run whose tokens are not
    proportional to its steps (within 1 %: a changing batch size) is an error, as is an N that changes
    within a run. ``warmup_steps=None`` takes each run's first logged step at its largest LR.
    """
    require(frame, "tokens", where)
    if params_column not in frame.columns:
        raise InputError(f"{where}: no column {params_column!r}; it has {', '.join(map(str, frame.columns))}")
    runs = []
    for name, part in frame.groupby("run", sort=False):
        label = f"{where} run {name!r}"
        require(part, "lr", label)
        n = pd.to_numeric(part[params_column], errors="coerce").to_numpy(dtype=float)
        if not (np.all(np.isfinite(n)) and np.all(n > 0)) or np.ptp(n) > 1e-9 * n.max():
            raise InputError(f"{label}: column {params_column!r} must hold one positive N per run")
        steps, tokens = part["step"].to_numpy(dtype=float), part["tokens"].to_numpy(dtype=float)
        counted = np.isfinite(tokens) & (steps > 0)
        ratio = tokens[counted] / steps[counted]
        per_step = float(np.median(ratio)) if ratio.size else math.nan
        if not (math.isfinite(per_step) and per_step > 0) or np.max(np.abs(ratio / per_step - 1.0)) > 0.01:
            raise InputError(f"{label}: tokens must grow in proportion to steps (one batch size per run)")
        warmup = _peak_step(part) if warmup_steps is None else warmup_steps
        (curve,) = curves_from_frame(part, warmup, label)
        runs.append(SizeRun(str(name), float(n[0]), curve.schedule, curve.steps, curve.loss, per_step))
    return runs


def _peak_step(part: pd.DataFrame) -> int:
    """The first logged step whose LR is the run's largest: the end of its warmup as far as the log tells."""
    lr, steps = part["lr"].to_numpy(dtype=float), part["step"].to_numpy(dtype=float)
    known = np.isfinite(lr)
    first = np.flatnonzero(lr[known] >= (1.0 - 1e-9) * lr[known].max())[0]
    return int(steps[known][first])
