"""Maloney–Roberts–Sully linear random features: exact and deterministic-equivalent test losses.

Model (Maloney, Roberts & Sully 2022, "A Solvable Model of Neural Scaling Laws", arXiv:2210.16859):
latent x ~ N(0, Λ) in R^M with λ_I = I^(−(1+α)); teacher y = w·x + ε with isotropic w
(E[w wᵀ] = I_M, so the total signal tr Λ stays finite as M grows) and optional label noise
ε ~ N(0, σ²); N random features φ = U x with U_ij ~ N(0, 1); ridgeless (minimum-norm) least
squares on P samples. Every loss here is the test mean squared error averaged over the teacher.

What is exact and what is sampled:
- P = ∞ (the best linear readout of the features): L(N, ∞) = σ² + tr Λ − tr((ZZᵀ)⁻¹ Z Λ Zᵀ) with
  Z = U Λ^(1/2): exact for the drawn U.
- N = ∞ (minimum-norm regression on x itself): the same expression with Z = the P samples, plus a
  noise-variance term: exact for the drawn samples. With noise-free labels the two directions have
  identical distributions — the N ↔ P duality of the paper.
- P > N + 1: for Gaussian data L(N, P) = L(N, ∞)·(P − 1)/(P − N − 1) exactly, in expectation over
  training sets (the classical risk of least squares with Gaussian design).
- otherwise (N ≥ P − 1, where the double descent happens): Monte-Carlo over training sets, with the
  teacher and the test distribution still averaged analytically.
The deterministic equivalent L_DE(n) = Σ λκ/(λ+κ), Σ λ/(λ+κ) = n, is the large-size limit of both
L(n, ∞) and L(∞, n); it decays as n^(−α) while n ≪ M.
"""

from __future__ import annotations

import math

import numpy as np


def latent_spectrum(alpha: float, latent_dim: int) -> np.ndarray:
    """λ_I = I^(−(1+α)) for I = 1..M (MRS's power-law latent spectrum)."""
    if not alpha > 0:
        raise ValueError(f"alpha must be positive; got {alpha!r}")
    if int(latent_dim) != latent_dim or latent_dim < 1:
        raise ValueError(f"latent_dim must be a positive integer; got {latent_dim!r}")
    return np.arange(1, int(latent_dim) + 1, dtype=float) ** (-(1.0 + alpha))


def sample_features(n_features: int, latent_dim: int, rng: np.random.Generator) -> np.ndarray:
    """A random feature map U (N × M) with i.i.d. standard normal entries."""
    return rng.standard_normal((n_features, latent_dim))


def sample_latents(n_samples: int, spectrum: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """P latent vectors x ~ N(0, Λ) as rows of a P × M matrix."""
    return rng.standard_normal((n_samples, spectrum.size)) * np.sqrt(spectrum)


def _unexplained_signal(rows: np.ndarray, spectrum: np.ndarray) -> tuple[float, np.ndarray]:
    """tr Λ − tr((ZZᵀ)⁻¹ Z Λ Zᵀ): the teacher signal outside the span of the rows Z (and ZZᵀ)."""
    gram = rows @ rows.T
    explained = np.trace(np.linalg.solve(gram, (rows * spectrum) @ rows.T))
    return float(spectrum.sum() - explained), gram


def loss_infinite_data(features: np.ndarray, spectrum: np.ndarray, noise: float = 0.0) -> float:
    """L(N, ∞) for the feature map ``features`` (N × M), exact: best readout with unlimited data."""
    if features.shape[0] >= features.shape[1]:
        return float(noise)  # the features span the latent space: only the label noise is left
    signal, _ = _unexplained_signal(features * np.sqrt(spectrum), spectrum)
    return noise + signal


def loss_infinite_features(latents: np.ndarray, spectrum: np.ndarray, noise: float = 0.0) -> float:
    """L(∞, P) for training latents (P × M, P < M), exact: minimum-norm interpolation on x itself."""
    if latents.shape[0] >= latents.shape[1]:
        raise ValueError(f"need fewer samples than latent dimensions; got P={latents.shape[0]} >= M={latents.shape[1]}")
    signal, gram = _unexplained_signal(latents, spectrum)
    if noise == 0.0:
        return signal
    # noise variance: σ² · tr((XXᵀ)⁻¹ X Λ Xᵀ (XXᵀ)⁻¹), plus σ² on the test label itself
    half = np.linalg.solve(gram, (latents * spectrum) @ latents.T)
    return signal + noise * (1.0 + float(np.trace(np.linalg.solve(gram, half.T))))


def finite_sample_factor(n_features: int, n_samples: float) -> float:
    """(P − 1)/(P − N − 1): exact ratio L(N, P)/L(N, ∞) for Gaussian data when P > N + 1."""
    if not n_samples > n_features + 1:
        raise ValueError(f"the finite-sample identity needs P > N + 1; got N={n_features}, P={n_samples}")
    return 1.0 if math.isinf(n_samples) else (n_samples - 1.0) / (n_samples - n_features - 1.0)


def monte_carlo_loss(
    features: np.ndarray,
    spectrum: np.ndarray,
    n_samples: int,
    rng: np.random.Generator,
    noise: float = 0.0,
    n_draws: int = 8,
) -> tuple[float, float]:
    """L(N, P) averaged over ``n_draws`` training sets: (mean, standard error).

    Each draw fits θ = Φ⁺y (minimum norm) and evaluates E_{w, ε, x_test} exactly:
    ‖Λ^(1/2)(UᵀΦ⁺X − I)‖²_F + σ²·‖Λ^(1/2)UᵀΦ⁺‖²_F + σ².
    """
    losses = []
    for _ in range(n_draws):
        latents = sample_latents(n_samples, spectrum, rng)
        readout = features.T @ np.linalg.pinv(latents @ features.T)  # K = UᵀΦ⁺, M × P
        weighted = readout.T @ (readout * spectrum[:, None])  # Kᵀ Λ K, P × P
        cross = np.sum(spectrum[:, None] * readout * latents.T)  # tr(Λ K X)
        quadratic = np.sum(weighted * (latents @ latents.T))  # ‖Λ^(1/2) K X‖²_F
        losses.append(spectrum.sum() - 2.0 * cross + quadratic + noise * (np.trace(weighted) + 1.0))
    values = np.asarray(losses)
    return float(values.mean()), float(values.std(ddof=1) / np.sqrt(n_draws)) if n_draws > 1 else float("nan")


def generalization_loss(
    features: np.ndarray,
    spectrum: np.ndarray,
    n_samples: float,
    rng: np.random.Generator | None = None,
    noise: float = 0.0,
    n_draws: int = 8,
) -> float:
    """L(N, P) for the feature map ``features``: exact where an identity exists, Monte-Carlo otherwise."""
    n_features = features.shape[0]
    if math.isinf(n_samples) or n_samples > n_features + 1:
        return loss_infinite_data(features, spectrum, noise) * finite_sample_factor(n_features, n_samples)
    if rng is None:
        raise ValueError(f"P={n_samples} <= N + 1={n_features + 1} needs Monte-Carlo: pass an rng")
    return monte_carlo_loss(features, spectrum, int(n_samples), rng, noise, n_draws)[0]


def deterministic_equivalent(n: float, spectrum: np.ndarray) -> float:
    """L_DE(n) = Σ λκ/(λ+κ) with Σ λ/(λ+κ) = n: the large-size limit of L(n, ∞) and of L(∞, n)."""
    if not 0 < n < spectrum.size:
        raise ValueError(f"n must lie in (0, M={spectrum.size}); got {n!r}")
    # Σ λ/(λ+κ) falls monotonically in κ: bisect on log κ between bounds where it is > n and < n
    low, high = math.log(spectrum.min()) - 40.0, math.log(spectrum.sum()) + 5.0
    for _ in range(100):  # the bracket is ~60 wide in log κ: 100 halvings reach float precision
        middle = 0.5 * (low + high)
        if np.sum(spectrum / (spectrum + math.exp(middle))) > n:
            low = middle
        else:
            high = middle
    kappa = math.exp(0.5 * (low + high))
    return float(np.sum(spectrum * kappa / (spectrum + kappa)))


def theory_curve(n_features: float, n_samples: float, spectrum: np.ndarray) -> float:
    """Noise-free MRS theory: L_DE(m)·(m' − 1)/(m' − m − 1), m = min(N, P), m' = max(N, P); ∞ when |N − P| ≤ 1."""
    small, large = min(n_features, n_samples), max(n_features, n_samples)
    if large <= small + 1:
        return math.inf
    return deterministic_equivalent(small, spectrum) * finite_sample_factor(small, large)


def scaling_curve(alpha: float, sizes: np.ndarray, latent_factor: int, seed: int, direction: str) -> np.ndarray:
    """Exact L(N, ∞) (``direction="features"``) or L(∞, P) (``"samples"``) at each size, with M = latent_factor·size.

    M grows with the size so that truncating the spectrum costs the same constant factor
    (1 − latent_factor^(−α)) at every size instead of bending the power law at large sizes.
    The two directions draw from different streams of ``seed``: with one stream they would return
    the same numbers, since Z = UΛ^(1/2) and the samples X have the same distribution (the duality).
    """
    if direction not in ("features", "samples"):
        raise ValueError(f"direction must be 'features' or 'samples'; got {direction!r}")
    rng = np.random.default_rng([seed, 0 if direction == "features" else 1])
    losses = []
    for size in np.asarray(sizes, dtype=int):
        spectrum = latent_spectrum(alpha, latent_factor * int(size))
        if direction == "features":
            losses.append(loss_infinite_data(sample_features(int(size), spectrum.size, rng), spectrum))
        else:
            losses.append(loss_infinite_features(sample_latents(int(size), spectrum, rng), spectrum))
    return np.asarray(losses)
