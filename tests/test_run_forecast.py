"""The one forecaster: calibrated intervals on synthetic sweeps, few points, the sweep's prior, never raising."""

from __future__ import annotations

import math

import numpy as np
import pytest
from curve_factory import TOTAL, TRUE_MPL, per_step_lrs, synthetic_curve

from scaling_callback.fitting.forecast_types import Forecast, RunCurve
from scaling_callback.fitting.run_forecast import RunForecaster
from scaling_callback.fitting.sweep_forecaster import SweepForecaster
from scaling_callback.fitting.sweep_prior import Backtest, calibrate


def curve(kind: str, level: float, seed: int, upto: float = 1.0, noise: float = 0.002) -> tuple[RunCurve, float]:
    synthetic = synthetic_curve(
        kind, noise=noise, seed=seed, params=TRUE_MPL | {"L0": level, "alpha": 0.35 + 0.02 * seed}
    )
    x, loss = synthetic.steps[1:].astype(float), synthetic.loss[1:]
    keep = x <= upto * TOTAL
    return RunCurve(f"{kind}-{seed}", x[keep], loss[keep], float(TOTAL), per_step_lrs(kind)), float(loss[-1])


def test_ninety_percent_intervals_cover_eighty_to_a_hundred_percent_on_a_synthetic_sweep():
    kinds = ("cosine", "wsd", "constant", "two_stage")
    inside = []
    for held in range(8):
        forecaster = SweepForecaster()
        for seed in range(8):
            if seed != held:
                forecaster.add_ended(curve(kinds[seed % 4], 3.0 + 0.03 * seed, seed)[0], finished=True)
        for upto in (0.25, 0.5, 0.75):
            prefix, final = curve(kinds[held % 4], 3.0 + 0.03 * held, held, upto)
            forecast, status = forecaster.forecast(prefix)
            assert status == "ok"
            inside.append(forecast.low <= final <= forecast.high)
    assert 0.8 <= np.mean(inside) <= 1.0


def test_four_points_on_a_doubling_grid_get_a_forecast_as_wide_as_they_deserve():
    x = np.array([250.0, 500.0, 1000.0, 2000.0])
    loss = 2.0 + 3.0 * x**-0.4
    few = RunForecaster().fit(RunCurve("few", x, loss, 16_000.0)).forecast_
    many_x = np.linspace(250.0, 2000.0, 40)
    many = RunForecaster().fit(RunCurve("many", many_x, 2.0 + 3.0 * many_x**-0.4, 16_000.0)).forecast_
    truth = 2.0 + 3.0 * 16_000.0**-0.4
    assert few.law == "power" and few.low <= truth <= few.high
    assert few.sd >= many.sd


def test_the_sweep_prior_narrows_a_forecast_made_before_the_decay():
    prefix, final = curve("wsd", 3.0, 0, upto=0.5)
    alone = RunForecaster().fit(prefix).forecast_
    pooled = SweepForecaster()
    for seed in (1, 2, 3):
        pooled.add_ended(curve("wsd", 3.0 + 0.02 * seed, seed)[0], finished=True)
    informed, _ = pooled.forecast(prefix)
    assert alone.evidence["drop_term"] == "broad prior" and informed.evidence["drop_term"] == "sweep prior"
    assert informed.sd < alone.sd and informed.low <= final <= informed.high
    assert abs(informed.loss - final) < abs(alone.loss - final)


def test_a_run_lending_its_own_drop_to_itself_adds_no_between_run_spread():
    whole, _ = curve("wsd", 3.0, 0)
    prefix, final = curve("wsd", 3.0, 0, upto=0.5)
    prefix = RunCurve("wsd-0@half", prefix.x, prefix.loss, prefix.budget, prefix.lrs)
    forecasts = {}
    for same_run in (False, True):
        forecaster = SweepForecaster(same_run=same_run)
        forecaster.add_ended(whole, finished=False)
        forecasts[same_run], _ = forecaster.forecast(prefix)
    own, other = forecasts[True], forecasts[False]
    assert own.evidence["drop_term"] == "the run's own posterior" and other.evidence["drop_term"] == "sweep prior"
    assert own.sd < other.sd and own.low <= final <= own.high
    assert own.shared == 0.0  # no sweep-wide drop unknown: the drop is this run's


def test_what_is_still_ahead_splits_into_the_power_law_and_the_drop_term():
    before, _ = curve("wsd", 3.0, 0, upto=0.5)
    constant, _ = curve("constant", 3.0, 0, upto=0.5)
    after, _ = curve("wsd", 3.0, 0, upto=0.97)
    forecasts = {
        name: RunForecaster().fit(c, None).forecast_
        for name, c in [("before", before), ("constant", constant), ("after", after)]
    }
    assert forecasts["before"].evidence["drop_ahead"] > 0.01  # its whole decay is ahead
    assert forecasts["constant"].evidence["drop_ahead"] == 0.0
    assert forecasts["after"].evidence["drop_ahead"] < 0.2 * forecasts["before"].evidence["drop_ahead"]
    # halfway through, the power law still has a fall ahead whether or not a decay is
    assert all(forecasts[name].evidence["ahead"] > 0.0 for name in ("before", "constant"))


def test_the_calibration_is_what_the_backtests_show():
    rng = np.random.default_rng(0)
    transfer = [Backtest("r", 0.5, float(e), 1e-8, 0.0, 1.0) for e in rng.normal(0.0, 0.4, 400)]
    found = calibrate(transfer)
    assert found.tau == pytest.approx(0.4, abs=0.05) and "400 forecasts" in found.source
    too_wide = [Backtest("r", 0.5, float(e), 1.0, 0.0, 0.0) for e in rng.normal(0.0, 0.5, 400)]
    assert calibrate(too_wide).kappa == pytest.approx(0.5, rel=0.15)  # a grid spread twice the errors' is halved


@pytest.mark.parametrize("case", ["nan", "constant", "rising", "two", "unsorted", "zero_lr", "huge"])
def test_bad_curves_give_a_status_never_an_exception(case):
    x = np.arange(1.0, 41.0) * 100
    loss = 2.0 + x**-0.5
    lrs = per_step_lrs("cosine")
    if case == "nan":
        loss[::3] = math.nan
    elif case == "constant":
        loss[:] = 2.5
    elif case == "rising":
        loss = loss[::-1].copy()
    elif case == "two":
        x, loss = x[:2], loss[:2]
    elif case == "unsorted":
        x = x[::-1].copy()
    elif case == "zero_lr":
        lrs = np.zeros_like(lrs)
    elif case == "huge":
        loss = loss * 1e9
    fit = RunForecaster().fit(RunCurve("bad", x, loss, float(TOTAL), lrs))
    assert fit.status_ == "ok" or fit.forecast_ is None
    if fit.forecast_ is not None:
        assert all(
            math.isfinite(v) for v in (fit.forecast_.loss, fit.forecast_.sd, fit.forecast_.low, fit.forecast_.high)
        )


def test_a_forecast_survives_the_store_as_plain_values():
    forecast, _ = SweepForecaster().forecast(curve("cosine", 3.0, 0, 0.5)[0])
    again = Forecast.from_dict(forecast.to_dict())
    assert again == forecast


def test_a_run_awaiting_its_decay_carries_the_shared_drop_unknown_and_one_past_it_does_not():
    waiting = RunForecaster().fit(curve("wsd", 3.0, 0, upto=0.5)[0]).forecast_
    decayed = RunForecaster().fit(curve("cosine", 3.0, 1, upto=0.9)[0]).forecast_
    assert waiting.evidence["drop_term"] == "broad prior"
    assert waiting.shared < 0 and abs(waiting.shared) > 0.5 * waiting.sd  # most of its spread is the sweep's unknown
    assert abs(decayed.shared) < 0.25 * abs(waiting.shared)  # its own points showed its drop
    assert all(abs(s) <= sd for s, sd in zip(waiting.path_shared, waiting.path_sd))
