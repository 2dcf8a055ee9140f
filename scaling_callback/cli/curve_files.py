"""Read logged loss curves (CSV with ``step,lr,loss``) into :class:`Curve` objects."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from scaling_callback.errors import InputError
from scaling_callback.fitting.curves import Curve
from scaling_callback.laws.schedule import Schedule

REQUIRED_COLUMNS = ("step", "lr", "loss")
MIN_USABLE_POINTS = 3


def read_curve_csv(path: str | Path, warmup_steps: int) -> Curve:
    """One curve from a CSV of sparse rows; its per-step schedule is rebuilt by interpolation.

    The warmup is linear from 0 to the first logged LR over ``warmup_steps`` steps; rows logged
    during the warmup are not used (the laws start at the end of the warmup).
    """
    path = Path(path)
    try:
        frame = pd.read_csv(path)
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, IsADirectoryError) as error:
        raise InputError(f"{path}: not a readable CSV ({type(error).__name__})") from None
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise InputError(f"{path}: missing column(s) {', '.join(missing)} (need {', '.join(REQUIRED_COLUMNS)})")
    values = {c: pd.to_numeric(frame[c], errors="coerce").to_numpy(dtype=float) for c in REQUIRED_COLUMNS}
    for column, array in values.items():
        bad = np.flatnonzero(~np.isfinite(array))
        if bad.size:
            raise InputError(f"{path}: non-finite or non-numeric {column} in row {int(bad[0]) + 2}")
    if np.any(values["loss"] <= 0):
        raise InputError(f"{path}: loss must be positive (row {int(np.flatnonzero(values['loss'] <= 0)[0]) + 2})")
    if np.any(values["lr"] < 0):
        raise InputError(f"{path}: lr must be non-negative (row {int(np.flatnonzero(values['lr'] < 0)[0]) + 2})")
    steps = values["step"]
    if np.any(steps != np.round(steps)) or np.any(np.diff(steps) <= 0):
        raise InputError(f"{path}: step must be integer and strictly increasing")
    usable = steps >= warmup_steps
    if usable.sum() < MIN_USABLE_POINTS:
        raise InputError(
            f"{path}: {int(usable.sum())} usable point(s) after the {warmup_steps}-step warmup, need at least {MIN_USABLE_POINTS}"
        )
    schedule = Schedule.from_logged(steps, values["lr"], warmup_steps=warmup_steps)
    return Curve(schedule, steps[usable].astype(np.int64), values["loss"][usable], path.name)
