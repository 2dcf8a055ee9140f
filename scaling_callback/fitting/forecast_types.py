"""Data types of the forecaster: a run's curve, its forecast, its posterior, and the prior a sweep gives it.

Data only (numpy arrays and plain values): the forecaster (:mod:`run_forecast`), the sweep's pooling
(:mod:`sweep_prior`), the stopping policies, the store and the report all exchange these.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from scaling_callback.errors import InputError
from scaling_callback.laws.schedule import Schedule


@dataclass(frozen=True)
class RunCurve:
    """A run's curve so far and its plan, framework-free.

    Args:
        name: the run's name.
        x: resource at each logged point (optimizer steps when ``lrs`` is given), increasing.
        loss: loss at each point.
        budget: x of the planned end.
        lrs: LR of every optimizer step 1..T of the plan (recorded, then planned), or None.
        step_per_x: optimizer steps per unit of x when x is not the step (tokens, samples).
        schedule: ``lrs`` as a :class:`Schedule` already built by the caller (saves rebuilding a long plan).
    """

    name: str
    x: np.ndarray
    loss: np.ndarray
    budget: float
    lrs: np.ndarray | None = None
    step_per_x: float = 1.0
    schedule: Schedule | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        x = np.asarray(self.x, dtype=float)
        loss = np.asarray(self.loss, dtype=float)
        if x.shape != loss.shape or x.ndim != 1:
            raise InputError(f"run {self.name!r}: x and loss must be 1-D arrays of equal length")
        if not (math.isfinite(self.budget) and self.budget > 0):
            raise InputError(f"run {self.name!r}: budget must be positive, got {self.budget!r}")
        object.__setattr__(self, "x", x)
        object.__setattr__(self, "loss", loss)
        if self.lrs is not None:
            object.__setattr__(self, "lrs", np.asarray(self.lrs, dtype=float))


@dataclass(frozen=True)
class Forecast:
    """Predictive distribution (Gaussian in loss) of a run's loss at its planned end, and at points of its plan.

    ``loss`` is the mean, ``sd`` the predictive SD, ``[low, high]`` the central ``level`` interval.
    ``path_x``/``path_loss``/``path_sd``: the same at later points of the plan (for equal-compute
    comparisons). ``shared`` (and ``path_shared``): the forecast's loading on the sweep's shared
    unknown (the mean gain of an LR decay), so that Cov(two runs' forecasts) = shared₁·shared₂.
    ``evidence`` says what the forecast rests on; ``choices`` records every fitting choice.
    """

    loss: float
    sd: float
    low: float
    high: float
    level: float
    x: float
    budget: float
    law: str
    evidence: dict[str, Any] = field(default_factory=dict)
    choices: dict[str, Any] = field(default_factory=dict)
    path_x: tuple[float, ...] = ()
    path_loss: tuple[float, ...] = ()
    path_sd: tuple[float, ...] = ()
    shared: float = 0.0
    path_shared: tuple[float, ...] = ()

    @property
    def sd_log(self) -> float:
        return self.sd / self.loss if self.loss > 0 else math.inf

    def at(self, x: float) -> tuple[float, float]:
        """(mean, sd) at resource ``x`` of the plan (linear between kept points; the end beyond)."""
        if not self.path_x:
            return self.loss, self.sd
        return float(np.interp(x, self.path_x, self.path_loss)), float(np.interp(x, self.path_x, self.path_sd))

    def shared_at(self, x: float) -> float:
        """The loading on the sweep's shared unknown at resource ``x`` of the plan (as :meth:`at`)."""
        if not self.path_x or len(self.path_shared) != len(self.path_x):
            return self.shared
        return float(np.interp(x, self.path_x, self.path_shared))

    def to_dict(self) -> dict[str, Any]:
        """Plain values, for the store and JSON."""
        values = {k: getattr(self, k) for k in ("loss", "sd", "low", "high", "level", "x", "budget", "law", "shared")}
        return values | {
            "evidence": self.evidence,
            "choices": self.choices,
            "path_x": list(self.path_x),
            "path_loss": list(self.path_loss),
            "path_sd": list(self.path_sd),
            "path_shared": list(self.path_shared),
        }

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Forecast:
        paths = {
            k: tuple(float(v) for v in values.get(k, ())) for k in ("path_x", "path_loss", "path_sd", "path_shared")
        }
        plain = {k: float(values[k]) for k in ("loss", "sd", "low", "high", "level", "x", "budget")}
        return cls(
            **plain,
            law=str(values["law"]),
            evidence=dict(values.get("evidence", {})),
            choices=dict(values.get("choices", {})),
            shared=float(values.get("shared", 0.0)),  # forecasts stored before loadings existed: none
            **paths,
        )


@dataclass(frozen=True)
class Posterior:
    """A run's grid posterior: what it lends the sweep once its curve is complete (or has shown its decay)."""

    name: str
    alpha_weights: np.ndarray  # (ALPHAS,) marginal posterior of α
    shape_weights: np.ndarray | None  # (SHAPES,) marginal posterior of θ; None without a drop term
    drop_mean: np.ndarray | None  # (SHAPES,) posterior mean of B̃ at each shape
    drop_var: np.ndarray | None  # (SHAPES,) posterior variance of B̃ at each shape
    drop_seen: bool  # whether its own points identified the drop term
    noise_rel: float  # observation noise / loss
    log_peak_lr: float | None

    def to_dict(self) -> dict[str, Any]:
        """Plain values, for the store and JSON (arrays as lists)."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        return {k: v.tolist() if isinstance(v, np.ndarray) else v for k, v in values.items()}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Posterior:
        def array(key: str) -> np.ndarray | None:
            return None if values.get(key) is None else np.asarray(values[key], dtype=float)

        peak = values.get("log_peak_lr")
        return cls(
            str(values["name"]),
            np.asarray(values["alpha_weights"], dtype=float),
            array("shape_weights"),
            array("drop_mean"),
            array("drop_var"),
            bool(values["drop_seen"]),
            float(values["noise_rel"]),
            None if peak is None else float(peak),
        )


@dataclass(frozen=True)
class SweepPrior:
    """The prior a run's forecast takes from its sweep (see the module docstring)."""

    alpha_log_prior: np.ndarray
    shape_log_prior: np.ndarray | None
    drop_mean: np.ndarray | None  # the donors' weighted mean of B̃ per shape
    drop_between: np.ndarray | None  # between-donor variance of B̃ per shape (unbiased, weighted)
    drop_within: np.ndarray | None  # the donors' own posterior variance of B̃, weighted mean
    drop_donors: float  # effective number of donors behind the drop prior (Kish)
    noise_rel: float
    calibration: Calibration
    donors: tuple[str, ...]


DEFAULT_TAU = 0.35  # transfer error per unit of change still ahead, before a sweep has backtests (docs/forecasting.md)


@dataclass(frozen=True)
class Calibration:
    """How a forecast's spread is set from the sweep's backtests.

    Total variance = κ²·(grid variance) + noise² + τ²·ahead² + τ_drop²·drop_ahead², with ``ahead`` the power
    law's change still ahead and ``drop_ahead`` the drop term's (docs/forecasting.md#calibration-from-backtests).
    """

    kappa: float = 1.0  # scale of the grid posterior's own spread
    tau: float = DEFAULT_TAU  # transfer error per unit of the power law's change still ahead
    tau_drop: float = DEFAULT_TAU  # transfer error per unit of the drop term's change still ahead
    source: str = "default"
