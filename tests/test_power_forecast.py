"""The power-law forecast used without an LR schedule: its final loss, and how wide it is early."""

from __future__ import annotations

import math

import numpy as np
import pytest

from scaling_callback.errors import InputError
from scaling_callback.stopping.policy import RunView
from scaling_callback.stopping.power_forecast import PowerLawForecaster


def curve(n: int, budget: float = 4000.0) -> RunView:
    x = np.arange(40.0, budget + 1, 40.0)
    loss = (0.5 + 2.0 * x**-0.4) * np.exp(0.001 * np.random.default_rng(0).standard_normal(x.size))
    return RunView("r", x[:n], loss[:n], budget, "running")


def test_forecasts_the_final_of_a_saturating_power_law():
    forecast, why = PowerLawForecaster().forecast(curve(40))
    truth = 0.5 + 2.0 * 4000.0**-0.4
    assert why == "ok" and abs(math.log(forecast.loss / truth)) < 2 * forecast.sd_log


def test_the_slope_of_the_curve_now_widens_early_forecasts():
    """A saturating fit may flatten too soon on a slow starter; its log-log slope continued bounds how far it may still fall."""
    early = curve(10)
    narrow, _ = PowerLawForecaster(slope_weight=0.0).forecast(early)
    wide, _ = PowerLawForecaster(slope_weight=1.0).forecast(early)
    assert wide.loss == pytest.approx(narrow.loss) and wide.sd_log > narrow.sd_log
    late = curve(99)  # one point before its end: nothing left to extrapolate
    assert PowerLawForecaster(slope_weight=1.0).forecast(late)[0].sd_log == pytest.approx(
        PowerLawForecaster(slope_weight=0.0).forecast(late)[0].sd_log, rel=0.05)


def test_too_few_points_give_no_forecast():
    forecast, why = PowerLawForecaster().forecast(curve(3))
    assert forecast is None and "need" in why


@pytest.mark.parametrize("kwargs, name", [({"skip_fraction": 1.0}, "skip_fraction"), ({"n_chunks": 1}, "n_chunks"),
                                          ({"extrapolation_error": -1}, "extrapolation_error"),
                                          ({"slope_weight": -0.5}, "slope_weight")])
def test_rejects_bad_settings_by_name(kwargs, name):
    with pytest.raises(InputError, match=name):
        PowerLawForecaster(**kwargs)
