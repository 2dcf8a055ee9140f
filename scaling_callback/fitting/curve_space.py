"""The optimizer's coordinates for loss-curve law parameters, and cheap starting points.

Parameters span ten orders of magnitude (B ~ 10²–10³ while η ~ 10⁻⁴), so scale parameters are
optimised as logarithms, λ of the momentum law as log(1 − λ), and exponents as they are; each
coordinate is bounded (β, γ in (0, 1) as in Luo et al. 2025).

Starts use variable projection: for fixed exponents the laws are linear in (L0, A, and the drop
scale B or C), so a grid of exponents is scored with a non-negative least-squares solve each, and
only the best few are handed to the full optimizer.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
from scipy.optimize import nnls

from scaling_callback.fitting.huber import huber
from scaling_callback.laws.loss_curves import CurveLaw
from scaling_callback.laws.lr_terms import LRTerms

# name -> (transform, lower, upper) in natural units
BOUNDS: dict[str, tuple[str, float, float]] = {
    "L0": ("lin", 0.0, 1e3),
    "A": ("log", 1e-8, 1e8),
    "alpha": ("lin", 1e-3, 3.0),
    "B": ("log", 1e-6, 1e9),
    "C": ("log", 1e-6, 1e6),
    "beta": ("lin", 1e-3, 1.0 - 1e-3),
    "gamma": ("lin", 1e-3, 1.0 - 1e-3),
    "lam": ("log1m", 0.5, 1.0 - 1e-6),
}
START_GRID: dict[str, tuple[float, ...]] = {
    "alpha": (0.2, 0.35, 0.5, 0.7, 1.0),
    "C": (0.3, 1.0, 3.0, 10.0),
    "beta": (0.3, 0.6, 0.9),
    "gamma": (0.3, 0.6, 0.9),
    "lam": (0.99, 0.999, 0.9999),
}
LINEAR_DROP_SCALE = {"mpl": "B", "lldl": "B", "momentum": "C", "opl": None}


def to_internal(name: str, value: float) -> float:
    """Natural parameter value → optimizer coordinate."""
    kind = BOUNDS[name][0]
    with np.errstate(divide="ignore"):  # 0 (a drop term held at zero) maps to -inf, clipped to its bound by callers
        if kind == "log":
            return float(np.log(value))
        if kind == "log1m":
            return float(np.log1p(-value))
    return float(value)


def to_natural(name: str, theta: float) -> tuple[float, float]:
    """Optimizer coordinate → (natural value, d value / d coordinate)."""
    kind = BOUNDS[name][0]
    if kind == "log":
        value = float(np.exp(theta))
        return value, value
    if kind == "log1m":
        one_minus = float(np.exp(theta))
        return 1.0 - one_minus, -one_minus
    return float(theta), 1.0


def internal_bounds(name: str) -> tuple[float, float]:
    """Bounds of a parameter's optimizer coordinate (increasing order)."""
    _, low, high = BOUNDS[name]
    ends = sorted((to_internal(name, low), to_internal(name, high)))
    return ends[0], ends[1]


@dataclass(frozen=True)
class Start:
    """A candidate starting point and its objective value."""

    params: dict[str, float]
    objective: float


def grid_starts(
    law: CurveLaw, terms: LRTerms, loss: np.ndarray, fixed: dict[str, float], delta: float, keep: int
) -> list[Start]:
    """Score the start grid by variable projection and return the ``keep`` best starts."""
    scale_name = LINEAR_DROP_SCALE[law.name]
    linear = ["L0", "A"] + ([scale_name] if scale_name and scale_name not in fixed else [])
    free_grid = {n: START_GRID[n] for n in law.param_names if n not in linear and n not in fixed}
    drop_grid_names = [n for n in free_grid if n != "alpha"]
    alphas = free_grid.get("alpha", (fixed.get("alpha", 0.5),))
    base = {n: 0.0 for n in law.param_names} | {n: 0.5 for n in ("alpha", "beta", "gamma")}
    base |= {"C": 1.0, "lam": 0.999} | {n: v for n, v in fixed.items()}
    if scale_name and scale_name in fixed:
        base[scale_name] = fixed[scale_name]

    def evaluate(overrides: dict[str, float]) -> np.ndarray:
        params = base | overrides
        return law.loss(np.array([params[n] for n in law.param_names]), terms)

    decay_columns = {a: evaluate({"L0": 0.0, "A": 1.0, "alpha": a} | _zero_scale(scale_name, fixed)) for a in alphas}
    fixed_drop = evaluate({"L0": 0.0, "A": 0.0}) if scale_name in fixed else None
    candidates: list[Start] = []
    for drop_values in itertools.product(*(free_grid[n] for n in drop_grid_names)):
        drop = dict(zip(drop_grid_names, drop_values))
        drop_column = evaluate({"L0": 0.0, "A": 0.0, scale_name: 1.0} | drop) if len(linear) == 3 else None
        for a, decay in decay_columns.items():
            columns = [np.ones_like(loss), decay] + ([drop_column] if drop_column is not None else [])
            target = loss - (fixed_drop if fixed_drop is not None else 0.0)
            coefficients, _ = nnls(np.stack(columns, axis=1), target)
            params = base | drop | {"alpha": a} | dict(zip(linear, coefficients))
            params = {n: _clip(n, params[n]) for n in law.param_names}
            predicted = evaluate(params)
            if np.any(predicted <= 0):
                continue
            value, _ = huber(np.log(loss) - np.log(predicted), delta)
            candidates.append(Start({n: params[n] for n in law.param_names}, value))
    candidates.sort(key=lambda start: start.objective)
    return candidates[:keep]


def _zero_scale(scale_name: str | None, fixed: dict[str, float]) -> dict[str, float]:
    return {scale_name: 0.0} if scale_name else {}


def _clip(name: str, value: float) -> float:
    _, low, high = BOUNDS[name]
    return float(np.clip(value, low, high))
