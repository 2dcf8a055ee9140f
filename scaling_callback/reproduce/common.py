"""Pieces shared by the reproduce experiments: the result row, frontier exponent fits, and notes."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from scaling_callback.fitting.power_law import PowerLawFit
from toy_models.frontier import Frontier, compute_optimal_frontier

MIN_FIT_POINTS = 5


@dataclass
class Row:
    """One line of the reproduce table: a measured exponent next to its theory value."""

    experiment: str
    quantity: str
    theory: float
    measured: float
    ci_low: float
    ci_high: float
    seconds: float
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in asdict(self).items()}


@dataclass
class ExperimentResult:
    """Rows for the table plus whatever the experiment's figure needs."""

    rows: list[Row]
    plot_data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class FrontierExponents:
    """Loss exponent η (L* ∝ f^(−η)) and size exponent ξ (d* ∝ f^ξ) of a frontier, with intervals."""

    eta: float
    eta_ci: tuple[float, float]
    xi: float
    xi_ci: tuple[float, float]
    eta_amplitude: float  # A in L* = A·f^(−η)
    xi_amplitude: float  # A in d* = A·f^ξ
    frontier: Frontier
    interval_source: str
    n_points: int


def _pure_fit(x: np.ndarray, y: np.ndarray, n_bootstrap: int = 0) -> PowerLawFit:
    return PowerLawFit(fit_offset=False, n_bootstrap=n_bootstrap).fit(x, y)


def _exponents(frontier: Frontier) -> tuple[float, float] | None:
    computes, loss, size = frontier.fit_points()
    if computes.size < MIN_FIT_POINTS:
        return None
    return _pure_fit(computes, loss).alpha_, -_pure_fit(computes, size).alpha_


def fit_frontier(
    log_loss: np.ndarray,
    sizes: np.ndarray,
    times: np.ndarray,
    computes: np.ndarray,
    cost_per_time: np.ndarray | None = None,
    n_bootstrap: int = 200,
    random_state: int = 0,
) -> FrontierExponents | None:
    """η and ξ of the frontier of seed-averaged curves ``log_loss`` (seeds × sizes × times).

    Both exponents are pure power-law fits (:class:`PowerLawFit`, E fixed at 0) to the interior
    budgets of the frontier. With three or more seeds the intervals come from resampling seeds
    (the frontier is rebuilt and refitted for each resample); otherwise from the fitter's own
    bootstrap over frontier points; ``n_bootstrap=0`` gives no interval (NaN). Returns None when
    fewer than 5 budgets are interior.
    """
    log_loss = np.asarray(log_loss, dtype=float)
    frontier = compute_optimal_frontier(sizes, times, log_loss.mean(axis=0), computes, cost_per_time)
    computes_used, loss, size = frontier.fit_points()
    if computes_used.size < MIN_FIT_POINTS:
        return None
    n_seeds = log_loss.shape[0]
    if n_seeds >= 3 and n_bootstrap > 0:
        rng = np.random.default_rng(random_state)
        draws = []
        for _ in range(n_bootstrap):
            resample = log_loss[rng.integers(0, n_seeds, n_seeds)].mean(axis=0)
            exponents = _exponents(compute_optimal_frontier(sizes, times, resample, computes, cost_per_time))
            if exponents is not None:
                draws.append(exponents)
        draws_arr = np.asarray(draws)
        eta_ci = tuple(np.percentile(draws_arr[:, 0], [2.5, 97.5])) if len(draws) >= 10 else (math.nan, math.nan)
        xi_ci = tuple(np.percentile(draws_arr[:, 1], [2.5, 97.5])) if len(draws) >= 10 else (math.nan, math.nan)
        source = f"95% bootstrap over {n_seeds} seeds ({len(draws)} resamples)"
        eta_fit, size_fit = _pure_fit(computes_used, loss), _pure_fit(computes_used, size)
    else:
        eta_fit, size_fit = _pure_fit(computes_used, loss, n_bootstrap), _pure_fit(computes_used, size, n_bootstrap)
        eta_ci = eta_fit.alpha_ci_
        xi_ci = (-size_fit.alpha_ci_[1], -size_fit.alpha_ci_[0])
        source = (
            f"95% bootstrap over {computes_used.size} frontier points" if n_bootstrap > 0 else "no interval requested"
        )
    return FrontierExponents(
        eta=eta_fit.alpha_,
        eta_ci=(float(eta_ci[0]), float(eta_ci[1])),
        xi=-size_fit.alpha_,
        xi_ci=(float(xi_ci[0]), float(xi_ci[1])),
        eta_amplitude=eta_fit.A_,
        xi_amplitude=size_fit.A_,
        frontier=frontier,
        interval_source=source,
        n_points=int(computes_used.size),
    )


def coverage_note(
    theory: float,
    measured: float,
    interval: tuple[float, float],
    interval_source: str,
    trend: tuple[tuple[str, float], tuple[str, float]] | None = None,
    finite_size_value: float | None = None,
    mechanism: str | None = None,
) -> str:
    """Why the interval does or does not contain the theory value, from what was measured.

    ``trend`` holds the same exponent measured on a smaller and on the full range of sizes (the gap
    to theory counts as shrinking when it narrows by more than 0.01); ``finite_size_value`` the
    exponent the theory itself predicts at the sizes used; ``mechanism`` the known source of a
    finite-size bias, stated when the interval misses the theory.
    """
    low, high = interval
    if math.isnan(measured):
        return "fit failed"
    if not (math.isnan(low) or math.isnan(high)) and low <= theory <= high:
        return f"interval contains theory; {interval_source}"
    side = "above" if measured > theory else "below"
    parts = [f"theory outside interval: measured {side} theory by {measured - theory:+.3f}"]
    if finite_size_value is not None:
        sign = "negative" if finite_size_value < theory else "positive"
        same_side = (finite_size_value - theory) * (measured - theory) > 0
        explained = low <= finite_size_value <= high or (
            same_side and abs(measured - theory) <= abs(finite_size_value - theory)
        )
        parts.append(
            f"theory evaluated at the same finite sizes gives {finite_size_value:.3f} "
            f"(gap {finite_size_value - theory:+.3f})"
            + (
                f", so the measured gap is the known finite-size bias, {sign}"
                if explained
                else ": the measured gap is not the finite-size one"
            )
        )
    if trend is not None and not any(math.isnan(value) for _, value in trend):
        (small_label, small), (large_label, large) = trend
        shrinking = abs(large - theory) < abs(small - theory) - 0.01
        parts.append(
            f"{small_label}: {small:.3f} -> {large_label}: {large:.3f}, "
            + (
                f"a finite-size bias ({'positive' if large > theory else 'negative'}) shrinking with size"
                if shrinking
                else "no clear convergence within these sizes"
            )
        )
    if mechanism is not None:
        parts.append(mechanism)
    parts.append(interval_source)
    return "; ".join(parts)
