"""One observed loss curve: its LR schedule and the losses at some absolute optimizer steps."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from scaling_callback.errors import InputError
from scaling_callback.laws.schedule import Schedule


@dataclass(frozen=True)
class Curve:
    """Losses observed at absolute optimizer ``steps`` (warmup included) of a run on ``schedule``."""

    schedule: Schedule
    steps: np.ndarray
    loss: np.ndarray
    name: str = ""

    def __post_init__(self) -> None:
        steps = np.asarray(self.steps, dtype=np.int64)
        loss = np.asarray(self.loss, dtype=float)
        label = self.name or "curve"
        if steps.shape != loss.shape or steps.ndim != 1:
            raise InputError(f"{label}: steps and loss must be 1-D arrays of equal length")
        if not np.all(np.isfinite(loss)) or np.any(loss <= 0):
            raise InputError(f"{label}: losses must be finite and positive")
        self.schedule.post_warmup_steps(steps)  # raises when a step lies outside the schedule
        object.__setattr__(self, "steps", steps)
        object.__setattr__(self, "loss", loss)

    def __len__(self) -> int:
        return int(self.steps.size)

    def head(self, fraction: float) -> "Curve":
        """The first ``fraction`` of the observed points (at least one), on the same schedule."""
        keep = max(1, int(np.floor(fraction * len(self) + 1e-9)))
        return Curve(self.schedule, self.steps[:keep], self.loss[:keep], self.name)

    def tail(self, fraction: float) -> "Curve":
        """The points after :meth:`head` of the same ``fraction``."""
        keep = len(self.head(fraction))
        return Curve(self.schedule, self.steps[keep:], self.loss[keep:], self.name)


def bin_curve(steps: np.ndarray, loss: np.ndarray, after_step: float, max_points: int) -> tuple[np.ndarray, np.ndarray]:
    """Finite positive losses at steps after ``after_step``, as at most ``max_points`` equal-width bin means.

    Per-step training losses are noisy and a fit's cost grows with its points; bin means of equal
    step width keep the curve's shape (the MPL paper fits ~170 logged points per curve).
    """
    steps = np.asarray(steps, dtype=float)
    loss = np.asarray(loss, dtype=float)
    keep = (steps > after_step) & np.isfinite(loss) & (loss > 0) & np.isfinite(steps)
    steps, loss = steps[keep], loss[keep]
    if steps.size <= max_points:
        return steps.astype(np.int64), loss
    edges = np.linspace(steps[0], steps[-1] + 1.0, max_points + 1)
    which = np.clip(np.searchsorted(edges, steps, side="right") - 1, 0, max_points - 1)
    counts = np.bincount(which, minlength=max_points)
    filled = counts > 0
    mean_step = np.bincount(which, steps, max_points)[filled] / counts[filled]
    mean_loss = np.bincount(which, loss, max_points)[filled] / counts[filled]
    rounded, first = np.unique(np.rint(mean_step).astype(np.int64), return_index=True)
    return rounded, mean_loss[first]
