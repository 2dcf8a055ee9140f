"""Multi-start helper: choosing starts, tight optimisation, failures turned into outcomes."""

from __future__ import annotations

import numpy as np

from scaling_callback.fitting.multistart import minimize_from_starts, minimize_one, pick_best_starts


def quadratic(x: np.ndarray) -> tuple[float, np.ndarray]:
    return float(((x - 3.0) ** 2).sum()), 2.0 * (x - 3.0)


def test_pick_best_starts_skips_duplicates_and_non_finite_scores():
    starts = np.array([[0.0], [1.0], [1.0], [2.0], [5.0]])
    scores = np.array([3.0, 1.0, 1.0, np.nan, 2.0])
    assert pick_best_starts(scores, starts, 3).tolist() == [1, 4, 0]


def test_minimize_from_starts_sorts_outcomes_and_counts_agreement():
    result = minimize_from_starts(quadratic, np.array([[0.0, 0.0], [10.0, -4.0]]))
    assert np.allclose(result.best.x, 3.0) and result.best.success
    assert result.n_reaching_best() == 2 and result.best.grad_norm < 1e-6


def test_numerical_failure_becomes_an_unsuccessful_outcome():
    def broken(x: np.ndarray) -> tuple[float, np.ndarray]:
        raise FloatingPointError("overflow")

    outcome = minimize_one(broken, np.zeros(2))
    assert not outcome.success and outcome.fun == float("inf") and "overflow" in outcome.message
