"""Backtests of finished runs: which prefixes are scored, so sparse and dense sweeps both calibrate."""

from __future__ import annotations

import numpy as np
from curve_factory import TOTAL, per_step_lrs

from scaling_callback.fitting.forecast_types import RunCurve
from scaling_callback.fitting.run_forecast import RunForecaster
from scaling_callback.fitting.sweep_prior import backtest


def power_curve(x: np.ndarray) -> RunCurve:
    return RunCurve("run", x, 2.0 + 3.0 * x**-0.4, float(TOTAL), per_step_lrs("constant"))


def test_a_doubling_grid_curve_is_backtested_once_per_distinct_prefix_of_three_points_or_more():
    grid = TOTAL / 2.0 ** np.arange(5, -1, -1)  # budget/32 … budget: 2, 4, 5, 5 points at 10/25/50/75 %
    tests = backtest(RunForecaster(), power_curve(grid), None)
    assert [t.fraction for t in tests] == [0.25, 0.5]
    assert all(np.isfinite(t.error) for t in tests)


def test_a_densely_logged_curve_is_backtested_at_every_fraction():
    tests = backtest(RunForecaster(), power_curve(np.linspace(TOTAL / 50, TOTAL, 50)), None)
    assert [t.fraction for t in tests] == [0.1, 0.25, 0.5, 0.75]


def test_a_prefix_that_is_the_whole_curve_is_not_scored_against_its_own_end():
    ended_early = np.linspace(TOTAL / 50, 0.6 * TOTAL, 30)  # the 75 % prefix would be every point
    tests = backtest(RunForecaster(), power_curve(ended_early), None)
    assert [t.fraction for t in tests] == [0.1, 0.25, 0.5]


def test_a_curve_too_short_for_any_prefix_gives_no_backtest():
    assert backtest(RunForecaster(), power_curve(np.array([TOTAL / 4, TOTAL / 2, TOTAL])), None) == []
