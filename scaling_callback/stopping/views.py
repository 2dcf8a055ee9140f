"""Data types of early stopping: what a policy sees of a run and its sweep, and the one decision it returns.

Units: ``x`` is the run's resource (optimizer steps, tokens or samples); ``budget`` is the x of its
planned end; ``compute_per_x`` converts x to compute (FLOPs) for the frontier objective;
``step_per_x`` converts x to optimizer steps, where ``lrs`` is indexed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from scaling_callback.errors import InputError
from scaling_callback.fitting.forecast_types import Forecast, RunCurve
from scaling_callback.fitting.run_final import RunFinal

RUN_STATES = ("running", "finished", "stopped")
KINDS = ("stop", "unpromising", "continue", "leader", "no-forecast", "gated")


@dataclass(frozen=True)
class Decision:
    """A policy's answer about one run at one check.

    ``kind``: ``stop``; ``unpromising`` (not yet confirmed); ``continue``; ``leader`` (never stopped);
    ``no-forecast``; ``gated`` (startup, warm-up, between checks or not running). ``probability``:
    P(this run's final beats the best rival's), None for rank rules. ``forecast``: the forecast the
    decision used, so that whoever shows the run shows the same number.
    """

    stop: bool
    kind: str
    probability: float | None = None
    reason: str = ""
    forecast: Forecast | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise InputError(f"decision kind {self.kind!r} is not one of {', '.join(KINDS)}")


@dataclass(frozen=True)
class RunView:
    """What a policy may know about one run: its curve so far, its plan and (optionally) its forecast.

    Args:
        name: unique within the sweep.
        x: resource at each logged point, strictly increasing.
        loss: loss at each point (positive).
        budget: x of the planned end.
        status: ``running``, ``finished`` or ``stopped``.
        lrs: LR of every optimizer step 1..T of the plan (recorded, then planned), when known.
        compute_per_x: compute per unit of x (e.g. 6·N FLOPs per token); 1 compares x itself.
        forecast: the run's latest forecast, made elsewhere (the callback's online fit).
        step_per_x: optimizer steps per unit of x (maps x onto ``lrs``).
        final: a finished run's measured final (its held-out evaluation at the end, with its standard
            error), compared instead of its curve's last point when known.
    """

    name: str
    x: np.ndarray
    loss: np.ndarray
    budget: float
    status: str = "running"
    lrs: np.ndarray | None = None
    compute_per_x: float = 1.0
    forecast: Forecast | None = None
    step_per_x: float = 1.0
    final: RunFinal | None = None

    def __post_init__(self) -> None:
        x = np.asarray(self.x, dtype=float)
        loss = np.asarray(self.loss, dtype=float)
        if x.ndim != 1 or x.shape != loss.shape:
            raise InputError(f"run {self.name!r}: x and loss must be 1-D arrays of equal length")
        if x.size > 1 and np.any(np.diff(x) <= 0):
            raise InputError(f"run {self.name!r}: x must be strictly increasing")
        if self.status not in RUN_STATES:
            raise InputError(f"run {self.name!r}: status {self.status!r} is not one of {', '.join(RUN_STATES)}")
        for label in ("budget", "compute_per_x", "step_per_x"):
            value = getattr(self, label)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise InputError(f"run {self.name!r}: {label} must be positive, got {value!r}")
        object.__setattr__(self, "x", x)
        object.__setattr__(self, "loss", loss)
        if self.lrs is not None:
            object.__setattr__(self, "lrs", np.asarray(self.lrs, dtype=float))

    @property
    def current_x(self) -> float:
        """x of the last logged point (0 before the first)."""
        return float(self.x[-1]) if self.x.size else 0.0

    @property
    def planned_compute(self) -> float:
        return self.budget * self.compute_per_x

    def loss_at(self, x: float) -> float:
        """Observed loss at the last point with x' ≤ ``x`` (NaN before the first point)."""
        index = int(np.searchsorted(self.x, x, side="right")) - 1
        return float(self.loss[index]) if index >= 0 else math.nan

    def curve(self) -> RunCurve:
        """The run as the forecaster takes it."""
        return RunCurve(self.name, self.x, self.loss, self.budget, self.lrs, self.step_per_x)


@dataclass(frozen=True)
class SweepView:
    """The runs of the sweep a decision may look at (the judged run may be among them)."""

    runs: tuple[RunView, ...]

    def others(self, name: str) -> list[RunView]:
        return [r for r in self.runs if r.name != name]

    @property
    def n_finished(self) -> int:
        return sum(r.status == "finished" for r in self.runs)
