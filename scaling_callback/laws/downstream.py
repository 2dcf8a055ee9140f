"""Loss → downstream metric links (pure numpy).

FLP (Chen et al. 2024, "Scaling Laws for Predicting Downstream Performance in LLMs") predicts a
benchmark metric in two stages: compute → pre-training loss (a power law), then loss → metric,
fitted on models whose performance has emerged above chance. The link used here is the sigmoid
in the loss that the Llama 3 report (Dubey et al. 2024, §3.2.1 "scaling laws", loss → accuracy)
fits; its middle part is the linear loss → performance relation FLP fits in the emerged region,
and its two plateaus are the chance level (before emergence) and the metric's ceiling:

    P(L) = floor + (ceiling − floor) · σ(−(L − mid) / scale),   σ(z) = 1 / (1 + e^(−z))

scale > 0: the metric rises as the loss falls (accuracy); scale < 0: it falls (an error rate).
"""

from __future__ import annotations

import numpy as np

SIGMOID_PARAMS = ("floor", "ceiling", "mid", "scale")


def sigmoid_link(loss: np.ndarray, floor: float, ceiling: float, mid: float, scale: float) -> np.ndarray:
    """P(L) = floor + (ceiling − floor)·σ(−(L − mid)/scale) (Dubey et al. 2024 §3.2.1; FLP's stage 2)."""
    z = -(np.asarray(loss, dtype=float) - mid) / scale
    return floor + (ceiling - floor) * np.exp(-np.logaddexp(0.0, -z))


def sigmoid_link_gradient(loss: np.ndarray, floor: float, ceiling: float, mid: float, scale: float) -> np.ndarray:
    """∂P/∂(floor, ceiling, mid, scale) per point, shape (n, 4)."""
    gap = np.asarray(loss, dtype=float) - mid
    s = np.exp(-np.logaddexp(0.0, gap / scale))  # σ(−gap/scale)
    ds = s * (1.0 - s)
    span = ceiling - floor
    return np.column_stack([1.0 - s, s, span * ds / scale, span * ds * gap / scale**2])
