"""Compute-optimal frontier of a family of loss curves (one curve per model size).

Chinchilla's approaches 1 and 2 (Hoffmann et al. 2022) on a grid of compute budgets f: the lower
envelope min_d L_d(f / c_d) over sizes d (c_d = compute per unit of training time of size d) gives
the best loss per budget; the best size comes from a parabola in log d fitted to log L over the
``window`` sizes on either side of the grid minimum (an IsoFLOP fit), which avoids the staircase
a bare argmin over discrete sizes would give. Budgets whose grid minimum lies within ``window``
sizes of either end of the size grid are marked not interior: there the true optimum may lie
outside the sizes that were run, and fitting them biases both exponents.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Frontier:
    """Per-budget results; ``interior`` marks the budgets whose optimum is bracketed by the sizes run."""

    computes: np.ndarray
    best_loss: np.ndarray  # lower envelope, NaN where no curve reaches the budget
    best_size_index: np.ndarray  # index of the size attaining the envelope, -1 where none does
    optimal_size: np.ndarray  # IsoFLOP parabola minimum, NaN where not interior
    interior: np.ndarray  # bool

    def fit_points(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(compute, best loss, optimal size) at the interior budgets: what an exponent fit should use."""
        keep = self.interior
        return self.computes[keep], self.best_loss[keep], self.optimal_size[keep]


def compute_optimal_frontier(
    sizes: np.ndarray,
    times: np.ndarray,
    log_loss: np.ndarray,
    computes: np.ndarray,
    cost_per_time: np.ndarray | None = None,
    window: int = 2,
) -> Frontier:
    """Frontier of curves ``log_loss[i, j]`` = log L of size ``sizes[i]`` at time ``times[j]``.

    Args:
        sizes: increasing model sizes (d or N).
        times: increasing positive training times (steps, or gradient-flow time), shared by all sizes.
        log_loss: natural log of the loss, shape (len(sizes), len(times)); interpolated linearly in log time.
        computes: budgets f at which to evaluate the frontier.
        cost_per_time: compute per unit time of each size; default ``sizes`` (f = d·t).
        window: sizes on each side of the grid minimum used by the IsoFLOP parabola.
    """
    sizes, times, computes = (np.asarray(a, dtype=float) for a in (sizes, times, computes))
    log_loss = np.asarray(log_loss, dtype=float)
    if log_loss.shape != (sizes.size, times.size):
        raise ValueError(f"log_loss has shape {log_loss.shape}; expected {(sizes.size, times.size)}")
    if np.any(np.diff(sizes) <= 0) or np.any(np.diff(times) <= 0) or np.any(times <= 0):
        raise ValueError("sizes and times must be strictly increasing and times positive")
    if window < 1 or sizes.size < 2 * window + 1:
        raise ValueError(f"need at least {2 * window + 1} sizes for window={window}; got {sizes.size}")
    cost = sizes if cost_per_time is None else np.asarray(cost_per_time, dtype=float)
    grid = np.full((sizes.size, computes.size), np.inf)
    for i in range(sizes.size):
        grid[i] = np.interp(np.log(computes / cost[i]), np.log(times), log_loss[i], left=np.inf, right=np.inf)
    reached = np.isfinite(grid).any(axis=0)
    best_index = np.argmin(grid, axis=0)
    best_loss = np.where(reached, np.exp(grid.min(axis=0)), np.nan)
    optimal_size = np.full(computes.size, np.nan)
    interior = np.zeros(computes.size, dtype=bool)
    log_sizes = np.log(sizes)
    for j in np.flatnonzero(reached):
        i = best_index[j]
        if i < window + 1 or i > sizes.size - window - 2:
            continue
        block = grid[i - window : i + window + 1, j]
        if not np.all(np.isfinite(block)):
            continue
        curvature, slope, _ = np.polyfit(log_sizes[i - window : i + window + 1], block, 2)
        if curvature <= 0:
            continue
        vertex = -slope / (2.0 * curvature)
        if log_sizes[i - window] <= vertex <= log_sizes[i + window]:
            optimal_size[j] = np.exp(vertex)
            interior[j] = True
    return Frontier(computes, best_loss, np.where(reached, best_index, -1), optimal_size, interior)
