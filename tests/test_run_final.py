"""A run's final loss with its standard error: the smoothed training-loss fallback and the forecast's."""

from __future__ import annotations

import math

import numpy as np
import pytest

from scaling_callback.fitting.run_final import forecast_final, training_final


def test_training_final_is_unbiased_on_a_falling_curve_and_its_standard_error_matches_the_spread():
    steps = np.arange(1, 1001)
    truth = 3.0 + 2.0 * steps**-0.5  # a power law, still falling at the end: the window's mean is 3e-3 too high
    rng = np.random.default_rng(0)
    finals = [training_final(steps, truth + rng.normal(0, 0.05, steps.size)) for _ in range(400)]
    values = np.array([f.loss for f in finals])
    errors = np.array([f.sd for f in finals])
    assert truth[-200:].mean() - truth[-1] > 3e-3
    assert abs(values.mean() - truth[-1]) < 3 * values.std() / math.sqrt(values.size)  # no bias at the end
    assert np.median(errors) == pytest.approx(values.std(), rel=0.15)  # its SE is the spread it has
    assert values.std() < 0.05 / 5  # ~2σ/√200 for the last 200 steps: 5x better than one step
    assert all(f.source == "observed" and "200 steps" in f.method for f in finals[:1])


def test_the_window_is_a_fifth_of_the_curve_but_at_least_ten_points():
    flat = np.full(30, 2.0) + np.random.default_rng(1).normal(0, 0.01, 30)
    assert "last 10 steps" in training_final(np.arange(30), flat).method
    assert "last 100 steps" in training_final(np.arange(500), np.full(500, 2.0)).method


def test_degenerate_curves_give_a_mean_or_nan_not_an_error():
    assert math.isnan(training_final([1, 2], [math.nan, math.inf]).loss)
    two = training_final([1, 2], [3.0, 3.2])
    assert two.loss == pytest.approx(3.1) and two.sd == pytest.approx(0.1)
    one = training_final([5], [3.0])
    assert one.loss == 3.0 and one.sd is None


def test_forecast_final_keeps_the_predictive_sd():
    final = forecast_final(3.2, 0.02)
    assert (final.loss, final.sd, final.source, final.measured) == (3.2, 0.02, "predicted", False)
    assert forecast_final(None, 0.1) is None and forecast_final(math.nan, 0.1) is None
    assert forecast_final(3.0, math.nan).sd is None
