"""Loss-to-loss shifted power law (pure numpy).

Brandfonbrener et al. 2024, "Loss-to-Loss Prediction: Scaling Laws for All Datasets": across
model scales, one loss predicts another through

    L1 = K · (L0 − E0)^κ + E1

with E0, E1 the irreducible losses of the two distributions. It holds train→train (two training
sets, models paired by compute), train→test (one model's training loss against its loss on a
held-out set) and test→test.
"""

from __future__ import annotations

import numpy as np

PARAM_NAMES = ("K", "kappa", "E0", "E1")


def shifted_power_law(loss0: np.ndarray, K: float, kappa: float, E0: float, E1: float) -> np.ndarray:
    """L1 = K·(L0 − E0)^κ + E1 (Brandfonbrener et al. 2024); NaN where L0 ≤ E0."""
    gap = np.asarray(loss0, dtype=float) - E0
    with np.errstate(invalid="ignore"):
        return np.where(gap > 0, K * np.abs(gap) ** kappa + E1, np.nan)


def shifted_power_law_gradient(loss0: np.ndarray, K: float, kappa: float, E0: float, E1: float) -> np.ndarray:
    """∂L1/∂(K, κ, E0, E1) per point, shape (n, 4); requires L0 > E0."""
    gap = np.asarray(loss0, dtype=float) - E0
    power = gap**kappa
    return np.column_stack([power, K * power * np.log(gap), -K * kappa * gap ** (kappa - 1.0), np.ones_like(gap)])
