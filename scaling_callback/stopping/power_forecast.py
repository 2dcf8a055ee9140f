"""Forecast a run's final loss without its LR schedule: a saturating power law in the resource x.

L(x) = E + A·x^(−α) (the step/compute family with an irreducible loss; Kaplan et al. 2020,
eq. 1.6 form in steps; Hoffmann et al. 2022 in D), fitted by :class:`PowerLawFit` (Huber on log
residuals, summed). It cannot see a planned LR decay coming, so it suits constant or smoothly
decaying schedules; with an LR column the MPL forecaster is used instead.

:class:`PowerLawFit` gives intervals for α and E, not for an extrapolated loss, so the predictive
SD of log L(budget) is built here like the per-run fitter's (docs/reference.md §2; fitting.curve_interval):
the larger of a Laplace estimate (σ²·(JᵀJ)⁻¹ with the residual variance inflated for lag-1
autocorrelation, (1 + ρ)/(1 − ρ)) and, optionally, a delete-one-chunk jackknife over ``n_chunks``
contiguous stretches of the curve (how much the extrapolation moves when a stretch is not seen),
plus the residual variance σ² of one observed loss, plus an extrapolation error like the MPL
forecaster's (``extrapolation_error`` × the remaining change of log loss, predicted or, when larger,
half the change of the curve's log-log slope now held to the budget).
"""

from __future__ import annotations

import math

import numpy as np

from scaling_callback.errors import InputError
from scaling_callback.fitting.power_law import PowerLawFit
from scaling_callback.stopping.forecast import MAD_TO_SIGMA, MIN_SD_LOG, Forecast
from scaling_callback.stopping.policy import RunView

MIN_POINTS = 6


class PowerLawForecaster:
    """Fit E + A·x^(−α) to a run's points so far and forecast the loss at its budget.

    Args:
        skip_fraction: points below this fraction of the current x are not fitted (warm-up transients).
        n_chunks: contiguous chunks of the jackknife (0, the default, disables it: on the benchmark
            sweep's constant-LR runs it changed the 90 % coverage by at most 8 points at 4× the cost).
        max_points: at most this many evenly spaced points are fitted.
        extrapolation_error: SD added per unit of remaining log-loss change: the predicted change, or
            ``slope_weight`` × the change if the curve's log-log slope now held to the budget, whichever is
            larger. A saturating fit may flatten too soon on a slow starter (a low-LR run early on: on the
            benchmark's crossing sweep, a forecast from 11 % of the eventual best run was 8 % too high,
            2.2 of its SDs without this term); the slope continued is how far it may still fall.
    """

    def __init__(self, skip_fraction: float = 0.1, n_chunks: int = 0, max_points: int = 96,
                 extrapolation_error: float = 0.35, slope_weight: float = 0.5) -> None:
        if not 0.0 <= skip_fraction < 1.0:
            raise InputError(f"skip_fraction must lie in [0, 1), got {skip_fraction!r}")
        if n_chunks < 0 or n_chunks == 1:
            raise InputError(f"n_chunks must be 0 or >= 2, got {n_chunks!r}")
        if extrapolation_error < 0:
            raise InputError(f"extrapolation_error must be >= 0, got {extrapolation_error!r}")
        if slope_weight < 0:
            raise InputError(f"slope_weight must be >= 0, got {slope_weight!r}")
        self.skip_fraction, self.n_chunks, self.max_points = skip_fraction, n_chunks, max_points
        self.extrapolation_error, self.slope_weight = extrapolation_error, slope_weight

    def forecast(self, run: RunView) -> tuple[Forecast | None, str]:
        """Forecast of the loss at ``run.budget`` (None with the reason when there is none)."""
        x, loss = run.x, run.loss
        keep = (x > self.skip_fraction * run.current_x) & (x > 0) & np.isfinite(loss) & (loss > 0)
        x, loss = x[keep], loss[keep]
        if x.size < MIN_POINTS:
            return None, f"{x.size} usable points, need {MIN_POINTS}"
        if x.size > self.max_points:
            index = np.unique(np.rint(np.linspace(0, x.size - 1, self.max_points)).astype(int))
            x, loss = x[index], loss[index]
        fit = PowerLawFit(n_bootstrap=0).fit(x, loss)
        if not fit.status_.startswith("ok"):
            return None, f"power-law fit {fit.status_}"
        params = _params(fit)
        log_x, log_y = np.log(x), np.log(loss)
        residuals = log_y - _log_prediction(params, log_x)[0]
        sigma = max(MAD_TO_SIGMA * float(np.median(np.abs(residuals - np.median(residuals)))), MIN_SD_LOG)
        rho = float(np.clip(_lag1(residuals), 0.0, 0.95))
        jacobian = _log_prediction(params, log_x)[1]
        covariance = sigma**2 * (1 + rho) / (1 - rho) * np.linalg.pinv(jacobian.T @ jacobian, rcond=1e-12, hermitian=True)
        chunks = self._jackknife(x, loss)
        log_now, slope_now = _log_and_slope(params, math.log(x[-1]))

        def at(target: float) -> tuple[float, float]:
            log_target = np.array([math.log(max(target, 1e-300))])
            centre, gradient = _log_prediction(params, log_target)
            laplace = float(gradient[0] @ covariance @ gradient[0])
            variance = max(laplace, _jackknife_variance(chunks, log_target)) + sigma**2
            change = max(abs(float(centre[0]) - log_now), self.slope_weight * abs(slope_now) * max(float(log_target[0]) - math.log(x[-1]), 0.0))
            variance += (self.extrapolation_error * change) ** 2
            return float(np.exp(centre[0])), max(math.sqrt(variance), MIN_SD_LOG)

        loss_end, sd_end = at(run.budget)
        return Forecast(loss_end, sd_end, "power law E + A*x^-alpha", False, at), "ok"

    def _jackknife(self, x: np.ndarray, loss: np.ndarray) -> list[np.ndarray]:
        """Parameters refitted with each contiguous chunk left out."""
        if self.n_chunks == 0 or x.size < 2 * MIN_POINTS:
            return []
        owner = np.arange(x.size) * self.n_chunks // x.size
        refits = []
        for chunk in range(self.n_chunks):
            keep = owner != chunk
            fit = PowerLawFit(n_bootstrap=0).fit(x[keep], loss[keep])
            if fit.status_.startswith("ok"):
                refits.append(_params(fit))
        return refits if len(refits) >= 2 else []


def _params(fit: PowerLawFit) -> np.ndarray:
    """(log A, α, log E) of a saturating fit."""
    return np.array([math.log(fit.A_), fit.alpha_, math.log(max(fit.E_, 1e-300))])


def _log_prediction(params: np.ndarray, log_x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """log(E + A·x^(−α)) and its Jacobian in (log A, α, log E), rows = points."""
    power = params[0] - params[1] * log_x
    log_pred = np.logaddexp(power, params[2])
    share = np.exp(power - log_pred)  # fraction of the loss that is the power term
    return log_pred, np.column_stack([share, -share * log_x, 1.0 - share])


def _log_and_slope(params: np.ndarray, log_x: float) -> tuple[float, float]:
    """log L and d log L / d log x of the fitted law at one point."""
    log_pred, jacobian = _log_prediction(params, np.array([log_x]))
    return float(log_pred[0]), -params[1] * float(jacobian[0, 0])


def _jackknife_variance(refits: list[np.ndarray], log_target: np.ndarray) -> float:
    """(g − 1)/g · Σ (f_(i) − f̄)² over the delete-one-chunk predictions."""
    if len(refits) < 2:
        return 0.0
    values = np.array([_log_prediction(p, log_target)[0][0] for p in refits])
    g = values.size
    return float((g - 1) / g * np.sum((values - values.mean()) ** 2))


def _lag1(residuals: np.ndarray) -> float:
    centred = residuals - residuals.mean()
    denominator = float(centred @ centred)
    return float(centred[1:] @ centred[:-1]) / denominator if denominator > 0 else 0.0
