"""Many small approach-3 fits at once: damped Newton on the summed Huber objective, vectorised over fits.

A bootstrap refits the same five-parameter law to hundreds of reweighted copies of one point set.
One scipy L-BFGS-B call per resample spends most of its time in Python overhead (≈ 300 objective
calls of ~50 µs each); here every resample takes its Newton step in the same numpy operations.
The Hessian is exact: for the log-sum-exp prediction p = LSE(t_N, t_D, e) with term gradients
u_k (constant in θ) and softmax weights s_k, ∇p = Σ s_k u_k and ∇²p = Σ s_k u_k u_kᵀ − ∇p ∇pᵀ
(Hoffmann et al. 2022, eq. 3; docs/reference.md §3); the Huber loss contributes ψ'(r)·∇p∇pᵀ + ψ(r)·∇²p
per point. Steps are damped Levenberg–Marquardt style (a step is kept only if it lowers that fit's
objective) and projected onto the bounds α, β ≥ 0. A fit is converged when its largest projected
gradient is at most ``grad_tolerance`` — the criterion the point fit is judged by; the caller refits
the rest with scipy. Iterations are cheap (a fraction of a millisecond for 200 fits of 9 points) but a resample whose
points cannot pin the law down (say 5 distinct points for 5 parameters) crawls along a flat valley:
on the quickstart's 9 points, 175 of 200 resamples converged within 200 iterations, 180 within 1000
and all within 3000 (under a second in all), hence the default of 3000.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from scaling_callback.fitting.chinchilla_objective import Variant

#: Levenberg–Marquardt damping: start, factor on a rejected step, factor on an accepted one (the usual 10, /3).
DAMPING_START, DAMPING_UP, DAMPING_DOWN = 1e-3, 10.0, 1.0 / 3.0
PROGRESS_EVERY = 25  # iterations between progress calls
DAMPING_MAX = 1e12  # beyond this a fit's step is negligible: it is left to the fallback


@dataclass
class BatchedFits:
    """Solutions of a batch: free vectors, objectives, largest projected gradients, converged flags."""

    x: np.ndarray
    fun: np.ndarray
    grad_norm: np.ndarray
    converged: np.ndarray
    iterations: int


def _terms(theta: np.ndarray, log_n: np.ndarray, log_d: np.ndarray):
    a, b, e, alpha, beta = (theta[:, i, None] for i in range(5))
    term_n = a - alpha * log_n
    term_d = b - beta * log_d
    term_e = np.broadcast_to(e, term_n.shape)
    prediction = np.logaddexp(np.logaddexp(term_n, term_d), term_e)
    return prediction, np.exp(term_n - prediction), np.exp(term_d - prediction), np.exp(term_e - prediction)


def objective_values(x: np.ndarray, variant: Variant, log_n, log_d, log_loss, weights, delta: float) -> np.ndarray:
    """Summed weighted Huber objective of every row of ``x`` (rows: fits; weights: (fits, points))."""
    with np.errstate(all="ignore"):
        prediction, *_ = _terms(variant.theta(x), log_n, log_d)
        r = prediction - log_loss
        small = np.abs(r) <= delta
        rho = np.where(small, 0.5 * r * r, delta * (np.abs(r) - 0.5 * delta))
        values = np.sum(weights * rho, axis=1)
    return np.where(np.isfinite(values), values, np.inf)


def _gradient_hessian(x, variant: Variant, log_n, log_d, log_loss, weights, delta: float):
    with np.errstate(all="ignore"):
        prediction, s_n, s_d, s_e = _terms(variant.theta(x), log_n, log_d)
        r = prediction - log_loss
        small = np.abs(r) <= delta
        psi = weights * np.where(small, r, delta * np.sign(r))
        curvature = weights * small
        zeros = np.zeros_like(s_n)
        # term gradients u_k in θ = (a, b, e, α, β), one per point: shape (fits, points, 5)
        u_n = np.stack([np.ones_like(s_n), zeros, zeros, -np.broadcast_to(log_n, s_n.shape), zeros], axis=-1)
        u_d = np.stack([zeros, np.ones_like(s_n), zeros, zeros, -np.broadcast_to(log_d, s_n.shape)], axis=-1)
        u_e = np.stack([zeros, zeros, np.ones_like(s_n), zeros, zeros], axis=-1)
        grad_p = s_n[..., None] * u_n + s_d[..., None] * u_d + s_e[..., None] * u_e
        gradient = np.einsum("fp,fpi->fi", psi, grad_p)

        def weighted_gram(weight: np.ndarray, u: np.ndarray) -> np.ndarray:  # Σ_p weight·u uᵀ per fit, by matmul
            return np.matmul((weight[..., None] * u).transpose(0, 2, 1), u)

        hessian = (
            weighted_gram(curvature - psi, grad_p)
            + weighted_gram(psi * s_n, u_n)
            + weighted_gram(psi * s_d, u_d)
            + weighted_gram(psi * s_e, u_e)
        )
    matrix = variant.matrix
    return gradient @ matrix, np.einsum("ki,fkl,lj->fij", matrix, hessian, matrix)


def _projected(x: np.ndarray, gradient: np.ndarray, bounded: np.ndarray) -> np.ndarray:
    """The gradient with components that push a bounded coordinate at its bound (0) further out set to 0."""
    at_bound = bounded & (x <= 0.0) & (gradient > 0.0)
    return np.where(at_bound, 0.0, gradient)


def fit_batch(
    x0: np.ndarray,
    variant: Variant,
    log_n: np.ndarray,
    log_d: np.ndarray,
    log_loss: np.ndarray,
    weights: np.ndarray,
    delta: float | np.ndarray,
    grad_tolerance: float,
    max_iterations: int = 3000,
    progress: Callable[[int], None] | None = None,
) -> BatchedFits:
    """Minimise every fit's weighted Huber objective from ``x0`` (one row per fit, or one row for all).

    ``log_loss`` is one row of points shared by every fit, or one row per fit (a bootstrap that draws
    each point's loss from its predictive distribution); ``delta`` a threshold, or one per point.
    ``progress(n_finished)`` is called every ``PROGRESS_EVERY`` iterations.
    """
    fits = weights.shape[0]
    x = np.array(np.broadcast_to(np.atleast_2d(x0), (fits, variant.n_free)), dtype=float)
    bounded = np.array([low is not None for low, _ in variant.bounds()])
    x[:, bounded] = np.maximum(x[:, bounded], 0.0)
    per_fit = np.ndim(log_loss) == 2

    def losses(rows: np.ndarray) -> np.ndarray:
        return log_loss[rows] if per_fit else log_loss

    fun = objective_values(x, variant, log_n, log_d, log_loss, weights, delta)
    damping = np.full(fits, DAMPING_START)
    active = np.isfinite(fun)
    grad_norm = np.full(fits, np.inf)
    iterations = 0
    eye = np.eye(variant.n_free)
    for iterations in range(1, max_iterations + 1):
        if progress is not None and iterations % PROGRESS_EVERY == 0:
            progress(int(fits - active.sum()))
        rows = np.flatnonzero(active)
        if rows.size == 0:
            break
        gradient, hessian = _gradient_hessian(x[rows], variant, log_n, log_d, losses(rows), weights[rows], delta)
        projected = _projected(x[rows], gradient, bounded)
        grad_norm[rows] = np.max(np.abs(projected), axis=1)
        done = grad_norm[rows] <= grad_tolerance
        active[rows[done]] = False
        keep = ~done & (damping[rows] < DAMPING_MAX)
        active[rows[~keep]] = False
        rows, gradient, hessian, projected = rows[keep], gradient[keep], hessian[keep], projected[keep]
        if rows.size == 0:
            break
        fixed = projected == 0.0  # coordinates held at their bound (or with no gradient) this step
        scale = np.maximum(np.abs(np.diagonal(hessian, axis1=1, axis2=2)), 1e-12)
        system = hessian + damping[rows, None, None] * (scale[:, :, None] * eye)
        system = np.where(fixed[:, :, None] | fixed[:, None, :], eye, system)
        with np.errstate(all="ignore"):
            try:
                step = np.linalg.solve(system, -projected[..., None])[..., 0]
            except np.linalg.LinAlgError:
                step = np.stack([np.linalg.lstsq(m, -g, rcond=None)[0] for m, g in zip(system, projected)])
        trial = x[rows] + np.where(fixed, 0.0, step)
        trial[:, bounded] = np.maximum(trial[:, bounded], 0.0)
        trial_fun = objective_values(trial, variant, log_n, log_d, losses(rows), weights[rows], delta)
        better = np.isfinite(trial_fun) & (trial_fun <= fun[rows])
        x[rows[better]] = trial[better]
        fun[rows[better]] = trial_fun[better]
        damping[rows] = np.where(better, np.maximum(damping[rows] * DAMPING_DOWN, 1e-12), damping[rows] * DAMPING_UP)
    converged = grad_norm <= grad_tolerance
    return BatchedFits(x, fun, grad_norm, converged, iterations)
