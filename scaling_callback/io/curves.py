"""Long-format runs → :class:`~scaling_callback.fitting.curves.Curve` objects for the per-run fitters."""

from __future__ import annotations

import numpy as np
import pandas as pd

from scaling_callback.errors import InputError
from scaling_callback.fitting.curves import Curve
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
            raise InputError(f"{label}: {int(usable.sum())} usable point(s) after the {warmup_steps}-step warmup, "
                             f"need at least {MIN_USABLE_POINTS}")
        warmup_sum = None
        sums = part["lr_sum"].to_numpy(dtype=float)
        known = np.isfinite(sums)
        if warmup_steps > 0 and known.any() and steps[known][0] <= warmup_steps:
            warmup_sum = float(np.interp(warmup_steps, steps[known], sums[known]))
        end = int(steps[observed][-1])
        schedule = Schedule.from_logged(steps[scheduled], lr[scheduled], warmup_steps=warmup_steps,
                                        warmup_sum=warmup_sum, total_steps=end)
        curves.append(Curve(schedule, steps[usable].astype(np.int64), loss[usable], str(name)))
    return curves
