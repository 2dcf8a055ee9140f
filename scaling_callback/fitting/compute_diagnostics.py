"""Convergence and identifiability checks of a Chinchilla approach-3 fit, as readable warnings.

Why: published compute-optimal fits disagree mostly because of fitting choices. Besiroglu et al.
2024 traced Chinchilla's impossibly tight intervals to an optimiser that stopped near its start;
the (Mis)Fitting survey of scaling-law fits (Li et al. 2025) shows free fits with α and β far apart
(α = 0.20, β = 0.64, about 0.05 tokens per parameter) whose α = β refit is almost as good and far
more plausible (about 28 tokens per parameter). Each check here turns one such failure into a
sentence that says what to do next.
"""

from __future__ import annotations

import numpy as np

from scaling_callback.laws.chinchilla import log_loss_lse

#: A gradient (max-abs) below this fraction of its natural scale δ·n·max|log x| counts as converged.
RELATIVE_GRADIENT_TOLERANCE = 1e-6
#: |correlation| between two of E, α, β above which they are called nearly collinear.
COLLINEARITY_THRESHOLD = 0.98
#: α/β (or β/α) above which the exponents are called far apart.
EXPONENT_RATIO_LIMIT = 2.0
#: Frontier tokens per parameter outside this range are called implausible.
PLAUSIBLE_TOKENS_PER_PARAM = (1.0, 1000.0)

TIE_HINT = "refit with alpha = beta (ComputeOptimalLaw(tie_exponents=True); CLI --tie-exponents)"
FIXED_E_HINT = "fix E (fixed_E=VALUE; CLI --fixed-E VALUE)"


def gradient_scale(log_n: np.ndarray, log_d: np.ndarray, delta: float) -> float:
    """Natural size of the summed-Huber gradient: δ·n·max(1, max|log N|, max|log D|)."""
    spread = max(1.0, float(np.max(np.abs(log_n))), float(np.max(np.abs(log_d))))
    return delta * log_n.size * spread


def parameter_correlations(
    theta: np.ndarray, log_n: np.ndarray, log_d: np.ndarray, matrix: np.ndarray
) -> tuple[np.ndarray, float]:
    """Correlations of the free parameters (θ = matrix·free + offset) from the Gauss–Newton matrix JᵀJ of
    log L̂, and its condition number: a cheap, scale-free view of what the data can separate."""
    with np.errstate(all="ignore"):
        _, jacobian = log_loss_lse(theta, log_n, log_d)
        jacobian = jacobian @ matrix
        information = jacobian.T @ jacobian
        try:
            covariance = np.linalg.pinv(information)
            condition = float(np.linalg.cond(information))
        except (np.linalg.LinAlgError, ValueError):  # non-finite information: nothing is identified
            return np.ones((matrix.shape[1], matrix.shape[1])), float("inf")
        scale = np.sqrt(np.abs(np.diag(covariance)))
        correlation = covariance / np.outer(scale, scale)
    return np.nan_to_num(correlation, nan=1.0), condition


def collinear_pairs(
    correlation: np.ndarray, names: list[str], threshold: float = COLLINEARITY_THRESHOLD
) -> dict[str, float]:
    """Pairs among E, α, β (by free-parameter `names`) whose |correlation| exceeds `threshold`."""
    shown = {"e": "E", "alpha": "alpha", "beta": "beta", "alpha=beta": "alpha=beta"}
    watched = [i for i, name in enumerate(names) if name in shown]
    pairs = {}
    for position, i in enumerate(watched):
        for j in watched[position + 1 :]:
            value = float(correlation[i, j])
            if abs(value) > threshold:
                pairs[f"{shown[names[i]]}~{shown[names[j]]}"] = value
    return pairs


def convergence_warnings(
    converged: bool,
    grad_norm: float,
    grad_tolerance: float,
    message: str,
    n_reaching_best: int,
    n_optimized: int,
    boundary_coordinates: list[str],
    outside_coordinates: list[str],
) -> list[str]:
    """Sentences about an optimiser that stopped early, a multimodal landscape or a grid too small."""
    warnings = []
    if not converged:
        warnings.append(
            f"optimizer did not converge: max |gradient| = {grad_norm:.3g} > {grad_tolerance:.3g} ({message}); "
            "intervals from this fit would be too tight"
        )
    if outside_coordinates:
        warnings.append(
            "optimum lies outside the start grid in " + ", ".join(outside_coordinates) + "; widen the start grid"
        )
    if boundary_coordinates and n_reaching_best < max(2, (n_optimized + 1) // 2):
        warnings.append(
            "best start is on the grid boundary ("
            + ", ".join(boundary_coordinates)
            + f") and only {n_reaching_best} of "
            f"{n_optimized} optimised starts reached the best objective; the landscape is multimodal: widen the grid "
            "or optimise more starts"
        )
    return warnings


def identifiability_warnings(
    params: dict[str, float],
    pairs: dict[str, float],
    condition: float,
    tokens_per_param: float,
    at_flops: float,
    min_loss: float,
    exponents_free: bool,
    tied_comparison: str | None = None,
) -> list[str]:
    """Sentences about parameters the data cannot separate or a frontier that is implausible."""
    warnings = []
    alpha, beta, E = params["alpha"], params["beta"], params["E"]
    if pairs:
        listed = ", ".join(f"{pair} {value:+.3f}" for pair, value in pairs.items())
        warnings.append(
            f"nearly collinear parameters ({listed}; condition number {condition:.2g}): the data do not separate "
            f"them; {TIE_HINT} or {FIXED_E_HINT}"
        )
    if min(alpha, beta) <= 1e-3:
        warnings.append(
            f"an exponent is at zero (alpha = {alpha:.4g}, beta = {beta:.4g}): loss does not depend on that axis here"
        )
    if E >= min_loss:
        warnings.append(f"E = {E:.4g} is not below the lowest observed loss {min_loss:.4g}")
    elif E < 1e-3 * min_loss:
        warnings.append(f"E = {E:.3g} collapsed to zero: the irreducible loss is not identified; {FIXED_E_HINT}")
    if not exponents_free:
        return warnings
    ratio = max(alpha, beta) / max(min(alpha, beta), 1e-12)
    low, high = PLAUSIBLE_TOKENS_PER_PARAM
    implausible = not (low <= tokens_per_param <= high)
    if ratio > EXPONENT_RATIO_LIMIT or implausible:
        reasons = []
        if ratio > EXPONENT_RATIO_LIMIT:
            reasons.append(f"alpha = {alpha:.3f} and beta = {beta:.3f} are far apart (ratio {ratio:.2f})")
        reasons.append(
            f"the frontier implies {tokens_per_param:.3g} tokens per parameter at C = {at_flops:.3g}"
            + (" (implausible)" if implausible else "")
        )
        sentence = "possibly misidentified fit: " + "; ".join(reasons) + f"; {TIE_HINT} and compare"
        if tied_comparison:
            sentence += f" ({tied_comparison})"
        warnings.append(sentence)
    return warnings
