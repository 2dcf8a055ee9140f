"""``frontier.png``: N_opt(C) and D_opt(C) from approach 3 with its bootstrap band, approaches 1–2 and the runs.

The figure says in words when the frontier cannot guide a choice, the same words as ``summary.md``
(:func:`scaling_callback.report.frontier_advice.frontier_advice`: no fit, no bootstrap, an interval
of a wider than 0.3, a frontier beside the grid), and what to add to the sweep.
Observed finals (grid points) and forecast finals of fully decayed runs (a one-run-per-size
sweep) are drawn apart, and for such a sweep the figure says how much compute its runs used
against the grid its points stand for.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from scaling_callback.laws.chinchilla import compute_optimal
from scaling_callback.report.frontier_advice import FrontierAdvice, frontier_advice
from scaling_callback.report.plot_style import DPI, plt, set_margins, short_number


def frontier_verdict(frontier: dict | None, points: pd.DataFrame, advice: FrontierAdvice | None = None) -> str | None:
    """The advice's sentences (no markdown) when the frontier is uninformative, else None.

    ``advice``: the report's own (summary.md says the same words); judged on ``points`` when not given.
    """
    if frontier and "alpha" in frontier and not _drawable(frontier):
        return (
            f"No usable fit ({frontier.get('status')}): these runs do not determine L(N, D) and its "
            "compute-optimal frontier. More model sizes and budgets are needed."
        )
    advice = advice or frontier_advice(frontier, points)
    return None if advice.informative else advice.text.replace("**", "")


def plot_frontier(
    points: pd.DataFrame,
    frontier: dict | None,
    approaches: dict,
    path: Path,
    design: dict | None = None,
    advice: FrontierAdvice | None = None,
) -> None:
    """N_opt(C) and D_opt(C): approach 3 with its bootstrap band, approaches 1 and 2, the runs and the forecasts.

    ``design``: the record of a one-run-per-size sweep (:func:`report.forecast_points.one_run_points`);
    ``advice``: the report's judgement of the fit, whose words the red box shows.
    """
    fig, (ax_n, ax_d) = plt.subplots(1, 2, figsize=(11.5, 5.2))
    compute = (
        points["compute"]
        if len(points) and "compute" in points
        else (6.0 * points["n"] * points["tokens"] if len(points) else pd.Series(dtype=float))
    )
    if len(points):
        _draw_points(ax_n, ax_d, points, compute)
    if frontier and "alpha" in frontier and _drawable(frontier):
        _draw_fit(ax_n, ax_d, frontier, float(compute.min()))
    styles = {"approach_1": ("C1", "approach 1 (envelope)"), "approach_2": ("C2", "approach 2 (IsoFLOP)")}
    for key, (colour, label) in styles.items():
        record = approaches.get(key) or {}
        table = record.get("points") or []
        if record.get("a") is not None and table:
            frame = pd.DataFrame(table)
            if {"flops", "n_opt", "used"} <= set(frame.columns):
                frame = frame[frame["used"].astype(bool)]
                ax_n.plot(
                    frame["flops"],
                    frame["n_opt"],
                    "o--",
                    color=colour,
                    ms=3,
                    lw=1,
                    label=f"{label} (a = {record['a']:.3f})",
                )
    for ax, ylabel in (
        (ax_n, "compute-optimal model size N_opt (parameters)"),
        (ax_d, "compute-optimal data D_opt (tokens)"),
    ):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("training compute C (FLOPs)")
        ax.set_ylabel(ylabel)
        ax.grid(True, which="both", alpha=0.25)
        ax.legend(fontsize=8, loc="best")  # the runs and forecasts fill different corners per sweep
    ax_n.set_title("Model size to train at each budget", fontsize=10)
    ax_d.set_title("Tokens to train on at each budget", fontsize=10)
    verdict = frontier_verdict(frontier, points, advice)
    note = design_note(design)
    if note:
        fig.text(0.5, 0.905, note, ha="center", va="top", fontsize=8.5, color="dimgrey")
    if verdict:
        fig.text(
            0.5,
            0.015,
            verdict,
            ha="center",
            va="bottom",
            fontsize=9,
            color="darkred",
            wrap=True,
            bbox={"boxstyle": "round", "facecolor": "mistyrose", "edgecolor": "darkred", "alpha": 0.9},
        )
    fig.suptitle("Compute-optimal frontier (Chinchilla approach 3, L(N, D) = E + A/N^α + B/D^β)", fontsize=11)
    set_margins(fig, 0.85, 0.25, 1.05 if verdict else 0.6, 0.95 if note else 0.7, wspace=0.28)
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


def design_note(design: dict | None) -> str | None:
    """'One run per size: 4 runs used 2.1e+16 FLOPs, 32 % of the 6.6e+16 of the equivalent grid (28 fully decayed runs)'."""
    if not design or design.get("design") != "one_run_per_size" or not design.get("compute_ratio"):
        return None
    return (
        f"One run per size: {len(design['runs'])} runs used {design['compute_used']:.2g} FLOPs (6ND), "
        f"{design['compute_ratio']:.0%} of the {design['compute_equivalent_grid']:.2g} of the equivalent grid "
        f"({design['n_points']} fully decayed runs, forecast)"
    )


def _draw_points(ax_n, ax_d, points: pd.DataFrame, compute: pd.Series) -> None:
    """Observed finals (and stopped runs' forecasts) as grey dots, forecast finals of fully decayed runs as triangles."""
    source = points["source"] if "source" in points else pd.Series("observed", index=points.index)
    forecast = source.isin(["forecast", "extrapolated"]).to_numpy() & ("run" in points)
    styles = (
        (~forecast, {"s": 22, "color": "grey", "alpha": 0.7}, "runs: observed finals (best per N and D, planned end)"),
        (
            forecast,
            {"s": 34, "marker": "^", "facecolors": "none", "edgecolors": "C1"},
            "forecast finals of fully decayed runs (one run per size)",
        ),
    )
    for ax, column in ((ax_n, "n"), (ax_d, "tokens")):
        for chosen, style, label in styles:
            if chosen.any():
                ax.scatter(compute[chosen], points[column][chosen], label=label, **style)


def _drawable(frontier: dict) -> bool:
    """Whether the fit gives a frontier to draw: a finite, positive N_opt and D_opt at the recommended budget
    (a degenerate fit, α or β at 0, has none)."""
    rec = frontier.get("recommendation") or {}
    values = [rec.get("n_opt"), rec.get("d_opt")]
    return all(isinstance(v, (int, float)) and math.isfinite(v) and v > 0 for v in values)


def _draw_fit(ax_n, ax_d, frontier: dict, smallest: float) -> None:
    k = float((frontier.get("choices") or {}).get("flops_per_param_token") or 6.0)
    rec = frontier["recommendation"]
    target = rec["flops"]
    grid = np.logspace(np.log10(max(smallest / 3, 1.0)), np.log10(target * 3), 60)
    params = {name: frontier[name] for name in ("E", "A", "B", "alpha", "beta")}
    with np.errstate(all="ignore"):
        front = compute_optimal(grid, **params, flops_per_param_token=k)
    ax_n.plot(grid, front.n_opt, color="C0", lw=2, label=f"approach 3 (a = {frontier['a']:.3f})")
    ax_d.plot(grid, front.d_opt, color="C0", lw=2, label=f"approach 3 (b = {frontier['b']:.3f})")
    draws = frontier.get("_draws")
    if draws is not None and len(draws) > 10:
        with np.errstate(all="ignore"):
            fronts = [
                compute_optimal(grid, r.E, r.A, r.B, r.alpha, r.beta, flops_per_param_token=k)
                for r in draws.itertuples()
            ]
            for ax, band in ((ax_n, np.array([f.n_opt for f in fronts])), (ax_d, np.array([f.d_opt for f in fronts]))):
                band = np.where(np.isfinite(band), band, np.nan)
                low, high = np.nanpercentile(band, [2.5, 97.5], axis=0)
                ax.fill_between(grid, low, high, color="C0", alpha=0.18, label="95 % bootstrap band")
    label = f"recommendation at C = {short_number(target)}"
    ax_n.scatter([target], [rec["n_opt"]], marker="*", s=170, color="C3", zorder=5, label=label)
    ax_d.scatter([target], [rec["d_opt"]], marker="*", s=170, color="C3", zorder=5, label=label)
    for ax in (ax_n, ax_d):  # keep the band from stretching the axes over many empty decades
        low, high = ax.get_ylim()
        centre = rec["n_opt"] if ax is ax_n else rec["d_opt"]
        if centre is not None and math.isfinite(centre) and centre > 0:  # a degenerate fit has no frontier to centre on
            ax.set_ylim(max(low, centre / 1e3), min(high, centre * 1e3))
