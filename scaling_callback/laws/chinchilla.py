"""Chinchilla's parametric loss L(N, D) and its compute-optimal frontier (pure numpy).

Hoffmann et al. 2022, "Training Compute-Optimal Large Language Models", approach 3:

* eq. (2):  L(N, D) = E + A / N^α + B / D^β  (N parameters, D training tokens).
* eq. (3):  fitted as  log L ≈ LSE(a − α·log N, b − β·log D, e)  with A = e^a, B = e^b, E = e^e,
  a Huber loss on the log residuals; the log-sum-exp form keeps every term positive and the
  objective smooth.
* eq. (4):  minimising L under C = 6·N·D gives
  N_opt(C) = G·(C/6)^a,  D_opt(C) = G⁻¹·(C/6)^b,  G = (α·A / (β·B))^(1/(α+β)),
  a = β/(α+β),  b = α/(α+β).

Besiroglu et al. 2024, "Chinchilla Scaling: A replication attempt" (Epoch AI) refit eq. (3) on
the paper's own points and found a = 0.513 (the paper's tight 0.454–0.455 came from a stalled
optimizer); their parameters are kept here as a reference for tests and benchmarks.

The FLOP constant is a parameter (``flops_per_param_token``, 6 by default) so the same formulas
serve measured FLOPs C = k·N·D: the frontier then uses C/k in place of C/6.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

#: Parameter order of the log-space vector θ used by the fitters: (a, b, e, α, β).
THETA_NAMES = ("a", "b", "e", "alpha", "beta")

#: Besiroglu et al. 2024, Table 1 (their refit of Hoffmann et al.'s approach 3).
REPLICATION_PARAMS = {"E": 1.817, "A": 482.0, "B": 2085.0, "alpha": 0.348, "beta": 0.366}

#: Hoffmann et al. 2022's grid of starts for eq. (3) (4,500 points).
CHINCHILLA_START_GRID = {
    "a": np.arange(0.0, 25.0 + 1e-9, 5.0),
    "b": np.arange(0.0, 25.0 + 1e-9, 5.0),
    "e": np.arange(-1.0, 1.0 + 1e-9, 0.5),
    "alpha": np.arange(0.0, 2.0 + 1e-9, 0.5),
    "beta": np.arange(0.0, 2.0 + 1e-9, 0.5),
}


class Frontier(NamedTuple):
    """Compute-optimal allocation at budgets C (arrays shaped like C)."""

    n_opt: np.ndarray
    d_opt: np.ndarray
    loss: np.ndarray


def chinchilla_loss(n: np.ndarray, d: np.ndarray, E: float, A: float, B: float, alpha: float, beta: float) -> np.ndarray:
    """L(N, D) = E + A/N^α + B/D^β (Hoffmann et al. 2022, eq. 2)."""
    n = np.asarray(n, dtype=float)
    d = np.asarray(d, dtype=float)
    return E + A * n ** (-alpha) + B * d ** (-beta)


def log_loss_lse(
    theta: np.ndarray, log_n: np.ndarray, log_d: np.ndarray, with_gradient: bool = True
) -> tuple[np.ndarray, np.ndarray | None]:
    """log L̂ = LSE(a − α·log N, b − β·log D, e) and its gradient (Hoffmann et al. 2022, eq. 3).

    `theta` is (a, b, e, α, β) or a stack of them shaped (m, 5); the prediction has shape
    (n,) or (m, n). The gradient with respect to θ (None unless `with_gradient`) has a trailing
    axis of 5: with w the softmax weights of the three terms, ∂/∂a = w₁, ∂/∂b = w₂, ∂/∂e = w₃,
    ∂/∂α = −w₁·log N, ∂/∂β = −w₂·log D.
    """
    theta = np.asarray(theta, dtype=float)
    if theta.ndim == 1:  # one parameter vector: scalars keep the hot path of the optimiser lean
        a, b, e, alpha, beta = theta.tolist()
    else:
        a, b, e, alpha, beta = (theta[..., i, None] for i in range(5))
    term_n = a - alpha * log_n
    term_d = b - beta * log_d
    prediction = np.logaddexp(np.logaddexp(term_n, term_d), e)
    if not with_gradient:
        return prediction, None
    w_n = np.exp(term_n - prediction)
    w_d = np.exp(term_d - prediction)
    w_e = np.exp(e - prediction)
    gradient = np.stack([w_n, w_d, w_e, -w_n * log_n, -w_d * log_d], axis=-1)
    return prediction, gradient


def theta_to_params(theta: np.ndarray) -> dict[str, float]:
    """Map the log-space vector (a, b, e, α, β) to E, A, B, α, β."""
    a, b, e, alpha, beta = (float(v) for v in theta)
    return {"E": float(np.exp(e)), "A": float(np.exp(a)), "B": float(np.exp(b)), "alpha": alpha, "beta": beta}


def params_to_theta(E: float, A: float, B: float, alpha: float, beta: float) -> np.ndarray:
    """Inverse of :func:`theta_to_params`."""
    return np.array([np.log(A), np.log(B), np.log(E), alpha, beta], dtype=float)


def frontier_exponents(alpha: float, beta: float) -> tuple[float, float]:
    """a = β/(α+β), b = α/(α+β): N_opt ∝ C^a, D_opt ∝ C^b (Hoffmann et al. 2022, eq. 4); NaN when α+β = 0."""
    with np.errstate(all="ignore"):
        total = np.float64(alpha) + np.float64(beta)
        return np.float64(beta) / total, np.float64(alpha) / total


def compute_optimal(
    flops: np.ndarray,
    E: float,
    A: float,
    B: float,
    alpha: float,
    beta: float,
    flops_per_param_token: float = 6.0,
) -> Frontier:
    """N_opt, D_opt and the loss they reach at budgets C = k·N·D (Hoffmann et al. 2022, eq. 4).

    G = (α·A/(β·B))^(1/(α+β)); N_opt = G·(C/k)^a; D_opt = (C/k)/N_opt. With k = 6 this is the
    paper's formula; a measured-FLOP convention passes its own k.
    """
    budget = np.asarray(flops, dtype=float) / flops_per_param_token
    a_exp, _ = frontier_exponents(alpha, beta)
    log_g = (np.log(alpha * A) - np.log(beta * B)) / (alpha + beta)
    n_opt = np.exp(log_g + a_exp * np.log(budget))
    d_opt = budget / n_opt
    return Frontier(n_opt, d_opt, chinchilla_loss(n_opt, d_opt, E, A, B, alpha, beta))
