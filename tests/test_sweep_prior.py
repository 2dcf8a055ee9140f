"""Backtests of finished runs: which prefixes are scored, so sparse and dense sweeps both calibrate; the calibration."""

from __future__ import annotations

import numpy as np
import pytest
from curve_factory import TOTAL, per_step_lrs

from scaling_callback.fitting.forecast_types import Calibration, RunCurve
from scaling_callback.fitting.run_forecast import RunForecaster
from scaling_callback.fitting.sweep_prior import Backtest, SweepPool, backtest, calibrate


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


def transfer_tests(run: str, power_sd: float, drop_sd: float, n: int, seed: int) -> list[Backtest]:
    """n forecasts with only a power law ahead (error SD power_sd) and n with only a drop ahead (drop_sd)."""
    rng = np.random.default_rng(seed)
    power = [Backtest(run, 0.5, float(e), 1e-8, 0.0, 1.0, 0.0) for e in rng.normal(0.0, power_sd, n)]
    drop = [Backtest(run, 0.5, float(e), 1e-8, 0.0, 0.0, 1.0) for e in rng.normal(0.0, drop_sd, n)]
    return power + drop


def test_the_power_law_and_the_drop_term_get_their_own_transfer_error():
    found = calibrate(transfer_tests("r", 0.1, 0.6, 300, 0))
    assert found.tau == pytest.approx(0.1, rel=0.15)
    assert found.tau_drop == pytest.approx(0.6, rel=0.15)


def test_the_pool_sums_its_calibration_as_runs_join_and_again_when_one_leaves():
    pool = SweepPool()
    runs = {f"r{i}": transfer_tests(f"r{i}", 0.05 * (i + 1), 0.3, 4, i) for i in range(4)}
    for name, tests in runs.items():
        pool.add_backtests(name, tests)
        pool.calibration()  # each join adds to the summed likelihood
    assert same(pool.calibration(), calibrate([t for tests in runs.values() for t in tests]))
    pool.add_backtests("r0", runs["r3"])  # replaced: summed again
    assert same(pool.calibration(), calibrate(runs["r3"] + runs["r1"] + runs["r2"] + runs["r3"]))
    pool.remove("r3")
    assert same(pool.calibration(), calibrate(runs["r3"] + runs["r1"] + runs["r2"]))


def same(found: Calibration, expected: Calibration) -> bool:
    values = ("kappa", "tau", "tau_drop")
    return [getattr(found, v) for v in values] == pytest.approx([getattr(expected, v) for v in values], rel=1e-9)
