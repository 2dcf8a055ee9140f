"""Random features trained by gradient flow: loss versus time and size, and its compute-optimal frontier.

Bordelon, Atanasov & Pehlevan 2024 ("A Dynamical Model of Neural Scaling Laws", ICML 2024) study
a random-feature model trained by gradient flow with a power-law spectrum λ_k ∝ k^(−b) and target
power (w*_k)²λ_k ∝ k^(−a). We instantiate it as the power-law random-feature model of
:mod:`toy_models.plrf` (data variances j^(−2α), target j^(−β)), for which b = 2α and a = 2α + 2β
(see :func:`toy_models.theory.bordelon_parameters`). Gradient flow on the readout,
dθ/dt = −∇P(θ), θ(0) = 0, is solved exactly after one eigendecomposition of H:

    P(t) = P∞ + ½ Σ_k λ_k (q_kᵀθ*)² · exp(−2 λ_k t),

with compute f = d·t (time t plays the role of γ·r, the summed SGD step sizes). Without SGD noise
its frontier follows the paper's Phase Ia (a − 1 < b, i.e. 2β < 1) and, from Paquette et al. 2024,
Phase II (2β > 1, β < α), whose balances do not involve the noise.
"""

from __future__ import annotations

import numpy as np

from toy_models.frontier import Frontier, compute_optimal_frontier
from toy_models.plrf import PLRFProblem, Spectrum, nested_spectra


def gradient_flow_loss(spectrum: Spectrum, times: np.ndarray) -> np.ndarray:
    """P(t) of gradient flow at each time in ``times`` for one model size."""
    times = np.asarray(times, dtype=float)
    if np.any(times < 0):
        raise ValueError("times must be non-negative")
    weights = spectrum.eigenvalues * spectrum.initial_error
    return spectrum.optimum_loss + 0.5 * np.exp(-2.0 * np.outer(times, spectrum.eigenvalues)) @ weights


def loss_curves(problem: PLRFProblem, sizes: np.ndarray, times: np.ndarray, seed: int) -> np.ndarray:
    """P(t) for every size (rows) and time (columns), one W shared across sizes (nested)."""
    return np.stack([gradient_flow_loss(s, times) for s in nested_spectra(problem, sizes, seed)])


def seed_averaged_log_loss(problem: PLRFProblem, sizes: np.ndarray, times: np.ndarray, seeds: list[int]) -> np.ndarray:
    """log P(t) per seed, shape (seeds, sizes, times); average over axis 0 for a smooth surface."""
    return np.stack([np.log(loss_curves(problem, sizes, times, seed)) for seed in seeds])


def frontier(
    problem: PLRFProblem, sizes: np.ndarray, times: np.ndarray, seeds: list[int], computes: np.ndarray
) -> Frontier:
    """The compute-optimal frontier of the seed-averaged (geometric mean) gradient-flow curves."""
    log_loss = seed_averaged_log_loss(problem, sizes, times, seeds).mean(axis=0)
    return compute_optimal_frontier(np.asarray(sizes, dtype=float), np.asarray(times, dtype=float), log_loss, computes)
