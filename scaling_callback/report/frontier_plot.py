"""``frontier.png``: N_opt(C) and D_opt(C) from approach 3 with its bootstrap band, approaches 1–2 and the runs.

The figure says in words when the frontier cannot guide a choice, the same words as ``summary.md``
(:func:`scaling_callback.report.frontier_advice.frontier_advice`: no fit, no bootstrap, an interval
of a wider than 0.3, a frontier beside the grid), and what to add to the sweep.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from scaling_callback.laws.chinchilla import compute_optimal
from scaling_callback.report.frontier_advice import frontier_advice
from scaling_callback.report.plot_style import DPI, plt, set_margins, short_number


def frontier_verdict(frontier: dict | None, points: pd.DataFrame) -> str | None:
    """The advice's sentences (no markdown) when the frontier is uninformative, else None."""
    advice = frontier_advice(frontier, points)
    return None if advice.informative else advice.text.replace("**", "")


def plot_frontier(points: pd.DataFrame, frontier: dict | None, approaches: dict, path: Path) -> None:
    """N_opt(C) and D_opt(C): approach 3 with its bootstrap band, approaches 1 and 2, and the runs."""
    fig, (ax_n, ax_d) = plt.subplots(1, 2, figsize=(11.5, 5.2))
    compute = (
        points["compute"]
        if len(points) and "compute" in points
        else (6.0 * points["n"] * points["tokens"] if len(points) else pd.Series(dtype=float))
    )
    if len(points):
        ax_n.scatter(compute, points["n"], s=22, color="grey", alpha=0.7, label="runs (best per N and D, planned end)")
        ax_d.scatter(compute, points["tokens"], s=22, color="grey", alpha=0.7, label="runs (best per N and D)")
    if frontier and "alpha" in frontier:
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
        ax.legend(fontsize=8, loc="upper left")
    ax_n.set_title("Model size to train at each budget", fontsize=10)
    ax_d.set_title("Tokens to train on at each budget", fontsize=10)
    verdict = frontier_verdict(frontier, points)
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
    set_margins(fig, 0.85, 0.25, 1.05 if verdict else 0.6, 0.7, wspace=0.28)
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


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
        ax.set_ylim(max(low, centre / 1e3), min(high, centre * 1e3))
