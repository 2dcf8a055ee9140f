"""Read one logged loss curve (CSV with ``step,lr,loss``) into a :class:`Curve` (see :mod:`scaling_callback.io`)."""

from __future__ import annotations

from pathlib import Path

from scaling_callback.errors import InputError
from scaling_callback.fitting.curves import Curve
from scaling_callback.io import curves_from_frame, read_runs


def read_curve_csv(path: str | Path, warmup_steps: int) -> Curve:
    """The single curve of a CSV of sparse rows; its per-step schedule is rebuilt by interpolation."""
    path = Path(path)
    curves = curves_from_frame(read_runs(path, "csv"), warmup_steps, path.name)
    if len(curves) != 1:
        raise InputError(f"{path}: holds {len(curves)} runs, expected one")
    return Curve(curves[0].schedule, curves[0].steps, curves[0].loss, path.name)
