"""Chinchilla L(N, D), its LSE form with gradient, and the compute-optimal frontier."""

from __future__ import annotations

import numpy as np
import pytest

from scaling_callback.laws.chinchilla import (
    CHINCHILLA_START_GRID,
    REPLICATION_PARAMS,
    chinchilla_loss,
    compute_optimal,
    frontier_exponents,
    log_loss_lse,
    params_to_theta,
    theta_to_params,
)

P = REPLICATION_PARAMS


def test_loss_is_the_three_term_sum():
    n, d = np.array([1e8, 1e10]), np.array([2e9, 2e11])
    expected = P["E"] + P["A"] / n ** P["alpha"] + P["B"] / d ** P["beta"]
    np.testing.assert_allclose(chinchilla_loss(n, d, **P), expected)


def test_lse_form_equals_log_loss_and_params_round_trip():
    n, d = np.geomspace(1e7, 1e11, 7), np.geomspace(1e9, 1e12, 7)
    theta = params_to_theta(**P)
    prediction, _ = log_loss_lse(theta, np.log(n), np.log(d))
    np.testing.assert_allclose(prediction, np.log(chinchilla_loss(n, d, **P)), rtol=1e-12)
    assert theta_to_params(theta) == pytest.approx(P)


def test_lse_gradient_matches_finite_differences_single_and_batched():
    log_n, log_d = np.log(np.geomspace(1e7, 1e10, 5)), np.log(np.geomspace(1e9, 1e11, 5))
    theta = np.array([6.0, 7.5, 0.6, 0.33, 0.37])
    _, gradient = log_loss_lse(theta, log_n, log_d)
    step = 1e-6
    for i in range(5):
        shifted = theta.copy()
        shifted[i] += step
        numeric = (log_loss_lse(shifted, log_n, log_d)[0] - log_loss_lse(theta, log_n, log_d)[0]) / step
        np.testing.assert_allclose(gradient[:, i], numeric, rtol=1e-4, atol=1e-8)
    batch = np.stack([theta, theta + 0.1])
    batch_prediction, batch_gradient = log_loss_lse(batch, log_n, log_d)
    assert batch_prediction.shape == (2, 5) and batch_gradient.shape == (2, 5, 5)
    np.testing.assert_allclose(batch_gradient[0], gradient)
    value_only, none = log_loss_lse(batch, log_n, log_d, with_gradient=False)
    assert none is None
    np.testing.assert_allclose(value_only, batch_prediction)


def test_replication_exponent_and_frontier_minimises_isoflop_loss():
    a, b = frontier_exponents(P["alpha"], P["beta"])
    assert a == pytest.approx(0.513, abs=5e-4) and a + b == pytest.approx(1.0)
    budget = 1e22
    front = compute_optimal(budget, **P)
    assert 6 * front.n_opt * front.d_opt == pytest.approx(budget)
    sizes = front.n_opt * np.exp(np.linspace(-0.5, 0.5, 201))
    along = chinchilla_loss(sizes, budget / (6 * sizes), **P)
    assert np.argmin(along) == 100
    assert front.loss == pytest.approx(along.min())


def test_frontier_scales_as_c_to_the_a_and_takes_the_flop_constant():
    a, _ = frontier_exponents(P["alpha"], P["beta"])
    low, high = compute_optimal(np.array([1e20, 1e24]), **P).n_opt
    assert np.log(high / low) / np.log(1e4) == pytest.approx(a)
    measured = compute_optimal(1e22, **P, flops_per_param_token=7.5)
    assert 7.5 * measured.n_opt * measured.d_opt == pytest.approx(1e22)


def test_start_grid_is_the_papers_4500_points():
    assert np.prod([len(v) for v in CHINCHILLA_START_GRID.values()]) == 4500
