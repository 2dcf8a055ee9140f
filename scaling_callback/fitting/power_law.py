"""Fit a saturating power law y = E + A·x^(−alpha), or a pure one (E = 0), to positive data.

The objective follows the project's convention (Hoffmann et al. 2022, approach 3; Besiroglu et al.
2024): a Huber loss (δ = 1e-3) on log residuals, *summed* over points, minimised with analytic
gradients and tight tolerances from a grid of starts. The saturating form is written as
log ŷ = logsumexp(a − alpha·log x, e) with A = exp(a), E = exp(e), which keeps A, E > 0 and is
smooth. Uncertainty is a percentile bootstrap over points, or over groups of points (runs, seeds)
when ``groups`` is given, each resample refitted from the full-data optimum and from a nearly-pure
power law (E ≈ 0).

Example:
    >>> fit = PowerLawFit(fit_offset=False).fit([10, 100, 1000], [1.0, 0.1, 0.01])
    >>> round(fit.alpha_, 6)
    1.0
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import minimize

from scaling_callback.errors import InputError
from scaling_callback.fitting.huber import DEFAULT_DELTA, huber

_OPTIMIZER = "L-BFGS-B"
_OPTIONS = {"ftol": 1e-15, "gtol": 1e-12, "maxiter": 5000}
_STATIONARY_GRADIENT = 1e-7  # a start whose line search gives up with a gradient this small has converged
_ALPHA_STARTS = (0.1, 0.3, 0.6, 1.0, 2.0)
_OFFSET_FRACTIONS = (1e-3, 0.5, 0.9)  # E starts as fractions of min(y)


@dataclass(frozen=True)
class _Solution:
    params: np.ndarray  # (a, alpha) or (a, alpha, e)
    objective: float
    converged: bool


class PowerLawFit:
    """Huber-in-log-space fit of y = E + A·x^(−alpha) (``fit_offset=True``) or y = A·x^(−alpha).

    Args:
        fit_offset: fit the irreducible term E; if False, E is fixed at 0 (a pure power law).
        delta: Huber threshold on log residuals.
        n_bootstrap: bootstrap resamples for the intervals (0 disables them).
        ci_level: coverage of the percentile intervals.
        random_state: seed of the bootstrap resampling.

    Learned attributes: ``alpha_``, ``A_``, ``E_``, ``alpha_ci_``, ``E_ci_``, ``objective_``,
    ``status_`` ("ok", "not converged: ..." with the best values kept, or "failed: <reason>" with
    NaN values; a failed fit never raises), ``choices_`` (every fitting choice, for the record).
    """

    def __init__(
        self,
        fit_offset: bool = True,
        delta: float = DEFAULT_DELTA,
        n_bootstrap: int = 200,
        ci_level: float = 0.95,
        random_state: int = 0,
    ) -> None:
        self.fit_offset = fit_offset
        self.delta = delta
        self.n_bootstrap = n_bootstrap
        self.ci_level = ci_level
        self.random_state = random_state

    # ------------------------------------------------------------------ public API
    def fit(self, x: Sequence[float], y: Sequence[float], groups: Sequence[Any] | None = None) -> PowerLawFit:
        """Fit to points (x, y), both positive; ``groups`` labels points resampled together."""
        log_x, log_y, group_ids = self._validated(x, y, groups)
        self._check_hyperparameters()
        starts = self._starts(log_x, log_y)
        best = self._best_of(starts, log_x, log_y)
        self.choices_ = self._choices(len(log_x), len(starts), group_ids)
        if best is None:
            self._set_failed("no start converged to a finite objective")
            return self
        self._set_solution(best)
        self.status_ = "ok" if best.converged else "not converged: the best start stopped before its tolerance"
        self.choices_["best_start_converged"] = best.converged
        self.alpha_ci_, self.E_ci_, n_failed = self._bootstrap(log_x, log_y, group_ids, best.params)
        self.choices_["bootstrap_failed_resamples"] = n_failed
        return self

    def predict(self, x: Sequence[float]) -> np.ndarray:
        """The fitted curve at x."""
        if not hasattr(self, "alpha_") or not np.isfinite(self.alpha_):
            raise InputError("PowerLawFit.predict called before a successful fit")
        x = np.asarray(x, dtype=float)
        return self.E_ + self.A_ * x ** (-self.alpha_)

    # ------------------------------------------------------------------ objective
    def _log_prediction(self, params: np.ndarray, log_x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """log ŷ and its Jacobian with respect to the parameters (rows: points)."""
        power_term = params[0] - params[1] * log_x
        if not self.fit_offset:
            return power_term, np.column_stack([np.ones_like(log_x), -log_x])
        log_pred = np.logaddexp(power_term, params[2])
        weight = np.exp(power_term - log_pred)  # share of the power term in ŷ
        return log_pred, np.column_stack([weight, -weight * log_x, 1.0 - weight])

    def _objective(self, params: np.ndarray, log_x: np.ndarray, log_y: np.ndarray) -> tuple[float, np.ndarray]:
        log_pred, jacobian = self._log_prediction(params, log_x)
        value, d_residual = huber(log_pred - log_y, self.delta)
        return value, d_residual @ jacobian

    def _minimise(self, start: np.ndarray, log_x: np.ndarray, log_y: np.ndarray) -> _Solution | None:
        result = minimize(self._objective, start, args=(log_x, log_y), jac=True, method=_OPTIMIZER, options=_OPTIONS)
        if not np.all(np.isfinite(result.x)) or not np.isfinite(result.fun):
            return None
        # L-BFGS-B often ends "ABNORMAL" at the optimum: with gtol this tight the line search finds no
        # decrease left to take; a vanishing gradient there is convergence, not a failure
        stationary = bool(np.all(np.isfinite(result.jac)) and np.max(np.abs(result.jac)) <= _STATIONARY_GRADIENT)
        return _Solution(np.asarray(result.x, dtype=float), float(result.fun), bool(result.success) or stationary)

    def _best_of(self, starts: list[np.ndarray], log_x: np.ndarray, log_y: np.ndarray) -> _Solution | None:
        solutions = [s for s in (self._minimise(p, log_x, log_y) for p in starts) if s is not None]
        return min(solutions, key=lambda s: s.objective) if solutions else None

    def _starts(self, log_x: np.ndarray, log_y: np.ndarray) -> list[np.ndarray]:
        """Ordinary least squares for the pure law; a grid over (alpha, E) for the saturating one."""
        slope, intercept = np.polyfit(log_x, log_y, 1)
        if not self.fit_offset:
            return [np.array([intercept, -slope])]
        y_min = float(np.exp(log_y.min()))
        starts = []
        for alpha in _ALPHA_STARTS:
            for fraction in _OFFSET_FRACTIONS:
                offset = fraction * y_min
                a = float(np.mean(np.log(np.exp(log_y) - offset) + alpha * log_x))
                starts.append(np.array([a, alpha, np.log(offset)]))
        return starts

    # ------------------------------------------------------------------ uncertainty
    def _bootstrap(
        self, log_x: np.ndarray, log_y: np.ndarray, group_ids: np.ndarray, best: np.ndarray
    ) -> tuple[tuple[float, float], tuple[float, float], int]:
        """Percentile intervals of alpha and E from case (or cluster) resampling."""
        nan_pair = (float("nan"), float("nan"))
        if self.n_bootstrap <= 0:
            return nan_pair, nan_pair, 0
        rng = np.random.default_rng(self.random_state)
        unique_groups = np.unique(group_ids)
        members = [np.flatnonzero(group_ids == g) for g in unique_groups]
        alphas, offsets, n_failed = [], [], 0
        for _ in range(self.n_bootstrap):
            picked = rng.integers(0, len(members), len(members))
            index = np.concatenate([members[i] for i in picked])
            if len(np.unique(log_x[index])) < len(best) + 1:
                n_failed += 1
                continue
            starts = [best]
            if self.fit_offset:  # also try the nearly-pure law, the other basin a resample can prefer
                starts.append(np.array([best[0], best[1], float(log_y[index].min()) + np.log(_OFFSET_FRACTIONS[0])]))
            solution = self._best_of(starts, log_x[index], log_y[index])
            if solution is None:
                n_failed += 1
                continue
            alphas.append(solution.params[1])
            offsets.append(np.exp(solution.params[2]) if self.fit_offset else 0.0)
        if len(alphas) < max(10, self.n_bootstrap // 2):
            return nan_pair, nan_pair, n_failed
        tail = 50.0 * (1.0 - self.ci_level)
        alpha_ci = tuple(float(v) for v in np.percentile(alphas, [tail, 100.0 - tail]))
        offset_ci = tuple(float(v) for v in np.percentile(offsets, [tail, 100.0 - tail]))
        return alpha_ci, offset_ci, n_failed  # type: ignore[return-value]

    # ------------------------------------------------------------------ bookkeeping
    def _validated(
        self, x: Sequence[float], y: Sequence[float], groups: Sequence[Any] | None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        x_arr = np.asarray(x, dtype=float).ravel()
        y_arr = np.asarray(y, dtype=float).ravel()
        if x_arr.shape != y_arr.shape:
            raise InputError(f"x and y differ in length: {x_arr.size} != {y_arr.size}")
        for name, values in (("x", x_arr), ("y", y_arr)):
            bad = ~np.isfinite(values) | (values <= 0)
            if bad.any():
                raise InputError(f"{name} must be finite and positive; got {values[bad][0]!r}")
        n_params = 3 if self.fit_offset else 2
        if len(np.unique(x_arr)) < n_params + 1:
            raise InputError(f"need at least {n_params + 1} distinct x values, got {len(np.unique(x_arr))}")
        if groups is None:
            group_ids = np.arange(x_arr.size)
        else:
            group_ids = np.unique(np.asarray(groups, dtype=object).astype(str), return_inverse=True)[1]
            if group_ids.size != x_arr.size:
                raise InputError(f"groups has {group_ids.size} labels for {x_arr.size} points")
        return np.log(x_arr), np.log(y_arr), group_ids

    def _check_hyperparameters(self) -> None:
        if not (self.delta > 0):
            raise InputError(f"delta must be positive, got {self.delta!r}")
        if not (0.0 < self.ci_level < 1.0):
            raise InputError(f"ci_level must lie in (0, 1), got {self.ci_level!r}")
        if self.n_bootstrap < 0:
            raise InputError(f"n_bootstrap must be >= 0, got {self.n_bootstrap!r}")

    def _choices(self, n_points: int, n_starts: int, group_ids: np.ndarray) -> dict[str, Any]:
        return {
            "form": "E + A*x^(-alpha)" if self.fit_offset else "A*x^(-alpha) (E fixed at 0)",
            "loss": "huber on log residuals, summed",
            "delta": self.delta,
            "optimizer": f"scipy {_OPTIMIZER} {_OPTIONS}, analytic gradient",
            "starts": n_starts,
            "start_grid": {"alpha": list(_ALPHA_STARTS), "E/min(y)": list(_OFFSET_FRACTIONS)}
            if self.fit_offset
            else "OLS",
            "points_used": n_points,
            "bootstrap": {
                "resamples": self.n_bootstrap,
                "unit": "points" if len(np.unique(group_ids)) == n_points else f"{len(np.unique(group_ids))} groups",
                "interval": f"percentile {self.ci_level:.0%}",
                "seed": self.random_state,
            },
        }

    def _set_solution(self, solution: _Solution) -> None:
        self.objective_ = solution.objective
        self.A_ = float(np.exp(solution.params[0]))
        self.alpha_ = float(solution.params[1])
        self.E_ = float(np.exp(solution.params[2])) if self.fit_offset else 0.0

    def _set_failed(self, reason: str) -> None:
        self.status_ = f"failed: {reason}"
        self.alpha_ = self.A_ = self.E_ = self.objective_ = float("nan")
        self.alpha_ci_ = self.E_ci_ = (float("nan"), float("nan"))
