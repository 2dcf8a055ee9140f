"""Power-law random features (Paquette, Paquette, Xiao & Pennington 2024, "4+3 Phases of
Compute-Optimal Neural Scaling Laws", arXiv:2405.15074) and the exact one-pass-SGD recursion.

Model: data x ~ N(0, D) in R^v with D = diag(j^(−2α)); target y = ⟨x, b⟩ with b_j = j^(−β);
features Wᵀx with W ∈ R^(v×d), W_ij ~ N(0, 1/d); readout θ ∈ R^d, θ₀ = 0; population loss
P(θ) = ½·E[(⟨Wᵀx, θ⟩ − y)²] = ½‖D^(1/2)(Wθ − b)‖². Compute is f = r·d (r samples seen).

Everything below is exact for the drawn W after one eigendecomposition H = WᵀDW = Σ λ_k q_k q_kᵀ.
With θ* = H⁻¹WᵀDb, P(θ) = P∞ + ½(θ − θ*)ᵀH(θ − θ*). For SGD with batch B and step γ_r on Gaussian
data, Isserlis' theorem gives E[g gᵀ] = (1 + 1/B)·H u uᵀ H + (2/B)·P·H for u = θ − θ*, so the
diagonal s_k = E[(q_kᵀu)²] closes on itself:

    s_k ← (1 − 2γλ_k + (1 + 1/B)γ²λ_k²)·s_k + (2γ²λ_k/B)·E[P],   E[P] = P∞ + ½Σ λ_k s_k,

which is the discrete form of the paper's Volterra equation (their Section 2). It costs O(d) per
step and returns the expected loss exactly; gradient flow is the noise-free limit (see
:mod:`toy_models.gradient_flow`). The sizes of one seed share W (nested columns), which removes
most of the size-to-size jitter from the random top eigenvalues.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class PLRFProblem:
    """The data and target of the PLRF model: α (data decay), β (target decay), v (data dimension)."""

    alpha: float
    beta: float
    v: int

    def __post_init__(self) -> None:
        if not self.alpha > 0:
            raise ValueError(f"alpha must be positive; got {self.alpha!r}")
        if not self.beta > 0:
            raise ValueError(f"beta must be positive; got {self.beta!r}")
        if int(self.v) != self.v or self.v < 2:
            raise ValueError(f"v must be an integer >= 2; got {self.v!r}")

    @property
    def data_variances(self) -> np.ndarray:
        """diag(D) = j^(−2α), j = 1..v."""
        return np.arange(1, self.v + 1, dtype=float) ** (-2.0 * self.alpha)

    @property
    def target(self) -> np.ndarray:
        """b_j = j^(−β)."""
        return np.arange(1, self.v + 1, dtype=float) ** (-self.beta)

    def features(self, d: int, seed: int) -> np.ndarray:
        """W (v × d), entries N(0, 1/d); for one seed, the first d' columns of size d are those of size d'."""
        if int(d) != d or not 1 <= d <= self.v:
            raise ValueError(f"d must be an integer in [1, v={self.v}]; got {d!r}")
        return np.random.default_rng(seed).standard_normal((int(d), self.v)).T / np.sqrt(d)


@dataclass(frozen=True)
class Spectrum:
    """What the loss dynamics of one model size need: eigenvalues of H, initial error per mode, P∞."""

    d: int
    eigenvalues: np.ndarray  # λ_k of H = WᵀDW
    initial_error: np.ndarray  # (q_kᵀθ*)², the error energy per mode when θ₀ = 0
    optimum_loss: float  # P∞ = P(θ*), the limit of infinite training at this size

    def loss_at_start(self) -> float:
        return self.optimum_loss + 0.5 * float(np.sum(self.eigenvalues * self.initial_error))


def spectrum_of(problem: PLRFProblem, features: np.ndarray) -> Spectrum:
    """Eigendecompose H for one feature matrix W (v × d)."""
    variances, target = problem.data_variances, problem.target
    weighted = features.T * variances  # WᵀD
    eigenvalues, vectors = np.linalg.eigh(weighted @ features)
    return _spectrum(problem, features, eigenvalues, vectors, weighted @ target)


def nested_spectra(problem: PLRFProblem, sizes: np.ndarray, seed: int) -> list[Spectrum]:
    """Spectra for every size in ``sizes``, sharing one W; H_d is a block of the largest Gram matrix."""
    sizes = np.asarray(sizes, dtype=int)
    if sizes.ndim != 1 or sizes.size == 0 or np.any(np.diff(sizes) <= 0):
        raise ValueError(f"sizes must be strictly increasing; got {sizes!r}")
    raw = problem.features(int(sizes[-1]), seed) * np.sqrt(sizes[-1])  # N(0, 1) entries
    weighted = raw.T * problem.data_variances
    gram, projections = weighted @ raw, weighted @ problem.target
    spectra = []
    for d in sizes:
        eigenvalues, vectors = np.linalg.eigh(gram[:d, :d] / d)
        spectra.append(_spectrum(problem, raw[:, :d] / np.sqrt(d), eigenvalues, vectors, projections[:d] / np.sqrt(d)))
    return spectra


def _spectrum(
    problem: PLRFProblem, features: np.ndarray, eigenvalues: np.ndarray, vectors: np.ndarray, gradient: np.ndarray
) -> Spectrum:
    if eigenvalues[0] <= 0:
        raise ValueError(f"H is singular (smallest eigenvalue {eigenvalues[0]:.3g}); use d <= v")
    coordinates = (vectors.T @ gradient) / eigenvalues  # q_kᵀθ*
    residual = features @ (vectors @ coordinates) - problem.target
    optimum = 0.5 * float(np.sum(problem.data_variances * residual**2))
    return Spectrum(features.shape[1], eigenvalues, coordinates**2, optimum)


def stable_learning_rate(trace_of_h: float, factor: float = 0.5) -> float:
    """γ = factor / tr(H): the step the paper uses (tr(H) bounds the per-sample curvature)."""
    if not trace_of_h > 0:
        raise ValueError(f"tr(H) must be positive; got {trace_of_h!r}")
    return factor / float(trace_of_h)


def sgd_expected_loss(
    spectra: list[Spectrum],
    checkpoints: np.ndarray,
    batch_size: int = 1,
    learning_rate: float | None = None,
    lr_multipliers: np.ndarray | None = None,
) -> np.ndarray:
    """Exact E[P] of one-pass SGD at each checkpoint step (0 = before training), one row per size.

    Args:
        spectra: from :func:`nested_spectra` or :func:`spectrum_of`.
        checkpoints: increasing step counts at which to report the loss.
        batch_size: samples per SGD step.
        learning_rate: peak step γ; None gives each size its own :func:`stable_learning_rate`.
        lr_multipliers: per-step factors of γ (an LR schedule, e.g. from ``toy_models.schedules``);
            default constant 1. Must cover every step before the last checkpoint.
    """
    checkpoints = np.asarray(checkpoints, dtype=int)
    if checkpoints.size == 0 or checkpoints[0] < 0 or np.any(np.diff(checkpoints) <= 0):
        raise ValueError("checkpoints must be non-negative and strictly increasing")
    if int(batch_size) != batch_size or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer; got {batch_size!r}")
    n_steps = int(checkpoints[-1])
    multipliers = np.ones(n_steps) if lr_multipliers is None else np.asarray(lr_multipliers, dtype=float)
    if multipliers.size < n_steps:
        raise ValueError(f"lr_multipliers covers {multipliers.size} steps; the last checkpoint needs {n_steps}")
    sizes = [s.eigenvalues.size for s in spectra]
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    owner = np.repeat(np.arange(len(spectra)), sizes)
    lam = np.concatenate([s.eigenvalues for s in spectra])
    error = np.concatenate([s.initial_error for s in spectra])
    optimum = np.array([s.optimum_loss for s in spectra])
    base = np.array(
        [stable_learning_rate(s.eigenvalues.sum()) if learning_rate is None else learning_rate for s in spectra]
    )[owner]
    half_lam = 0.5 * lam
    out = np.empty((len(spectra), checkpoints.size))
    next_index = 0
    constant = bool(np.all(multipliers[:n_steps] == multipliers[0])) if n_steps else True
    if constant and n_steps:
        decay, feed = _step_coefficients(base * multipliers[0], lam, batch_size)
    for step in range(n_steps + 1):
        loss = optimum + np.add.reduceat(half_lam * error, starts)
        if step == checkpoints[next_index]:
            out[:, next_index] = loss
            next_index += 1
            if next_index == checkpoints.size:
                break
        if not constant:
            decay, feed = _step_coefficients(base * multipliers[step], lam, batch_size)
        error = decay * error + feed * loss[owner]
    return out


def _step_coefficients(gamma: np.ndarray, lam: np.ndarray, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    """(1 − 2γλ + (1 + 1/B)γ²λ², 2γ²λ/B) of the second-moment recursion."""
    decay = 1.0 - 2.0 * gamma * lam + (1.0 + 1.0 / batch_size) * (gamma * lam) ** 2
    return decay, 2.0 * gamma**2 * lam / batch_size


def sgd_monte_carlo_loss(
    problem: PLRFProblem,
    features: np.ndarray,
    checkpoints: np.ndarray,
    learning_rate: float,
    batch_size: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """One SGD trajectory's population loss at the checkpoints (plain numpy; to check the recursion)."""
    variances, target = problem.data_variances, problem.target
    theta = np.zeros(features.shape[1])
    out, next_index = np.empty(len(checkpoints)), 0
    for step in range(int(checkpoints[-1]) + 1):
        if step == checkpoints[next_index]:
            residual = features @ theta - target
            out[next_index] = 0.5 * np.sum(variances * residual**2)
            next_index += 1
            if next_index == len(checkpoints):
                break
        x = rng.standard_normal((batch_size, problem.v)) * np.sqrt(variances)
        z = x @ features
        theta -= learning_rate * z.T @ (z @ theta - x @ target) / batch_size
    return out
