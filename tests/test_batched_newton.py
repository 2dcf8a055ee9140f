"""Batched damped Newton: the same optima as scipy's L-BFGS-B, per fit, whatever the batch; bounds kept."""

from __future__ import annotations

import numpy as np

from scaling_callback.fitting.batched_newton import fit_batch, objective_values
from scaling_callback.fitting.chinchilla_objective import huber_objective
from scaling_callback.fitting.compute_optimal import ComputeOptimalLaw
from scaling_callback.fitting.multistart import minimize_from_starts
from scaling_callback.fitting.synthetic_sweeps import isoflop_sweep


def _law(points: int = 60) -> ComputeOptimalLaw:
    sweep = isoflop_sweep(points, noise=0.01, seed=2)
    return ComputeOptimalLaw(n_best_starts=4).fit(sweep["params"], sweep["tokens"], sweep["loss"])


def _weights(law: ComputeOptimalLaw, fits: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    weights = np.zeros((fits, law.n_points_))
    for row in range(fits):
        np.add.at(weights[row], rng.integers(0, law.n_points_, law.n_points_), 1.0)
    return weights


def test_objective_matches_the_scalar_objective():
    law = _law()
    weights = _weights(law, 3)
    x = np.vstack([law.local_optima_[0]] * 3) + np.array([[0.0], [0.01], [-0.02]])
    batched = objective_values(x, law.variant_, law._log_n, law._log_d, law._log_loss, weights, law.delta)
    for row in range(3):
        value, _ = huber_objective(x[row], law._log_n, law._log_d, law._log_loss, law.variant_, law.delta, weights[row])
        assert np.isclose(batched[row], value, rtol=1e-12)


def test_reaches_scipys_optimum_for_every_resample_and_does_not_depend_on_the_batch():
    law = _law()
    weights = _weights(law, 12)
    tolerance = law.diagnostics_["grad_tolerance"]
    args = (law.variant_, law._log_n, law._log_d, law._log_loss)
    together = fit_batch(law.local_optima_[0], *args, weights, law.delta, tolerance)
    assert together.converged.all()
    alone = fit_batch(law.local_optima_[0], *args, weights[5:6], law.delta, tolerance)
    np.testing.assert_allclose(alone.x[0], together.x[5], rtol=1e-12, atol=1e-12)  # rounding only
    for row in range(12):

        def objective(free, w=weights[row]):
            return huber_objective(free, law._log_n, law._log_d, law._log_loss, law.variant_, law.delta, w)

        best = minimize_from_starts(objective, law.local_optima_[:1], "L-BFGS-B", None, law.variant_.bounds()).best
        assert together.fun[row] <= best.fun * (1 + 1e-6) + 1e-15
        theta_newton, theta_scipy = law.variant_.theta(together.x[row]), law.variant_.theta(best.x)
        np.testing.assert_allclose(theta_newton[3:], theta_scipy[3:], atol=1e-3)  # alpha, beta


def test_exponents_stay_non_negative():
    law = _law(20)
    start = law.local_optima_[0].copy()
    bounded = [i for i, (low, _) in enumerate(law.variant_.bounds()) if low is not None]
    start[bounded] = -0.5  # outside the bounds: projected first
    result = fit_batch(
        start,
        law.variant_,
        law._log_n,
        law._log_d,
        law._log_loss,
        _weights(law, 4),
        law.delta,
        law.diagnostics_["grad_tolerance"],
    )
    assert np.all(result.x[:, bounded] >= 0.0)
