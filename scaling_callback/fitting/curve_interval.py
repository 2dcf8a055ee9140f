"""Predictive interval on a loss-curve law's prediction: group jackknife, Laplace as fallback.

Why not a residual bootstrap: it costs dozens of refits and, resampling independent residuals,
still assumes the law is right. The parameter part of the variance comes from:

- a **delete-one-group jackknife** (one warm-started refit per group; groups are whole curves
  when three or more are fitted, else four contiguous chunks of each curve). It is robust to a
  misspecified law: it measures how much the prediction moves when one schedule, or one stretch
  of the curve, is not seen. On the MPL paper's curves (prefix 0.5, leave-one-schedule-out) it
  covered 8 of 9 final losses where Laplace alone covered 4; on synthetic curves whose drop term
  is weakly identified it was 2.7x narrower than Laplace at the same (full) coverage, because
  Laplace linearises along nearly flat directions where the model is far from linear.
- the **Laplace approximation** (one Jacobian) when the jackknife is off or has < 2 groups.

The Laplace part is corrected in two ways:

- residuals of a smooth curve are autocorrelated (each logged loss shares most of its data with
  its neighbour), so the residual variance is inflated by the AR(1) factor (1 + ρ)/(1 − ρ),
  estimated from the lag-1 correlation of residuals within each curve;
- the interval is for a single observed loss, so the observation noise σ² is added to the
  parameter variance of the prediction.

Neither part measures the error of **transferring the law to a schedule it was not fitted on**:
the law is not exact, and predicting another schedule's final loss misses by more than the
parameters' spread (one WSD curve predicting the cosine run: errors 0.006–0.007 at interval
half-widths 0.0013–0.0018 before this term). A schedule not observed to its end therefore adds a
transfer variance τ² in log loss, estimated by :func:`transfer_variance` from the fitted curves'
own leave-one-curve-out errors, shrunk toward a prior measured on real curves.

The covariance is σ²·(JᵀJ)⁺ in the optimizer's coordinates (Gauss–Newton Hessian of the squared
log residuals, with σ estimated robustly by the MAD). Parameters held fixed (from a prior)
contribute no variance; the record says so.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import ndtri  # the normal quantile, without importing scipy.stats (fit workers start faster)

from scaling_callback.laws.lr_terms import LRTerms

MAD_TO_SIGMA = 1.4826
# Prior SD of the schedule-transfer error in log loss, and its weight in pseudo-curves. Measured on
# the MPL paper's 9 curves (25M/100M/400M x constant/cosine/WSD): 30 transfers (one curve fitted,
# another schedule's final predicted, incl. truncated fits; and two curves fitted, the third
# predicted) have an RMS relative final-loss error of 0.0037 (docs/per-run-laws.md). Two
# pseudo-curves let three fitted curves' own errors outweigh it.
TRANSFER_PRIOR_SD_LOG = 0.0037
TRANSFER_PRIOR_WEIGHT = 2.0


@dataclass(frozen=True)
class FinalPrediction:
    """Predicted loss at a run's planned end with its predictive interval ``[low, high]``.

    ``drop_term`` tells where the loss-drop parameters came from: ``fitted``, ``prior``, ``none``
    (a law without one) or ``unconstrained`` (no decay seen and no prior: ``loss`` and ``low`` are
    NaN and ``high`` is the no-decay prediction, an upper bound).
    """

    loss: float
    low: float
    high: float
    drop_term: str


@dataclass(frozen=True)
class PredictiveInterval:
    """What a predictive interval needs: Laplace covariance, residual scale, jackknife refits."""

    objective: object
    theta: np.ndarray
    covariance: np.ndarray
    sigma: float
    autocorrelation: float
    level: float
    jackknife_thetas: tuple[np.ndarray, ...] = ()
    transfer_variance: float = 0.0

    @classmethod
    def from_fit(
        cls,
        objective,
        theta: np.ndarray,
        loss: np.ndarray,
        curve_sizes: list[int],
        level: float,
        jackknife_thetas: tuple[np.ndarray, ...] = (),
        transfer_variance: float = 0.0,
    ) -> PredictiveInterval:
        log_pred, jacobian = objective.log_prediction(theta)
        residuals = np.log(loss) - log_pred
        sigma = MAD_TO_SIGMA * float(np.median(np.abs(residuals - np.median(residuals))))
        sigma = max(sigma, float(np.sqrt(np.mean(residuals**2))) * 0.1, 1e-12)
        rho = _lag1_correlation(residuals, curve_sizes)
        inflation = (1.0 + rho) / (1.0 - rho)
        gram = jacobian @ jacobian.T
        covariance = sigma**2 * inflation * np.linalg.pinv(gram, rcond=1e-12, hermitian=True)
        return cls(
            objective, np.asarray(theta), covariance, sigma, rho, level, tuple(jackknife_thetas), transfer_variance
        )

    def final(self, terms: LRTerms, drop_term: str, transferred: bool = True) -> FinalPrediction:
        """Prediction and interval at the single point of ``terms`` (``transferred``: a schedule not seen to its end)."""
        log_pred, jacobian = self.objective.log_prediction(self.theta, terms)
        gradient = jacobian[:, 0]
        if len(self.jackknife_thetas) >= 2:
            parameter_variance = self._jackknife_variance(terms)
        else:
            parameter_variance = float(gradient @ self.covariance @ gradient)
        variance = parameter_variance + self.sigma**2 + (self.transfer_variance if transferred else 0.0)
        half_width = ndtri(0.5 + self.level / 2.0) * np.sqrt(max(variance, 0.0))
        centre = float(log_pred[0])
        return FinalPrediction(
            float(np.exp(centre)), float(np.exp(centre - half_width)), float(np.exp(centre + half_width)), drop_term
        )

    def _jackknife_variance(self, terms: LRTerms) -> float:
        """(g − 1)/g · Σ (f_(i) − f̄)² over the delete-one-group refits' log predictions."""
        groups = len(self.jackknife_thetas)
        if groups < 2:
            return 0.0
        values = np.array([self.objective.log_prediction(theta, terms)[0][0] for theta in self.jackknife_thetas])
        return float((groups - 1) / groups * np.sum((values - values.mean()) ** 2))


def transfer_variance(log_errors: np.ndarray) -> float:
    """Posterior mean of τ² from leave-one-curve-out log errors: a scaled-inverse-χ² update of the prior.

    τ² = (ν₀·s₀² + Σ eᵢ²) / (ν₀ + k) with s₀ = :data:`TRANSFER_PRIOR_SD_LOG`, ν₀ =
    :data:`TRANSFER_PRIOR_WEIGHT` and eᵢ the error of predicting fitted curve i's last point from the
    others (k of them; none when one curve is fitted, and the prior stands alone).
    """
    errors = np.asarray(log_errors, dtype=float)
    errors = errors[np.isfinite(errors)]
    weight = TRANSFER_PRIOR_WEIGHT
    return float((weight * TRANSFER_PRIOR_SD_LOG**2 + np.sum(errors**2)) / (weight + errors.size))


def _lag1_correlation(residuals: np.ndarray, curve_sizes: list[int]) -> float:
    """Pooled lag-1 autocorrelation of residuals within curves, clipped to [0, 0.95]."""
    products, squares = 0.0, 0.0
    start = 0
    for size in curve_sizes:
        part = residuals[start : start + size]
        start += size
        if part.size < 3:
            continue
        centred = part - part.mean()
        products += float(centred[1:] @ centred[:-1])
        squares += float(centred @ centred)
    if squares <= 0:
        return 0.0
    return float(np.clip(products / squares, 0.0, 0.95))
