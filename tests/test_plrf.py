import numpy as np
import pytest

from toy_models import plrf


@pytest.fixture
def small_problem():
    problem = plrf.PLRFProblem(1.0, 1.5, 48)
    features = problem.features(12, seed=3)
    return problem, features, plrf.spectrum_of(problem, features)


def test_problem_validates_and_features_are_nested():
    problem = plrf.PLRFProblem(1.0, 0.5, 32)
    np.testing.assert_allclose(problem.data_variances[:3], [1.0, 0.25, 1 / 9])
    np.testing.assert_allclose(problem.target[:2], [1.0, 2**-0.5])
    small, large = problem.features(4, 7), problem.features(8, 7)
    np.testing.assert_allclose(small * 2.0, large[:, :4] * np.sqrt(8.0))  # same draws, scale 1/sqrt(d)
    with pytest.raises(ValueError, match="alpha"):
        plrf.PLRFProblem(0.0, 1.0, 10)
    with pytest.raises(ValueError, match="d must be"):
        problem.features(64, 0)


def test_nested_spectra_equal_direct_decompositions():
    problem = plrf.PLRFProblem(1.0, 0.75, 64)
    nested = plrf.nested_spectra(problem, np.array([4, 8, 16]), seed=1)
    direct = plrf.spectrum_of(problem, problem.features(8, 1))
    np.testing.assert_allclose(nested[1].eigenvalues, direct.eigenvalues, rtol=1e-10)
    assert nested[1].optimum_loss == pytest.approx(direct.optimum_loss, rel=1e-8)
    assert nested[0].loss_at_start() == pytest.approx(0.5 * np.sum(problem.data_variances * problem.target**2))
    assert nested[2].optimum_loss < nested[0].optimum_loss


def test_recursion_matches_monte_carlo_sgd(small_problem):
    problem, features, spectrum = small_problem
    checkpoints = np.array([0, 1, 5, 20, 60])
    gamma = plrf.stable_learning_rate(spectrum.eigenvalues.sum())
    exact = plrf.sgd_expected_loss([spectrum], checkpoints)[0]
    rng = np.random.default_rng(0)
    runs = np.array([plrf.sgd_monte_carlo_loss(problem, features, checkpoints, gamma, 1, rng) for _ in range(250)])
    error = runs.std(axis=0, ddof=1) / np.sqrt(len(runs))
    assert exact[0] == pytest.approx(runs[0, 0])
    assert np.all(np.abs(runs.mean(axis=0) - exact)[1:] < 4 * error[1:])


def test_recursion_with_batches_and_a_schedule_matches_monte_carlo(small_problem):
    problem, features, spectrum = small_problem
    checkpoints = np.array([0, 3, 20, 80])
    gamma = 2.0 * plrf.stable_learning_rate(spectrum.eigenvalues.sum())
    multipliers = np.linspace(1.0, 0.2, 80)
    exact = plrf.sgd_expected_loss(
        [spectrum], checkpoints, batch_size=4, learning_rate=gamma, lr_multipliers=multipliers
    )[0]
    rng = np.random.default_rng(1)
    runs = []
    for _ in range(200):
        theta, out, step = np.zeros(features.shape[1]), [], 0
        for step in range(81):
            if step in checkpoints:
                out.append(0.5 * np.sum(problem.data_variances * (features @ theta - problem.target) ** 2))
            if step == 80:
                break
            x = rng.standard_normal((4, problem.v)) * np.sqrt(problem.data_variances)
            z = x @ features
            theta -= gamma * multipliers[step] * z.T @ (z @ theta - x @ problem.target) / 4
        runs.append(out)
    runs = np.array(runs)
    error = runs.std(axis=0, ddof=1) / np.sqrt(len(runs))
    assert np.all(np.abs(runs.mean(axis=0) - exact)[1:] < 4 * error[1:])


def test_recursion_validates_its_inputs(small_problem):
    _, _, spectrum = small_problem
    with pytest.raises(ValueError, match="strictly increasing"):
        plrf.sgd_expected_loss([spectrum], np.array([5, 5]))
    with pytest.raises(ValueError, match="covers 3 steps"):
        plrf.sgd_expected_loss([spectrum], np.array([0, 10]), lr_multipliers=np.ones(3))
    with pytest.raises(ValueError, match="tr\\(H\\)"):
        plrf.stable_learning_rate(0.0)
