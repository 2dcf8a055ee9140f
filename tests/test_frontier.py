import numpy as np
import pytest

from scaling_callback.fitting.power_law import PowerLawFit
from toy_models.frontier import compute_optimal_frontier


def test_recovers_the_analytic_frontier_of_a_two_term_loss():
    # L(d, t) = d^(-a) + t^(-b) with f = d·t: d* ∝ f^(b/(a+b)), L* ∝ f^(-ab/(a+b)).
    a, b = 1.0, 0.5
    sizes = np.unique(np.round(16 * 2 ** (np.arange(33) / 4)))
    times = np.logspace(0, 10, 400)
    log_loss = np.log(sizes[:, None] ** -a + times[None, :] ** -b)
    frontier = compute_optimal_frontier(sizes, times, log_loss, np.logspace(2, 12, 200))
    computes, loss, size = frontier.fit_points()
    assert computes.size > 20
    eta = PowerLawFit(fit_offset=False, n_bootstrap=0).fit(computes, loss).alpha_
    xi = -PowerLawFit(fit_offset=False, n_bootstrap=0).fit(computes, size).alpha_
    assert eta == pytest.approx(a * b / (a + b), abs=0.01)
    assert xi == pytest.approx(b / (a + b), abs=0.01)


def test_budgets_outside_the_sizes_run_are_not_interior():
    sizes = np.array([1.0, 2, 4, 8, 16, 32, 64])
    times = np.logspace(0, 6, 100)
    log_loss = np.log(sizes[:, None] ** -1.0 + times[None, :] ** -0.5)
    frontier = compute_optimal_frontier(sizes, times, log_loss, np.array([1e-3, 1e3, 1e12]))
    assert np.isnan(frontier.best_loss[0]) and frontier.best_size_index[0] == -1
    assert not frontier.interior[2]  # the best size would exceed 64


def test_validates_shapes_and_window():
    with pytest.raises(ValueError, match="shape"):
        compute_optimal_frontier(np.array([1.0, 2.0]), np.array([1.0, 2.0]), np.zeros((3, 2)), np.array([1.0]))
    with pytest.raises(ValueError, match="at least 5 sizes"):
        compute_optimal_frontier(np.arange(1.0, 4.0), np.array([1.0, 2.0]), np.zeros((3, 2)), np.array([1.0]))
