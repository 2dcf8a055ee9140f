"""The report's figures: loss vs FLOPs per run with fitted laws, the frontier with its band, the LR schedules."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.ticker import LogLocator, NullFormatter, ScalarFormatter  # noqa: E402

from scaling_callback.laws.chinchilla import compute_optimal  # noqa: E402
from scaling_callback.laws.loss_curves import CURVE_LAWS  # noqa: E402
from scaling_callback.laws.lr_terms import lr_terms  # noqa: E402
from scaling_callback.laws.schedule import Schedule  # noqa: E402

DPI = 110


def smooth(values: np.ndarray, window: int) -> np.ndarray:
    """Trailing moving average (the raw per-step training loss is a noisy minibatch estimate)."""
    if window <= 1 or values.size < window:
        return values
    kernel = np.ones(window) / window
    head = np.cumsum(values[: window - 1]) / np.arange(1, window)
    return np.concatenate([head, np.convolve(values, kernel, mode="valid")])


def _window(values: np.ndarray) -> int:
    return max(5, len(values) // 12)


def law_curve(fit: dict | None, planned_lrs: np.ndarray | None, steps: np.ndarray) -> np.ndarray | None:
    """The run's fitted per-run law evaluated on its planned schedule at ``steps``, or None."""
    if not fit or planned_lrs is None or not fit.get("params") or fit.get("law") not in CURVE_LAWS:
        return None
    law = CURVE_LAWS[fit["law"]]
    params = fit["params"]
    if any(not isinstance(params.get(n), (int, float)) or not math.isfinite(params[n]) for n in law.param_names):
        return None
    schedule = Schedule.from_per_step(planned_lrs)
    steps = steps[(steps >= schedule.warmup_steps) & (steps <= schedule.total_steps)]
    if steps.size == 0:
        return None
    values = law.loss(np.array([params[n] for n in law.param_names]), lr_terms([schedule], [steps]))
    return np.vstack([steps, values])


def plot_loss_vs_flops(runs: pd.DataFrame, curves: dict, fits: dict, schedules: dict, path: Path) -> None:
    """Training loss against cumulative FLOPs for every run, its fitted law to the planned end, stops marked."""
    fig, ax = plt.subplots(figsize=(8.5, 5.5))
    sizes = sorted(runs["n_params"].dropna().unique())
    colours = plt.cm.viridis(np.linspace(0.05, 0.9, max(len(sizes), 1)))
    colour_of = dict(zip(sizes, colours))
    for run in runs.itertuples():
        curve = curves.get(run.name)
        if curve is None or curve.empty:
            continue
        colour = colour_of.get(run.n_params, "grey")
        flops, loss = curve["flops"].to_numpy(), curve["loss"].to_numpy()
        flops_per_step = flops[-1] / max(curve["step"].iloc[-1], 1)
        ax.plot(flops, smooth(loss, _window(loss)), color=colour, lw=1.2, alpha=0.9)
        planned_steps = np.unique(np.linspace(1, run.max_steps, 200).astype(int))
        predicted = law_curve(fits.get(run.name), schedules.get(run.name), planned_steps)
        if predicted is not None:
            ax.plot(predicted[0] * flops_per_step, predicted[1], color=colour, lw=1, ls="--", alpha=0.8)
        fit = fits.get(run.name) or {}
        low, high, centre = fit.get("pred_final_low"), fit.get("pred_final_high"), fit.get("pred_final_loss")
        if all(isinstance(v, float) and math.isfinite(v) for v in (low, high, centre)):
            end = run.max_steps * flops_per_step
            ax.errorbar([end], [centre], yerr=[[centre - low], [high - centre]], color=colour, fmt="o", ms=3, capsize=3)
        if run.status == "stopped":
            ax.plot(flops[-1], smooth(loss, _window(loss))[-1], marker="x", color="crimson", ms=9, mew=2)
    ax.set_xscale("log")
    ax.set_yscale("log")
    _label_narrow_log_axis(ax)
    ax.set_xlabel("training compute C (FLOPs, cumulative)")
    ax.set_ylabel("training loss (nats/token, smoothed)")
    ax.set_title("Loss vs compute per run: observed (solid), fitted law to the planned end (dashed),\n"
                 "predicted final loss with interval (dot), early-stopped runs (red x)", fontsize=10)
    handles = [plt.Line2D([], [], color=colour_of[s], lw=2, label=f"N = {s:,.0f}") for s in sizes]
    handles.append(plt.Line2D([], [], color="crimson", marker="x", ls="", mew=2, label="stopped early"))
    ax.legend(handles=handles, fontsize=8, loc="upper right")
    ax.grid(True, which="both", alpha=0.25)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


def plot_frontier(points: pd.DataFrame, frontier: dict | None, approaches: dict, path: Path) -> None:
    """N_opt(C) and D_opt(C): approach 3 with its bootstrap band, approaches 1 and 2, and the runs."""
    fig, (ax_n, ax_d) = plt.subplots(1, 2, figsize=(11, 4.8))
    compute = 6.0 * points["n"] * points["tokens"] if len(points) else pd.Series(dtype=float)
    if len(points):
        ax_n.scatter(compute, points["n"], s=18, color="grey", alpha=0.6, label="runs (C = 6ND at planned end)")
        ax_d.scatter(compute, points["tokens"], s=18, color="grey", alpha=0.6, label="runs")
    if frontier and "alpha" in frontier:
        target = frontier["recommendation"]["flops"]
        grid = np.logspace(np.log10(max(compute.min() / 3, 1.0)), np.log10(target * 3), 60)
        params = {k: frontier[k] for k in ("E", "A", "B", "alpha", "beta")}
        front = compute_optimal(grid, **params)
        ax_n.plot(grid, front.n_opt, color="C0", lw=2, label=f"approach 3 (a = {frontier['a']:.3f})")
        ax_d.plot(grid, front.d_opt, color="C0", lw=2, label=f"approach 3 (b = {frontier['b']:.3f})")
        draws = frontier.get("_draws")
        if draws is not None and len(draws) > 10:
            n_band, d_band = [], []
            for row in draws.itertuples():
                f = compute_optimal(grid, row.E, row.A, row.B, row.alpha, row.beta)
                n_band.append(f.n_opt)
                d_band.append(f.d_opt)
            for ax, band in ((ax_n, np.array(n_band)), (ax_d, np.array(d_band))):
                low, high = np.nanpercentile(band, [2.5, 97.5], axis=0)
                ax.fill_between(grid, low, high, color="C0", alpha=0.18, label="95 % bootstrap band")
        recommendation = frontier["recommendation"]
        ax_n.scatter([target], [recommendation["n_opt"]], marker="*", s=160, color="C3", zorder=5, label="recommendation")
        ax_d.scatter([target], [recommendation["d_opt"]], marker="*", s=160, color="C3", zorder=5, label="recommendation")
    styles = {"approach_1": ("C1", "approach 1 (envelope)"), "approach_2": ("C2", "approach 2 (IsoFLOP)")}
    for key, (colour, label) in styles.items():
        record = approaches.get(key) or {}
        table = record.get("points") or []
        if record.get("a") is not None and table:
            frame = pd.DataFrame(table)
            if {"flops", "n_opt", "used"} <= set(frame.columns):
                frame = frame[frame["used"].astype(bool)]
                ax_n.plot(frame["flops"], frame["n_opt"], "o--", color=colour, ms=4, label=f"{label} (a = {record['a']:.3f})")
    for ax, ylabel in ((ax_n, "compute-optimal parameters N_opt"), (ax_d, "compute-optimal tokens D_opt")):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("compute C (FLOPs)")
        ax.set_ylabel(ylabel)
        ax.grid(True, which="both", alpha=0.25)
        ax.legend(fontsize=8)
    ax_n.set_title("Model size to train at each budget")
    ax_d.set_title("Tokens to train on at each budget")
    if not frontier or "alpha" not in frontier:
        fig.suptitle("No compute-optimal fit yet: needs >= 8 runs over >= 3 sizes and >= 2 budgets", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


def plot_schedules(runs: pd.DataFrame, schedules: dict, path: Path) -> None:
    """The planned LR schedule of each distinct (kind, length) in the sweep."""
    fig, ax = plt.subplots(figsize=(7.5, 4))
    seen = set()
    for run in runs.itertuples():
        lrs = schedules.get(run.name)
        if lrs is None:
            continue
        kind = (run.config or {}).get("schedule", "?")
        key = (kind, len(lrs))
        if key in seen:
            continue
        seen.add(key)
        ax.plot(np.arange(1, len(lrs) + 1), lrs, lw=1.3, label=f"{kind}, {len(lrs)} steps")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("learning rate")
    ax.set_title("Planned LR schedules (warmup included)")
    ax.grid(True, alpha=0.25)
    if seen:
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


def _label_narrow_log_axis(ax: plt.Axes) -> None:
    """Plain-number ticks on a log loss axis; losses often span less than a decade (no decade tick to label)."""
    low, high = ax.get_ylim()
    ratio = high / low if low > 0 else 10.0
    step = 0.1 if ratio < 1.6 else 0.2 if ratio < 3.0 else None
    subs = np.arange(1.0, 10.0, step) if step else (1.0, 2.0, 5.0)
    ax.yaxis.set_major_locator(LogLocator(base=10.0, subs=subs, numticks=100))
    ax.yaxis.set_major_formatter(ScalarFormatter())
    ax.yaxis.set_minor_formatter(NullFormatter())
