"""Broken neural scaling law: formula, gradient, one- and two-break fits, warnings, errors."""

from __future__ import annotations

import numpy as np
import pytest

from scaling_callback.errors import InputError
from scaling_callback.fitting.broken_power import BrokenPowerLaw
from scaling_callback.laws.broken_power import bnsl, bnsl_power_term

X = np.exp(np.linspace(0.0, 10.0, 60))
ONE_BREAK = (0.5, 5.0, 0.1, [0.6], [300.0], [0.3])
DOUBLE_DESCENT = (0.2, 3.0, 0.3, [-0.8, 1.2], [50.0, 3000.0], [0.2, 0.3])


def test_formula_reduces_to_a_power_law_without_break_strength():
    np.testing.assert_allclose(bnsl(X, 0.5, 5.0, 0.3, [0.0], [100.0], [0.5]), 0.5 + 5.0 * X**-0.3)
    # well past a sharp break the log-log slope is -(c0 + c1)
    y = bnsl(np.array([1e6, 1e7]), 0.0, 1.0, 0.2, [0.5], [10.0], [0.05])
    assert np.log(y[1] / y[0]) / np.log(10.0) == pytest.approx(-0.7, abs=1e-3)


def test_power_term_gradient_matches_finite_differences():
    theta = np.array([np.log(3.0), 0.3, -0.8, 1.2, np.log(50.0), np.log(3000.0), np.log(0.2), np.log(0.3)])

    def log_term(t):
        return np.log(bnsl_power_term(X, np.exp(t[0]), t[1], t[2:4], np.exp(t[4:6]), np.exp(t[6:8]))[0])

    _, gradient = bnsl_power_term(X, 3.0, 0.3, [-0.8, 1.2], [50.0, 3000.0], [0.2, 0.3])
    for i in range(theta.size):
        shifted = theta.copy()
        shifted[i] += 1e-7
        np.testing.assert_allclose(gradient[:, i], (log_term(shifted) - log_term(theta)) / 1e-7, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("n_breaks, truth", [(1, ONE_BREAK), (2, DOUBLE_DESCENT)])
def test_fit_recovers_the_curve_and_its_breaks(n_breaks, truth):
    rng = np.random.default_rng(n_breaks)
    y = bnsl(X, *truth) * np.exp(rng.normal(0.0, 0.003, X.size))
    law = BrokenPowerLaw(n_breaks).fit(X, y)
    assert law.converged_ and law.warnings_ == []
    np.testing.assert_allclose(law.predict(X), bnsl(X, *truth), rtol=0.01)
    np.testing.assert_allclose(np.log(law.breaks_), np.log(truth[4]), atol=0.35)
    assert len(law.to_frame()) == 1 and law.to_dict()["choices"]["n_breaks"] == n_breaks


def test_double_descent_shape_is_not_monotone():
    y = bnsl(X, *DOUBLE_DESCENT)
    assert np.any(np.diff(y) > 0) and np.any(np.diff(y) < 0)


def test_bad_input_raises():
    with pytest.raises(InputError, match="n_breaks"):
        BrokenPowerLaw(3).fit(X, X)
    with pytest.raises(InputError, match="y must be finite and positive"):
        BrokenPowerLaw().fit([1.0, 2.0, 3.0, 4.0, 5.0, 6.0], [1.0, 0.0, 1.0, 1.0, 1.0, 1.0])
    with pytest.raises(InputError, match="cannot determine"):
        BrokenPowerLaw(2).fit(X[:8], X[:8])
