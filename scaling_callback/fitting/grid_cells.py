"""The closed-form part of the forecaster's grid posterior (:mod:`run_forecast`): one cell per (α, θ).

For fixed α and drop shape θ the multi-power law (Luo et al., ICLR 2025, eq. 1–2) is linear in
(L0, A, B̃): each cell's Gaussian posterior is a 3 × 3 solve, its weight the marginal likelihood, and
the forecast is the mixture over cells. Vectorised over the grid; see docs/forecasting.md.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import log_ndtr

WEAK_SCALE = 100.0  # prior SD of L0 and A in units of the curve's loss: only keeps the solve regular
MIN_SD = 1e-6


@dataclass(frozen=True)
class Cells:
    """The grid posterior of one fit: cell weights and per-cell linear-parameter posteriors."""

    weights: np.ndarray  # (α, θ)
    coef: np.ndarray  # (α, θ, 3): L0, A, B̃
    cov: np.ndarray  # (α, θ, 3, 3)
    alpha_weights: np.ndarray
    shape_weights: np.ndarray
    drop_mean: np.ndarray
    drop_var: np.ndarray


def grid_posterior(
    y: np.ndarray,
    decay: np.ndarray,
    drop: np.ndarray | None,
    sigma2: float,
    scale: float,
    b_mean: np.ndarray,
    b_var: np.ndarray,
    alpha_log_prior: np.ndarray,
    shape_log_prior: np.ndarray,
) -> Cells:
    """Closed-form linear posteriors in every (α, θ) cell and the cells' posterior weights."""
    n = y.size
    v = decay[:, :n]  # (a, n)
    n_shapes = b_mean.size if drop is not None else 1
    d = drop[:, :n] if drop is not None else np.zeros((1, n))
    ones = np.ones(n)
    weak = 1.0 / (WEAK_SCALE * scale) ** 2
    b_prec = 1.0 / np.maximum(b_var[:n_shapes] if drop is not None else np.ones(1), 1e-30)
    # Gram matrices (a, s, 3, 3) / σ² plus prior precisions
    g = np.empty((v.shape[0], n_shapes, 3, 3))
    g[..., 0, 0] = n
    g[..., 0, 1] = g[..., 1, 0] = (v @ ones)[:, None]
    g[..., 1, 1] = (np.einsum("an,an->a", v, v))[:, None]
    g[..., 0, 2] = g[..., 2, 0] = -(d @ ones)[None, :]
    g[..., 1, 2] = g[..., 2, 1] = -(v @ d.T)
    g[..., 2, 2] = np.einsum("sn,sn->s", d, d)[None, :]
    g /= sigma2
    g[..., 0, 0] += weak
    g[..., 1, 1] += weak
    g[..., 2, 2] += b_prec[None, :]
    rhs = np.empty((v.shape[0], n_shapes, 3))
    rhs[..., 0] = y.sum() / sigma2
    rhs[..., 1] = (v @ y)[:, None] / sigma2
    mu_b = b_mean[:n_shapes] if drop is not None else np.zeros(1)
    rhs[..., 2] = -(d @ y)[None, :] / sigma2 + (b_prec * mu_b)[None, :]
    cov, logdet = inverse_3x3(g)
    coef = np.einsum("asij,asj->asi", cov, rhs)
    quad = float(y @ y) / sigma2 + (b_prec * mu_b**2)[None, :] - np.einsum("asi,asi->as", rhs, coef)
    log_evidence = -0.5 * quad - 0.5 * logdet + 0.5 * np.log(b_prec)[None, :]
    # the floor L0 and the power-law amplitude A are positive (a loss is, and it falls with training): the prior is
    # truncated there, which multiplies a cell's evidence by its posterior mass of L0 > 0 and A > 0 (taken as
    # independent). Without it a 3-point curve at small α puts its floor far below zero and forecasts a final of ~0.
    log_evidence += log_ndtr(coef[..., 0] / np.sqrt(np.maximum(cov[..., 0, 0], 1e-300)))
    log_evidence += log_ndtr(coef[..., 1] / np.sqrt(np.maximum(cov[..., 1, 1], 1e-300)))
    log_w = log_evidence + alpha_log_prior[:, None] + (shape_log_prior[None, :] if drop is not None else 0.0)
    log_w -= log_w.max()
    weights = np.exp(log_w)
    weights /= weights.sum()
    alpha_weights = weights.sum(axis=1)
    shape_weights = weights.sum(axis=0)
    within = weights / np.maximum(shape_weights[None, :], 1e-300)
    b = coef[..., 2]
    drop_mean = (within * b).sum(axis=0)
    drop_var = (within * (cov[..., 2, 2] + (b - drop_mean[None, :]) ** 2)).sum(axis=0)
    return Cells(weights, coef, cov, alpha_weights, shape_weights, drop_mean, drop_var)


def inverse_3x3(g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Inverses and log-determinants of symmetric positive-definite 3×3 matrices (last two axes), in closed form.

    The adjugate over the determinant: thousands of 3×3 systems per fit cost a few elementwise passes
    instead of a batched LAPACK call each.
    """
    a, b, c = g[..., 0, 0], g[..., 0, 1], g[..., 0, 2]
    d, e, f = g[..., 1, 1], g[..., 1, 2], g[..., 2, 2]
    c00, c01, c02 = d * f - e * e, c * e - b * f, b * e - c * d
    c11, c12, c22 = a * f - c * c, b * c - a * e, a * d - b * b
    det = a * c00 + b * c01 + c * c02
    det = np.maximum(det, 1e-300)
    inverse = np.empty_like(g)
    inverse[..., 0, 0], inverse[..., 1, 1], inverse[..., 2, 2] = c00 / det, c11 / det, c22 / det
    inverse[..., 0, 1] = inverse[..., 1, 0] = c01 / det
    inverse[..., 0, 2] = inverse[..., 2, 0] = c02 / det
    inverse[..., 1, 2] = inverse[..., 2, 1] = c12 / det
    return inverse, np.log(det)


def likelihood_variance(
    y: np.ndarray, cells: Cells, decay: np.ndarray, drop: np.ndarray | None, noise: float, scale: float
) -> float:
    """σ² of the likelihood: max(noise², the best cell's misfit) × (1 + ρ)/(1 − ρ), ρ its residuals' lag-1 correlation.

    Smooth curves (validation losses, bin means) have autocorrelated residuals: the inflation keeps
    n such points from counting as n independent ones.
    """
    n = y.size
    a, s = np.unravel_index(int(np.argmax(cells.weights)), cells.weights.shape)
    coef = cells.coef[a, s]
    d = drop[s, :n] if drop is not None else 0.0
    residual = y - (coef[0] + coef[1] * decay[a, :n] - coef[2] * d)
    misfit = float(residual @ residual) / max(n - 3, 1)
    rho = 0.0
    if n >= 6:
        centred = residual - residual.mean()
        denominator = float(centred @ centred)
        rho = float(np.clip(centred[1:] @ centred[:-1] / denominator, 0.0, 0.9)) if denominator > 0 else 0.0
    return max(noise**2, misfit, (MIN_SD * scale) ** 2) * (1.0 + rho) / (1.0 - rho)


def mixture(
    cells: Cells, decay: np.ndarray, drop: np.ndarray | None, n: int
) -> tuple[np.ndarray, np.ndarray, float, np.ndarray, float]:
    """Mixture mean and variance at the targets (columns after the first n), the fitted loss at the last point,
    and the drop term's part of the mean (−B̃·D, ≤ 0) at the targets and at the last point."""
    # cells holding all but 1e-9 of the posterior mass (the rest cannot move a mean or a variance)
    a_index, s_index = np.nonzero(cells.weights > 1e-9 * cells.weights.max())
    v = decay[a_index, n:]  # (cells, m)
    d = -(drop[s_index, n:] if drop is not None else np.zeros((a_index.size, decay.shape[1] - n)))  # column of B̃
    coef, cov = cells.coef[a_index, s_index][..., None], cells.cov[a_index, s_index][..., None]
    means = coef[:, 0] + coef[:, 1] * v + coef[:, 2] * d
    variances = (
        cov[:, 0, 0]
        + 2.0 * cov[:, 0, 1] * v
        + 2.0 * cov[:, 0, 2] * d
        + cov[:, 1, 1] * v * v
        + 2.0 * cov[:, 1, 2] * v * d
        + cov[:, 2, 2] * d * d
    )
    w = cells.weights[a_index, s_index][:, None]
    w = w / w.sum()
    mean = (w * means).sum(axis=0)
    var = (w * (variances + (means - mean) ** 2)).sum(axis=0)
    drop_path = (w * coef[:, 2] * d).sum(axis=0)
    last_v, last_d = decay[:, n - 1], (drop[:, n - 1] if drop is not None else np.zeros(1))
    drop_cells = -cells.coef[..., 2] * last_d[None, :]
    fitted_cells = cells.coef[..., 0] + cells.coef[..., 1] * last_v[:, None] + drop_cells
    drop_now = float((cells.weights * drop_cells).sum()) if drop is not None else 0.0
    return mean, var, float((cells.weights * fitted_cells).sum()), drop_path, drop_now


def shared_loading(
    cells: Cells, decay: np.ndarray, drop: np.ndarray, n: int, b_var: np.ndarray, b_shared: np.ndarray
) -> np.ndarray:
    """Change of the forecast at the targets per SD of the sweep's shared drop mean μ (first order).

    In each cell the posterior mean is linear in the prior mean of B̃: its derivative is
    (c · Σ e₃) / V₀ with c the target's design row (1, v, −D), Σ the cell's posterior covariance and
    V₀ the prior variance of B̃; times SD(μ) it is the cell's loading, and the mixture weights
    average them. A run whose own points pin its drop has none; one far from its decay carries
    nearly SD(μ)·(its planned drop). Both signs are negative (a larger gain lowers the loss).
    """
    a_index, s_index = np.nonzero(cells.weights > 1e-9 * cells.weights.max())
    v = decay[a_index, n:]
    d = -drop[s_index, n:]
    cov = cells.cov[a_index, s_index]
    through = cov[:, 0, 2, None] + cov[:, 1, 2, None] * v + cov[:, 2, 2, None] * d
    per_sd = np.sqrt(np.maximum(b_shared[s_index], 0.0)) / np.maximum(b_var[s_index], 1e-300)
    w = cells.weights[a_index, s_index]
    return (w / w.sum()) @ (through * per_sd[:, None])
