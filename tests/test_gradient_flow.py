import numpy as np
import pytest
from scipy.linalg import expm

from scaling_callback.fitting.power_law import PowerLawFit
from toy_models import gradient_flow, theory
from toy_models.plrf import PLRFProblem, spectrum_of


def test_loss_matches_the_matrix_exponential_solution():
    problem = PLRFProblem(1.0, 0.25, 40)
    features = problem.features(10, seed=2)
    spectrum = spectrum_of(problem, features)
    hessian = features.T @ (features * problem.data_variances[:, None])
    gradient_at_zero = features.T @ (problem.data_variances * problem.target)
    optimum = np.linalg.solve(hessian, gradient_at_zero)
    for t in (0.0, 0.7, 5.0, 60.0):
        theta = optimum - expm(-hessian * t) @ optimum  # θ(t) from θ(0) = 0
        direct = 0.5 * np.sum(problem.data_variances * (features @ theta - problem.target) ** 2)
        assert gradient_flow.gradient_flow_loss(spectrum, np.array([t]))[0] == pytest.approx(direct, rel=1e-8)


def test_loss_decreases_to_the_optimum():
    problem = PLRFProblem(1.0, 0.75, 64)
    spectrum = spectrum_of(problem, problem.features(16, seed=0))
    losses = gradient_flow.gradient_flow_loss(spectrum, np.logspace(-2, 9, 50))
    assert np.all(np.diff(losses) <= 1e-15)
    assert losses[-1] == pytest.approx(spectrum.optimum_loss, rel=1e-6)
    with pytest.raises(ValueError, match="non-negative"):
        gradient_flow.gradient_flow_loss(spectrum, np.array([-1.0]))


def test_time_exponent_at_large_width_is_bordelons():
    alpha, beta = 1.0, 0.25  # a = 2.5, b = 2: loss − P∞ ∝ t^(−0.75) while t << d^b
    problem = PLRFProblem(alpha, beta, 2048)
    spectrum = spectrum_of(problem, problem.features(512, seed=0))
    times = np.logspace(0, 4, 30)
    excess = gradient_flow.gradient_flow_loss(spectrum, times) - spectrum.optimum_loss
    fit = PowerLawFit(fit_offset=False, n_bootstrap=0).fit(times, excess)
    expected = theory.gradient_flow_time_exponent(*theory.bordelon_parameters(alpha, beta)).value
    assert fit.alpha_ == pytest.approx(expected, abs=0.08)


def test_frontier_exponents_land_in_a_loose_band():
    problem = PLRFProblem(1.0, 0.25, 512)
    sizes = np.unique(np.round(8 * 2 ** (np.arange(17) / 4)).astype(int))
    frontier = gradient_flow.frontier(problem, sizes, np.logspace(-1, 12, 300), [0, 1], np.logspace(1, 14, 150))
    computes, loss, size = frontier.fit_points()
    assert computes.size >= 5
    eta = PowerLawFit(fit_offset=False, n_bootstrap=0).fit(computes, loss).alpha_
    xi = -PowerLawFit(fit_offset=False, n_bootstrap=0).fit(computes, size).alpha_
    assert 0.35 < eta < 0.6 and 0.15 < xi < 0.55
