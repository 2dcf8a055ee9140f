"""Whether the sweep's compute-optimal frontier can guide a choice yet, and what to add to the sweep if not.

The frontier is *uninformative* when any of these holds (``reasons``):

- ``no_fit``: too few runs, sizes or budgets for approach 3 (``frontier.MIN_RUNS``, ``MIN_SIZES``, 2 budgets);
- ``no_bootstrap``: its uncertainty was not measured (``--bootstrap 0``);
- ``wide_a``: the 95 % interval of a (N_opt ∝ C^a) is wider than ``WIDE_A_INTERVAL`` = 0.3. Published
  values of a range from about 0.5 (Hoffmann et al. 2022) to 0.73 (Kaplan et al. 2020); an
  interval wider than 0.3 cannot tell "grow the model and the data alike" from "grow mostly the
  model", the choice the frontier is for;
- ``frontier_above_grid`` / ``frontier_below_grid``: the fitted frontier misses the sweep's grid.
  At the budgets trained, the compute-optimal sizes it implies are all larger (above) or all
  smaller (below) than every size trained, so no run was near compute-optimal and the frontier
  rests on the law's extrapolation, not on runs that bracket the optimum (the IsoFLOP rule: the
  minimum must lie inside the sizes tried). This is the "fit on the grid boundary" that matters
  for what to train next; the fitter's own start-grid warnings (an optimum outside its start grid,
  starts ending in other local optima) stay in ``details.json``: how much the fit is pinned down
  is what the bootstrap interval of a measures.

What to add (``add_sizes``, ``add_budgets``, in parameters and tokens): for a frontier off the
grid, sizes stepping from the grid's edge towards the frontier, or (the cheaper alternative)
budgets stepping from the other edge towards it; for ``wide_a``, more range
along the axis whose exponent the bootstrap pins down less well (α for sizes, β for budgets:
a = β/(α+β) moves with both), one and two grid steps beyond the largest, the grid's step being the
median ratio between its neighbouring values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from scaling_callback.laws.chinchilla import compute_optimal
from scaling_callback.report.frontier import MIN_RUNS, MIN_SIZES

WIDE_A_INTERVAL = 0.3
DEFAULT_STEP = 2.0  # grid step suggested when an axis has a single value


@dataclass
class FrontierAdvice:
    """The decision (``informative``), why not (``reasons``), what to add and the text summary.md shows."""

    informative: bool
    reasons: list[str] = field(default_factory=list)
    a_interval_width: float | None = None
    add_sizes: list[float] = field(default_factory=list)
    add_budgets: list[float] = field(default_factory=list)
    text: str = ""

    def to_dict(self) -> dict:
        return {
            "informative": self.informative,
            "reasons": list(self.reasons),
            "a_interval_width": self.a_interval_width,
            "add_sizes": list(self.add_sizes),
            "add_budgets": list(self.add_budgets),
            "text": self.text,
        }


def frontier_advice(frontier: dict | None, points: pd.DataFrame) -> FrontierAdvice:
    """Judge the frontier fit ``frontier`` (``fit_frontier_points``'s record) on its ``points`` (``usable_points``)."""
    sizes = _axis(points, "n")
    budgets = _axis(points, "tokens")
    if not frontier or "alpha" not in frontier:
        return _no_fit(frontier, sizes, budgets)
    reasons: list[str] = []
    add_sizes: list[float] = []
    add_budgets: list[float] = []
    ci = frontier.get("ci") or {}
    a_ci = ci.get("a")
    width = float(a_ci[1] - a_ci[0]) if a_ci and None not in a_ci else None
    if width is None:
        reasons.append("no_bootstrap")
    elif not width <= WIDE_A_INTERVAL:
        reasons.append("wide_a")
        widen_sizes, widen_budgets = _less_certain_axes(frontier)
        if widen_sizes:
            add_sizes += _beyond(sizes)
        if widen_budgets:
            add_budgets += _beyond(budgets)
    side, sizes_needed, budgets_needed = _off_grid(frontier, sizes, budgets)
    if side:
        reasons.append(f"frontier_{side}_grid")
        add_sizes = _towards(sizes, sizes_needed) + add_sizes
        add_budgets = _towards(budgets, budgets_needed) + add_budgets
    advice = FrontierAdvice(not reasons, reasons, width, _first(add_sizes), _first(add_budgets), "")
    advice.text = _text(advice, frontier, a_ci, sizes_needed, budgets_needed, sizes, budgets)
    return advice


def _first(values: list[float], limit: int = 3) -> list[float]:
    """The first ``limit`` distinct values, in order (the most needed first)."""
    kept: list[float] = []
    for value in values:
        if all(not math.isclose(value, other, rel_tol=1e-9) for other in kept):
            kept.append(value)
    return kept[:limit]


def _axis(points: pd.DataFrame, column: str) -> np.ndarray:
    if points is None or not len(points) or column not in points:
        return np.empty(0)
    values = pd.to_numeric(points[column], errors="coerce").to_numpy(dtype=float)
    return np.unique(values[np.isfinite(values) & (values > 0)])


def _step(values: np.ndarray) -> float:
    """The grid's step along an axis: the median ratio of neighbouring values (``DEFAULT_STEP`` for one value)."""
    if values.size < 2:
        return DEFAULT_STEP
    return float(np.median(values[1:] / values[:-1]))


def _beyond(values: np.ndarray) -> list[float]:
    """One and two grid steps past the largest value."""
    if not values.size:
        return []
    step = _step(values)
    return [float(values.max() * step), float(values.max() * step**2)]


def _towards(values: np.ndarray, target: float) -> list[float]:
    """Grid steps from the sweep's nearest edge to ``target`` (at most two, the last at or past it)."""
    step = _step(values)
    edge, direction = (values.max(), step) if target > values.max() else (values.min(), 1.0 / step)
    added = []
    value = float(edge)
    while len(added) < 2:
        value *= direction
        added.append(value)
        if (direction > 1 and value >= target) or (direction < 1 and value <= target):
            break
    return added


def _less_certain_axes(frontier: dict) -> tuple[bool, bool]:
    """(widen sizes, widen budgets): the exponent(s) whose 95 % interval is widest relative to its value."""
    ci = frontier.get("ci") or {}
    spreads = {}
    for name in ("alpha", "beta"):
        pair, value = ci.get(name), frontier.get(name)
        if pair and None not in pair and value:
            spreads[name] = (pair[1] - pair[0]) / abs(value)
    if len(spreads) < 2 or not all(math.isfinite(v) for v in spreads.values()):
        return True, True
    ratio = spreads["alpha"] / spreads["beta"] if spreads["beta"] > 0 else math.inf
    # within a factor 1.5 of each other, both axes limit a; otherwise the less certain one does
    return ratio >= 1 / 1.5, ratio <= 1.5


def _off_grid(frontier: dict, sizes: np.ndarray, budgets: np.ndarray) -> tuple[str | None, float, float]:
    """Whether the fitted frontier passes above or below the grid of sizes × budgets, and where it passes.

    Along the frontier N_opt grows with D_opt (N_opt = G·(C/k)^a, D_opt = (C/k)^b/G). Returns the side
    (``above``: at the smallest budget trained it already wants more than the largest size; ``below``:
    at the largest budget it wants less than the smallest size; None: it crosses the grid), the size
    it wants at the nearest budget and the budget it wants at the nearest size.
    """
    if not sizes.size or not budgets.size:
        return None, math.nan, math.nan
    k = float((frontier.get("choices") or {}).get("flops_per_param_token") or 6.0)
    params = {name: frontier.get(name) for name in ("E", "A", "B", "alpha", "beta")}
    a = frontier.get("a")
    if a is None or not 0 < a < 1 or any(v is None or not math.isfinite(v) for v in params.values()):
        return None, math.nan, math.nan
    with np.errstate(all="ignore"):
        log_g = float(np.log(compute_optimal(np.array([k]), **params, flops_per_param_token=k).n_opt[0]))
    if not math.isfinite(log_g):
        return None, math.nan, math.nan

    def size_at(tokens: float) -> float:  # N_opt where D_opt = tokens
        return math.exp(log_g + a * (math.log(tokens) + log_g) / (1.0 - a))

    def budget_at(params_: float) -> float:  # D_opt where N_opt = params_
        return math.exp((1.0 - a) * (math.log(params_) - log_g) / a - log_g)

    if size_at(budgets.min()) > sizes.max():
        return "above", size_at(budgets.min()), budget_at(sizes.max())
    if size_at(budgets.max()) < sizes.min():
        return "below", size_at(budgets.max()), budget_at(sizes.min())
    return None, math.nan, math.nan


def _no_fit(frontier: dict | None, sizes: np.ndarray, budgets: np.ndarray) -> FrontierAdvice:
    add_sizes = _beyond(sizes)[: max(0, MIN_SIZES - sizes.size)] if sizes.size < MIN_SIZES else []
    add_budgets = _beyond(budgets)[: max(0, 2 - budgets.size)] if budgets.size < 2 else []
    failed = bool(frontier and str(frontier.get("status", "")).startswith("failed"))
    advice = FrontierAdvice(False, ["no_fit"], None, add_sizes, add_budgets)
    if failed:
        advice.text = (
            "**No compute-optimal frontier**: the law L(N, D) could not be fitted to these finals "
            f"({frontier['status']}). Add model sizes and budgets so that more runs constrain it."
        )
        return advice
    advice.text = (
        f"**No compute-optimal frontier yet**: it needs at least {MIN_RUNS} finished runs over at least "
        f"{MIN_SIZES} model sizes and 2 token budgets; this sweep has {sizes.size} sizes and {budgets.size} budgets."
        + _additions(advice)
    )
    return advice


def _text(
    advice: FrontierAdvice,
    frontier: dict,
    a_ci: list | None,
    n_opt: float | None,
    d_opt: float | None,
    sizes: np.ndarray,
    budgets: np.ndarray,
) -> str:
    a = frontier.get("a")
    interval = f"[{a_ci[0]:.2f}, {a_ci[1]:.2f}]" if a_ci and None not in a_ci else "unknown"
    if advice.informative:
        return (
            f"**The frontier is informative**: a = {a:.3f}, 95 % interval {interval} "
            f"({advice.a_interval_width:.2f} wide), and the frontier passes through the grid of sizes and "
            "budgets trained (some runs were near compute-optimal)."
        )
    sentences = []
    if "no_bootstrap" in advice.reasons:
        sentences.append("its uncertainty was not measured (no bootstrap): rerun the report with --bootstrap 200")
    if "wide_a" in advice.reasons:
        sentences.append(
            f"the 95 % interval of a is {interval}, {advice.a_interval_width:.2f} wide: it cannot say whether a "
            "larger budget should go mostly to a larger model or to more tokens"
        )
    if "frontier_above_grid" in advice.reasons or "frontier_below_grid" in advice.reasons:
        above = "frontier_above_grid" in advice.reasons
        edge = budgets.min() if above else budgets.max()
        sentences.append(
            f"even at its {'smallest' if above else 'largest'} budget ({edge:.3g} tokens) the law says the best model "
            f"has {n_opt:.3g} parameters, {'more' if above else 'fewer'} than any size trained ({sizes.min():.3g} to "
            f"{sizes.max():.3g}): no run was near compute-optimal, so the frontier is the law's extrapolation "
            f"(with the sizes trained, budgets near {d_opt:.3g} tokens would be)"
        )
    return "**The frontier is not informative yet**: " + "; ".join(sentences) + "." + _additions(advice)


def _additions(advice: FrontierAdvice) -> str:
    parts = []
    if advice.add_sizes:
        parts.append("model sizes of about " + ", ".join(f"{n:.3g}" for n in advice.add_sizes) + " parameters")
    if advice.add_budgets:
        parts.append("token budgets of about " + ", ".join(f"{d:.3g}" for d in advice.add_budgets) + " tokens")
    if not parts:
        return ""
    return " To fix it, add to the sweep " + " and ".join(parts) + " (each size at each budget)."
