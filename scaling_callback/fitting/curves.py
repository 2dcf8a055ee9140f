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
