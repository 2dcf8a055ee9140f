"""Summed Huber loss with its derivative, the robust objective of every fit in this package.

Hoffmann et al. 2022 (Chinchilla, approach 3) and Luo et al. 2025 (MPL) both fit log-loss
residuals with a Huber loss, δ = 1e-3, *summed* over points: a mean-reduced objective makes
L-BFGS stop early (Besiroglu et al. 2024).
"""

from __future__ import annotations

import numpy as np

DEFAULT_DELTA = 1e-3


def huber(
    residuals: np.ndarray, delta: float = DEFAULT_DELTA, weights: np.ndarray | None = None
) -> tuple[float, np.ndarray]:
    """Return the summed Huber loss of `residuals` and its derivative with respect to each residual.

    ``weights`` (one per residual) count repeated points once each: a bootstrap resample that
    draws a point k times is the weighted sum over its distinct points with weight k.
    """
    r = np.asarray(residuals, dtype=float)
    small = np.abs(r) <= delta
    value = np.where(small, 0.5 * r * r, delta * (np.abs(r) - 0.5 * delta))
    derivative = np.where(small, r, delta * np.sign(r))
    if weights is None:
        return float(value.sum()), derivative
    return float(value @ weights), derivative * weights
