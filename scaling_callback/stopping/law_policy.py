"""The law policy: stop a run that is unlikely to beat the sweep's best, by the sweep's one forecast.

The rule, in three sentences. At each check, every live run has a predictive distribution of its
final loss (the sweep's forecaster, :class:`~scaling_callback.fitting.sweep_forecaster.SweepForecaster`;
a finished run's is its held-out evaluated final and its standard error when it has one, else the
last point of its curve and that curve's noise). A run is unpromising when
P(its final < a rival's final) < ``threshold`` for some rival — the rival it is least likely to beat,
so P bounds P(it beats them all) from above — and it is stopped after ``confirmations``
consecutive unpromising checks. The run whose forecast is lowest (the leader) is never stopped.

``objective="frontier"`` compares at equal planned compute: a rival's loss (observed, or forecast
along its plan) where it has spent this run's planned compute — the lower envelope of loss against
compute (Hoffmann et al. 2022, approach 1). ``objective="same_size_and_budget"`` compares a run
only with runs of its own model size (compute per step) and planned budget, at their planned end:
the search over learning rates (or schedules, seeds) within each cell of a size × budget grid,
which keeps every cell's best run to its end for the compute-optimal fit (approach 3 needs them
all; the frontier objective stops the cells off the frontier). Stopped runs are no rivals (they
never reach their end) but lend what their curves showed to the sweep's prior. Constants:
docs/early_stopping.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import ndtr

from scaling_callback.errors import InputError
from scaling_callback.fitting.forecast_types import Forecast
from scaling_callback.fitting.sweep_forecaster import SweepForecaster
from scaling_callback.stopping.policy import StoppingPolicy
from scaling_callback.stopping.views import Decision, RunView, SweepView

OBJECTIVES = ("final", "frontier", "same_size_and_budget")
SAME_CELL_TOLERANCE = 1e-3  # relative: runs of one size and budget share compute per step and planned steps exactly
TAIL_POINTS = 12  # points at the end of a finished curve that estimate the noise of its final


@dataclass(frozen=True)
class _Rival:
    name: str
    loss: float
    sd: float
    how: str
    shared: float = 0.0  # loading on the sweep's shared unknown (Forecast.shared); 0 for observed values


class LawPolicy(StoppingPolicy):
    """Stop runs whose forecast final is unlikely to beat the sweep's best; see the module docstring.

    Args:
        threshold: stop when P(final beats the best rival's) is below this (Domhan et al. 2015: 0.05).
        objective: ``final`` or ``frontier``.
        forecaster: the sweep's forecaster (a fresh one by default).
        n_startup_runs, n_warmup_steps, warmup_fraction, interval_steps, interval_fraction,
        confirmations: the gating of :class:`StoppingPolicy` (defaults: a first check at 5 % of the
        budget, then every 2 %, and 2 consecutive confirmations).
    """

    name = "law"

    def __init__(
        self,
        threshold: float = 0.05,
        objective: str = "final",
        forecaster: SweepForecaster | None = None,
        n_startup_runs: int = 0,
        n_warmup_steps: float = 0.0,
        warmup_fraction: float = 0.05,
        interval_steps: float = 0.0,
        interval_fraction: float = 0.02,
        confirmations: int = 2,
    ) -> None:
        if not 0.0 < threshold < 1.0:
            raise InputError(f"threshold must lie in (0, 1), got {threshold!r}")
        if objective not in OBJECTIVES:
            raise InputError(f"objective must be one of {', '.join(OBJECTIVES)}, got {objective!r}")
        self.threshold, self.objective = float(threshold), objective
        self.forecaster = forecaster or SweepForecaster()
        super().__init__(
            n_startup_runs, n_warmup_steps, warmup_fraction, interval_steps, interval_fraction, confirmations
        )

    def reset(self) -> None:
        super().reset()
        if getattr(self, "forecaster", None) is not None:
            self.forecaster = SweepForecaster(self.forecaster.level, self.forecaster.max_points)
        self._latest: dict[str, Forecast] = {}
        self._cache: dict[tuple, tuple[Forecast | None, str]] = {}

    # ------------------------------------------------------------------ rule
    def judge(self, run: RunView, sweep: SweepView) -> Decision:
        self.learn(sweep)
        forecast, why = self.forecast(run)
        if forecast is None or not (math.isfinite(forecast.loss) and math.isfinite(forecast.sd)):
            return Decision(False, "no-forecast", None, f"no forecast: {why}")
        rivals = self._rivals(run, sweep)
        if not rivals:
            return Decision(False, "continue", None, f"no rival yet (own forecast {forecast.loss:.4g})", forecast)
        chances = [
            (_probability_below(forecast.loss, forecast.sd, r.loss, r.sd, forecast.shared * r.shared), r)
            for r in rivals
        ]
        probability, binding = min(chances, key=lambda pair: pair[0])
        versus = (
            f"forecast {forecast.loss:.4g} ± {forecast.sd:.2g} vs {binding.name} {binding.how} "
            f"{binding.loss:.4g} ± {binding.sd:.2g}"
        )
        if forecast.loss <= min(r.loss for r in rivals):
            return Decision(False, "leader", probability, f"leader: {versus}", forecast)
        if probability < self.threshold:
            return Decision(
                False,
                "unpromising",
                probability,
                f"P(beats best) = {probability:.3g} < {self.threshold:g}: {versus}",
                forecast,
            )
        return Decision(False, "continue", probability, f"P(beats best) = {probability:.3g}: {versus}", forecast)

    def weight(self, verdict: Decision) -> int:
        """P < threshold^j counts as j confirmations: k checks each below ``threshold`` would bound a false
        stop by threshold^k were they independent, and one check below threshold^k meets that bound alone
        (a curve logged on a doubling grid has no second check before its end)."""
        p = verdict.probability
        if p is None or not p < self.threshold:
            return 1
        if p <= 0.0:
            return self.confirmations
        return int(min(max(math.floor(math.log(p) / math.log(self.threshold)), 1), self.confirmations))

    def learn(self, sweep: SweepView) -> None:
        """Runs of the sweep that ended lend their curves to the forecaster's prior (each once)."""
        for other in sweep.runs:
            if other.status != "running" and other.x.size and other.name not in self.forecaster.pool.posteriors:
                self.forecaster.add_ended(other.curve(), finished=other.status == "finished")

    def forecast(self, run: RunView) -> tuple[Forecast | None, str]:
        """The run's forecast (the one it carries, or the sweep forecaster's); remembered as its latest."""
        if run.forecast is not None:
            self._latest[run.name] = run.forecast
            return run.forecast, "given"
        key = (run.name, run.x.size, run.current_x, len(self.forecaster.pool))
        if key not in self._cache:
            self._cache[key] = self.forecaster.forecast(run.curve())
            if len(self._cache) > 4 * 4096:
                self._cache.pop(next(iter(self._cache)))
        forecast, why = self._cache[key]
        if forecast is not None:
            self._latest[run.name] = forecast
        return forecast, why

    # ----------------------------------------------------------------- rivals
    def _rivals(self, run: RunView, sweep: SweepView) -> list[_Rival]:
        compute = run.planned_compute if self.objective == "frontier" else None
        rivals = []
        for other in sweep.others(run.name):
            if other.status == "stopped" or not other.x.size:
                continue
            if self.objective == "same_size_and_budget" and not _same_cell(run, other):
                continue
            rival = self._rival(other, compute)
            if rival is not None and math.isfinite(rival.loss) and rival.loss > 0 and math.isfinite(rival.sd):
                rivals.append(rival)
        return rivals

    def _rival(self, other: RunView, compute: float | None) -> _Rival | None:
        forecast = other.forecast or self._latest.get(other.name)
        if compute is None or other.planned_compute <= compute:  # its whole run fits in the budget
            if other.status == "finished" and other.final is not None and other.final.sd is not None:
                return _Rival(other.name, other.final.loss, other.final.sd, f"{other.final.source} final")
            if other.status == "finished":
                finite = other.loss[np.isfinite(other.loss)]
                if not finite.size:
                    return None
                return _Rival(other.name, float(finite[-1]), _tail_noise(finite), "observed final")
            if forecast is None:
                return None
            return _Rival(other.name, forecast.loss, forecast.sd, "forecast final", forecast.shared)
        x = compute / other.compute_per_x  # where the other run spends this run's planned compute
        if other.current_x >= x:
            return _Rival(other.name, other.loss_at(x), _tail_noise(other.loss), f"observed at x={x:.4g}")
        if forecast is None:
            return None
        loss, sd = forecast.at(x)
        return _Rival(other.name, loss, sd, f"forecast at x={x:.4g}", forecast.shared_at(x))

    def describe(self) -> dict[str, Any]:
        return super().describe() | {
            "forecaster": {"level": self.forecaster.level, "max_points": self.forecaster.max_points}
        }


def _same_cell(run: RunView, other: RunView) -> bool:
    """Same model size (compute per unit of x) and the same planned budget."""
    return math.isclose(run.compute_per_x, other.compute_per_x, rel_tol=SAME_CELL_TOLERANCE) and math.isclose(
        run.budget, other.budget, rel_tol=SAME_CELL_TOLERANCE
    )


def _probability_below(mean: float, sd: float, other_mean: float, other_sd: float, covariance: float = 0.0) -> float:
    """P(X < Y) for jointly Gaussian X, Y with the given covariance (their shared drop unknown)."""
    spread = math.sqrt(max(sd**2 + other_sd**2 - 2.0 * covariance, (sd - other_sd) ** 2))
    gap = other_mean - mean
    if spread <= 0:
        return 1.0 if gap > 0 else 0.0
    return float(ndtr(gap / spread))


def _tail_noise(loss: np.ndarray) -> float:
    """Noise of a curve's last point from the second differences of its tail (MAD, robust)."""
    tail = np.asarray(loss, dtype=float)
    tail = tail[np.isfinite(tail)][-TAIL_POINTS:]
    if tail.size < 4:
        return 1e-6 * float(abs(tail[-1]))
    second = np.diff(tail, 2)
    return max(
        1.4826 * float(np.median(np.abs(second - np.median(second)))) / math.sqrt(6.0), 1e-6 * float(abs(tail[-1]))
    )
