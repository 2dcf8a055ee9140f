"""What a sweep knows that one run cannot yet: its finished runs' posteriors, pooled into a prior, and backtests.

Empirical Bayes over the sweep (docs/forecasting.md):

- **α**: the prior is the mixture of the donors' α posteriors, each widened by ``ALPHA_SPREAD``
  (runs of one sweep differ in α: the MPL paper's three sizes fit α within ±0.1 of each other),
  plus ``ROBUST_MASS`` of the flat grid, so a run unlike all donors can still show it;
- **drop shape θ**: the mixture of the shape posteriors of donors whose own points identified their
  drop term, plus ``ROBUST_MASS`` of the flat grid;
- **drop size B̃ at each shape**: a normal whose mean and between-run variance are the donors'
  (their posterior means of B = B̃/η_0, a constant of the law that the LR does not change, times this
  run's peak LR; weighted by how alike their peak LR is, since a decay transfers best between alike LRs),
  in a hierarchical normal model whose mean also has the forecaster's broad prior and whose spread
  is pooled with pseudo-donors (``run_forecast.DROP_PSEUDO_DONORS``, ``DROP_SPREAD``), plus the
  donors' own posterior variance. Only donors that saw
  most of their planned decay (finished ones, or stopped ones past half of it) lend a drop;
- **noise**: the median of the donors' relative noise;
- **calibration** (κ, the scale of the grid posterior's own spread, and τ, the transfer error per
  unit of change still ahead, one for the power law's part and one for the drop term's): posterior means
  from backtests — each finished run forecast from its first 10, 25, 50 and 75 % with the prior the sweep
  had then, scored against its observed end — under log-normal priors on κ (median 1) and on both τs (median ``DEFAULT_TAU``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from scaling_callback.fitting.forecast_types import DEFAULT_TAU, Calibration, Posterior, RunCurve, SweepPrior
from scaling_callback.fitting.run_forecast import ALPHAS, MIN_POINTS, SHAPES, RunForecaster

ALPHA_SPREAD = 0.1
ROBUST_MASS = 0.1
LR_BANDWIDTH = math.log(2.0)  # donors whose peak LR differs by a factor 2 count e^(-1/2) as much
BACKTEST_FRACTIONS = (0.1, 0.25, 0.5, 0.75)
TAU_GRID = np.exp(np.linspace(math.log(0.01), math.log(2.0), 40))  # steps of 14 %: finer than the prior's SD 0.5
KAPPA_GRID = np.exp(np.linspace(math.log(0.2), math.log(3.0), 41))
PRIOR_SD_LOG = 0.5  # prior SD of log κ and log τ around 1 and DEFAULT_TAU: a factor e^0.5 = 1.6 is one SD


@dataclass(frozen=True)
class Backtest:
    """One forecast of a finished run from a prefix, against its observed end."""

    run: str
    fraction: float
    error: float  # observed final − forecast mean
    grid_var: float  # the grid posterior's own variance of the final
    noise_var: float  # observation noise²
    ahead: float  # |the power law's change still ahead| at the end
    drop_ahead: float = 0.0  # |the drop term's change still ahead| at the end

    def to_dict(self) -> dict[str, Any]:
        return {"run": self.run} | {k: getattr(self, k) for k in _BACKTEST_NUMBERS}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Backtest:
        return cls(str(values["run"]), *(float(values[k]) for k in _BACKTEST_NUMBERS))


_BACKTEST_NUMBERS = ("fraction", "error", "grid_var", "noise_var", "ahead", "drop_ahead")


@dataclass(frozen=True)
class Lent:
    """What one run that ended lends its sweep: its posterior (a donor of the prior) and its backtests (calibration).

    Computed once per run and kept in the sweep store, so that every later process adds it to its pool
    instead of refitting the run (a stopped run lends its posterior only, no backtests).
    """

    posterior: Posterior
    backtests: tuple[Backtest, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"posterior": self.posterior.to_dict(), "backtests": [t.to_dict() for t in self.backtests]}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Lent:
        return cls(Posterior.from_dict(values["posterior"]), tuple(Backtest.from_dict(t) for t in values["backtests"]))


class SweepPool:
    """The sweep's donors (runs that finished or stopped) and its backtests; ``prior()`` pools them.

    ``same_run=True``: the donor is the very run being forecast under another schedule (same model, data and
    peak LR), so its posterior is the prior as it is: α not widened, no robust mass, and B̃ known to its
    posterior variance (B is a constant of model and data, Luo et al. 2025 eq. 2), with no between-run spread.
    """

    def __init__(self, same_run: bool = False) -> None:
        self.same_run = same_run
        self.posteriors: dict[str, Posterior] = {}
        self.backtests: dict[str, list[Backtest]] = {}
        self._calibration: Calibration | None = None
        # the backtests' log-likelihood on the calibration grid, summed as runs join (None: sum them again)
        self._log_lik: np.ndarray | None = None
        self._priors: dict[
            tuple, SweepPrior | None
        ] = {}  # pooled priors by (peak LR, excluded run), until a donor joins

    def __len__(self) -> int:
        return len(self.posteriors)

    def add(self, posterior: Posterior, backtests: Iterable[Backtest] = ()) -> None:
        """Add (or replace) a donor and its backtests."""
        self.posteriors[posterior.name] = posterior
        tests = list(backtests)
        if tests:
            self._score(posterior.name, tests)
        self._calibration = None
        self._priors.clear()

    def remove(self, run: str) -> None:
        """Drop a donor and its backtests (a run that ended and was resumed since)."""
        self.posteriors.pop(run, None)
        if self.backtests.pop(run, None) is not None:
            self._log_lik = None
        self._calibration = None
        self._priors.clear()

    def add_backtests(self, run: str, backtests: Iterable[Backtest]) -> None:
        """Add another run's backtests to the calibration only (its posterior does not become a donor)."""
        self._score(run, list(backtests))
        self._calibration = None
        self._priors.clear()

    def _score(self, run: str, tests: list[Backtest]) -> None:
        """Keep ``run``'s backtests; a run's first ones join the summed log-likelihood, a replacement resums it."""
        if run in self.backtests:
            self._log_lik = None
        elif self._log_lik is not None:
            self._log_lik = self._log_lik + _log_likelihood(tests)
        self.backtests[run] = tests

    def calibration(self) -> Calibration:
        """κ, τ and τ_drop: posterior means over the backtests, or the defaults without any."""
        if self._calibration is None:
            tests = [t for ts in self.backtests.values() for t in ts]
            if not tests:
                self._calibration = Calibration()
            else:
                if self._log_lik is None:  # run by run, in the order they joined: the sum an incremental pool makes
                    self._log_lik = sum(_log_likelihood(ts) for ts in self.backtests.values())
                self._calibration = _from_log_likelihood(self._log_lik, tests)
        return self._calibration

    def prior(self, log_peak_lr: float | None = None, exclude: str | None = None) -> SweepPrior | None:
        """The pooled prior for a run of peak LR exp(``log_peak_lr``) (None without donors)."""
        key = (log_peak_lr, exclude if exclude in self.posteriors else None)
        if key not in self._priors:
            donors = [p for name, p in self.posteriors.items() if name != exclude]
            self._priors[key] = pool(donors, log_peak_lr, self.calibration(), self.same_run) if donors else None
        return self._priors[key]


def pool(
    donors: Sequence[Posterior], log_peak_lr: float | None, calibration: Calibration, same_run: bool = False
) -> SweepPrior:
    """Pool donors' posteriors into a :class:`SweepPrior` (see the module docstring; ``same_run``: :class:`SweepPool`)."""
    robust = 0.0 if same_run else ROBUST_MASS
    alpha = np.mean([p.alpha_weights if same_run else _widen(p.alpha_weights) for p in donors], axis=0)
    alpha_log_prior = np.log(np.maximum((1.0 - robust) * alpha + robust / ALPHAS.size, 1e-300))
    noise_rel = float(np.median([p.noise_rel for p in donors]))
    seen = [p for p in donors if p.drop_seen and p.shape_weights is not None]
    if not seen:
        return SweepPrior(
            alpha_log_prior, None, None, None, None, 0.0, noise_rel, calibration, tuple(p.name for p in donors)
        )
    shapes = np.mean([p.shape_weights for p in seen], axis=0)
    shape_log_prior = np.log(np.maximum((1.0 - robust) * shapes + robust / SHAPES.shape[0], 1e-300))
    weights = np.array([_lr_weight(p.log_peak_lr, log_peak_lr) for p in seen])
    weights = weights / weights.sum()
    # B of the multi-power law is a constant of model and data, not of the LR (Luo et al. 2025, eq. 2): a donor's
    # B̃ = B·η_0 becomes this run's by the ratio of the peak LRs
    ratio = np.array(
        [
            math.exp(log_peak_lr - p.log_peak_lr) if log_peak_lr is not None and p.log_peak_lr is not None else 1.0
            for p in seen
        ]
    )[:, None]
    means = np.array([p.drop_mean for p in seen]) * ratio  # (donors, shapes)
    within = np.array([p.drop_var for p in seen]) * ratio**2
    mean = weights @ means
    # Kish's effective number of donors; the run itself stands for infinitely many (no between-run spread to pool)
    effective = math.inf if same_run else 1.0 / float(np.sum(weights**2))
    between = (
        np.zeros_like(mean)
        if same_run
        else weights @ (means - mean) ** 2 * (effective / max(effective - 1.0, 1e-9) if effective > 1 else 0.0)
    )
    return SweepPrior(
        alpha_log_prior,
        shape_log_prior,
        mean,
        between,
        weights @ within,
        effective,
        noise_rel,
        calibration,
        tuple(p.name for p in donors),
    )


def backtest(forecaster: RunForecaster, curve: RunCurve, prior: SweepPrior | None) -> list[Backtest]:
    """Forecast a finished ``curve`` from its first 10/25/50/75 % of x and score each against its observed end.

    Every distinct prefix of at least ``MIN_POINTS`` points is scored, so sweeps logged sparsely (a doubling grid)
    calibrate too.
    """
    final = float(curve.loss[-1])
    tests, previous = [], 0
    for fraction in BACKTEST_FRACTIONS:
        keep = curve.x <= fraction * curve.budget
        n = int(keep.sum())
        # a prefix must leave its own points a residual (MIN_POINTS): scored on fewer, backtests measure the prior
        # alone, and on the toy doubling-grid sweep they narrowed a WSD run's pre-decay forecast until the best run was
        # stopped; the previous prefix again (a sparse curve) would count one forecast twice, and the whole curve
        # would score a forecast against its own last point
        if n < MIN_POINTS or n == previous or n == curve.x.size:
            continue
        previous = n
        prefix = RunCurve(
            curve.name, curve.x[keep], curve.loss[keep], curve.budget, curve.lrs, curve.step_per_x, curve.schedule
        )
        forecast = forecaster.fit(prefix, prior).forecast_
        if forecast is None:
            continue
        evidence = forecast.evidence
        tests.append(
            Backtest(
                curve.name,
                fraction,
                final - forecast.loss,
                evidence["grid_sd"] ** 2,
                evidence["noise"] ** 2,
                evidence["ahead"],
                evidence["drop_ahead"],
            )
        )
    return tests


def calibrate(tests: Sequence[Backtest]) -> Calibration:
    """(κ, τ, τ_drop) from the likelihood Σ log N(error; 0, κ²·grid_var + noise² + τ²·ahead² + τ_drop²·drop_ahead²).

    Priors: log κ ~ N(0, ``PRIOR_SD_LOG``²) (the grid posterior is right on average until the
    backtests say otherwise), log τ and log τ_drop ~ N(log ``DEFAULT_TAU``, ``PRIOR_SD_LOG``²). The
    estimates are the posterior means of the logs on a grid (a few backtests move them little; a mode
    of the posterior would jump to a grid end), so it cannot fail. τ and τ_drop are apart because
    they are different errors: extrapolating the run's own power law, and transferring a drop term
    borrowed from other runs (a backtest before a WSD decay scores both, one after it the first only).
    """
    return _from_log_likelihood(_log_likelihood(tests), tests)


def _log_likelihood(tests: Sequence[Backtest], chunk: int = 64) -> np.ndarray:
    """Σ over ``tests`` of log N(error; 0, total variance) at every (κ, τ, τ_drop) of the grid."""
    values = np.array([(t.error, t.grid_var, t.noise_var, t.ahead, t.drop_ahead) for t in tests], dtype=float)
    kappa2 = KAPPA_GRID[None, :, None, None] ** 2
    tau2, tau_drop2 = TAU_GRID[None, None, :, None] ** 2, TAU_GRID[None, None, None, :] ** 2
    out = np.zeros((KAPPA_GRID.size, TAU_GRID.size, TAU_GRID.size))
    for start in range(0, len(values), chunk):
        error, grid_var, noise_var, ahead, drop_ahead = (
            v[:, None, None, None] for v in values[start : start + chunk].T
        )
        total = np.maximum(kappa2 * grid_var + noise_var + tau2 * ahead**2 + tau_drop2 * drop_ahead**2, 1e-18)
        out -= 0.5 * np.sum(np.log(total) + error**2 / total, axis=0)
    return out


def _from_log_likelihood(log_lik: np.ndarray, tests: Sequence[Backtest]) -> Calibration:
    """Posterior means of log κ, log τ and log τ_drop under their priors, given the summed log-likelihood."""
    log_kappa = np.log(KAPPA_GRID)[:, None, None]
    log_tau, log_tau_drop = np.log(TAU_GRID)[None, :, None], np.log(TAU_GRID)[None, None, :]
    centre = math.log(DEFAULT_TAU)
    log_post = log_lik - 0.5 * (
        (log_kappa / PRIOR_SD_LOG) ** 2
        + ((log_tau - centre) / PRIOR_SD_LOG) ** 2
        + ((log_tau_drop - centre) / PRIOR_SD_LOG) ** 2
    )
    weights = np.exp(log_post - log_post.max())
    weights /= weights.sum()
    kappa, tau, tau_drop = (math.exp(float(np.sum(weights * v))) for v in (log_kappa, log_tau, log_tau_drop))
    runs = len({t.run for t in tests})
    return Calibration(kappa, tau, tau_drop, f"backtests ({len(tests)} forecasts of {runs} finished runs)")


def _widen(weights: np.ndarray) -> np.ndarray:
    """A donor's α posterior convolved with N(0, ALPHA_SPREAD²) on the grid."""
    kernel = np.exp(-0.5 * ((ALPHAS[:, None] - ALPHAS[None, :]) / ALPHA_SPREAD) ** 2)
    kernel /= kernel.sum(axis=0, keepdims=True)
    return kernel @ weights


def _lr_weight(donor: float | None, target: float | None) -> float:
    if donor is None or target is None:
        return 1.0
    return math.exp(-0.5 * ((donor - target) / LR_BANDWIDTH) ** 2)
