"""What a sweep knows that one run cannot yet: its finished runs' posteriors, pooled into a prior, and backtests.

Empirical Bayes over the sweep (docs/forecasting.md):

- **α**: the prior is the mixture of the donors' α posteriors, each widened by ``ALPHA_SPREAD``
  (runs of one sweep differ in α: the MPL paper's three sizes fit α within ±0.1 of each other),
  plus ``ROBUST_MASS`` of the flat grid, so a run unlike all donors can still show it;
- **drop shape θ**: the mixture of the shape posteriors of donors whose own points identified their
  drop term, plus ``ROBUST_MASS`` of the flat grid;
- **drop size B̃ at each shape**: a normal whose mean and between-run variance are the donors'
  (their posterior means weighted by how alike their peak LR is: a decay buys more at a higher LR),
  shrunk toward the broad prior the forecaster uses without donors, which counts as
  ``run_forecast.DROP_PSEUDO_DONORS`` donors, plus the donors' own posterior variance. Only donors that saw
  most of their planned decay (finished ones, or stopped ones past half of it) lend a drop;
- **noise**: the median of the donors' relative noise;
- **τ** (transfer error per unit of change still ahead): maximum a posteriori from backtests — each
  finished run forecast from its first 10, 25, 50 and 75 % with the prior the sweep had then, scored
  against its observed end — under a half-normal prior of scale ``DEFAULT_TAU``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

from scaling_callback.fitting.forecast_types import Posterior, RunCurve, SweepPrior
from scaling_callback.fitting.run_forecast import ALPHAS, DEFAULT_TAU, SHAPES, RunForecaster

ALPHA_SPREAD = 0.1
ROBUST_MASS = 0.1
LR_BANDWIDTH = math.log(2.0)  # donors whose peak LR differs by a factor 2 count e^(-1/2) as much
BACKTEST_FRACTIONS = (0.1, 0.25, 0.5, 0.75)
TAU_GRID = np.linspace(0.0, 3.0, 301)


@dataclass(frozen=True)
class Backtest:
    """One forecast of a finished run from a prefix, against its observed end."""

    run: str
    fraction: float
    error: float  # observed final − forecast mean
    variance: float  # the forecast's variance without the transfer term
    ahead: float  # |forecast change still ahead| at the end


class SweepPool:
    """The sweep's donors (runs that finished or stopped) and its backtests; ``prior()`` pools them."""

    def __init__(self) -> None:
        self.posteriors: dict[str, Posterior] = {}
        self.backtests: dict[str, list[Backtest]] = {}
        self._tau: tuple[float, str] | None = None

    def __len__(self) -> int:
        return len(self.posteriors)

    def add(self, posterior: Posterior, backtests: Iterable[Backtest] = ()) -> None:
        """Add (or replace) a donor and its backtests."""
        self.posteriors[posterior.name] = posterior
        tests = list(backtests)
        if tests:
            self.backtests[posterior.name] = tests
        self._tau = None

    def tau(self) -> tuple[float, str]:
        """τ and where it comes from: MAP over the backtests, or the default without any."""
        if self._tau is None:
            tests = [t for ts in self.backtests.values() for t in ts]
            self._tau = estimate_tau(tests) if tests else (DEFAULT_TAU, "default")
        return self._tau

    def prior(self, log_peak_lr: float | None = None, exclude: str | None = None) -> SweepPrior | None:
        """The pooled prior for a run of peak LR exp(``log_peak_lr``) (None without donors)."""
        donors = [p for name, p in self.posteriors.items() if name != exclude]
        if not donors:
            return None
        tau, tau_source = self.tau()
        return pool(donors, log_peak_lr, tau, tau_source)


def pool(donors: Sequence[Posterior], log_peak_lr: float | None, tau: float, tau_source: str) -> SweepPrior:
    """Pool donors' posteriors into a :class:`SweepPrior` (see the module docstring)."""
    alpha = np.mean([_widen(p.alpha_weights) for p in donors], axis=0)
    alpha_log_prior = np.log((1.0 - ROBUST_MASS) * alpha + ROBUST_MASS / ALPHAS.size)
    noise_rel = float(np.median([p.noise_rel for p in donors]))
    seen = [p for p in donors if p.drop_seen and p.shape_weights is not None]
    if not seen:
        return SweepPrior(alpha_log_prior, None, None, None, None, 0.0, noise_rel, tau, tau_source,
                          tuple(p.name for p in donors))
    shapes = np.mean([p.shape_weights for p in seen], axis=0)
    shape_log_prior = np.log((1.0 - ROBUST_MASS) * shapes + ROBUST_MASS / SHAPES.shape[0])
    weights = np.array([_lr_weight(p.log_peak_lr, log_peak_lr) for p in seen])
    weights = weights / weights.sum()
    means = np.array([p.drop_mean for p in seen])  # (donors, shapes)
    within = np.array([p.drop_var for p in seen])
    mean = weights @ means
    effective = 1.0 / float(np.sum(weights**2))  # Kish's effective number of donors
    between = weights @ (means - mean) ** 2 * (effective / max(effective - 1.0, 1e-9) if effective > 1 else 0.0)
    return SweepPrior(alpha_log_prior, shape_log_prior, mean, between, weights @ within, effective, noise_rel, tau,
                      tau_source, tuple(p.name for p in donors))


def backtest(forecaster: RunForecaster, curve: RunCurve, prior: SweepPrior | None) -> list[Backtest]:
    """Forecast a finished ``curve`` from its first 10/25/50/75 % of x and score each against its observed end."""
    final = float(curve.loss[-1])
    tests = []
    for fraction in BACKTEST_FRACTIONS:
        keep = curve.x <= fraction * curve.budget
        if keep.sum() < 4:
            continue
        prefix = RunCurve(curve.name, curve.x[keep], curve.loss[keep], curve.budget, curve.lrs, curve.step_per_x)
        forecast = forecaster.fit(prefix, prior).forecast_
        if forecast is None:
            continue
        transfer = forecast.evidence["transfer_sd"]
        variance = max(forecast.sd**2 - transfer**2, 0.0)
        tau = forecast.evidence["tau"]
        ahead = transfer / tau if tau > 0 else abs(forecast.loss - float(curve.loss[keep][-1]))
        tests.append(Backtest(curve.name, fraction, final - forecast.loss, variance, ahead))
    return tests


def estimate_tau(tests: Sequence[Backtest]) -> tuple[float, str]:
    """τ maximising Σ log N(error; 0, variance + τ²·ahead²) + log half-normal(τ; DEFAULT_TAU)."""
    errors = np.array([t.error for t in tests])
    variances = np.array([t.variance for t in tests])[:, None]
    ahead = np.array([t.ahead for t in tests])[:, None]
    total = variances + (TAU_GRID[None, :] * ahead) ** 2
    total = np.maximum(total, 1e-18)
    log_lik = -0.5 * np.sum(np.log(total) + errors[:, None] ** 2 / total, axis=0)
    log_post = log_lik - 0.5 * (TAU_GRID / DEFAULT_TAU) ** 2
    tau = float(TAU_GRID[int(np.argmax(log_post))])
    return tau, f"backtests ({len(tests)} forecasts of {len({t.run for t in tests})} finished runs)"


def _widen(weights: np.ndarray) -> np.ndarray:
    """A donor's α posterior convolved with N(0, ALPHA_SPREAD²) on the grid."""
    kernel = np.exp(-0.5 * ((ALPHAS[:, None] - ALPHAS[None, :]) / ALPHA_SPREAD) ** 2)
    kernel /= kernel.sum(axis=0, keepdims=True)
    return kernel @ weights


def _lr_weight(donor: float | None, target: float | None) -> float:
    if donor is None or target is None:
        return 1.0
    return math.exp(-0.5 * ((donor - target) / LR_BANDWIDTH) ** 2)
