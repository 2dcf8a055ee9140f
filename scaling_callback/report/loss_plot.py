"""``loss_vs_flops.png``: every run's training loss against compute, its forecast to the planned end.

Runs are told apart by three keys: one panel per (schedule, peak LR), colour for the model size
N, and an end-of-curve marker for the planned token budget D; the legend says so.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from scaling_callback.report.plot_style import (
    BUDGET_MARKERS,
    DPI,
    label_narrow_log_axis,
    plt,
    set_margins,
    short_number,
    size_colours,
    smooth,
    smoothing_window,
)
from scaling_callback.report.run_keys import peak_lr, planned_tokens, schedule_kind

MAX_COLUMNS = 3
LEGEND_INCHES = 2.1  # room right of the panels for the legend


def forecast_path(fit: dict | None) -> np.ndarray | None:
    """The run's stored forecast along its plan, from the step it was made to the planned end (rows: steps, loss).

    The same forecast the stopping policy compared and the summary shows (``fits.forecast``), or None.
    """
    forecast = (fit or {}).get("forecast") or {}
    steps = np.asarray(forecast.get("path_x") or [], dtype=float)
    values = np.asarray(forecast.get("path_loss") or [], dtype=float)
    if steps.size < 2 or steps.shape != values.shape:
        return None
    keep = np.isfinite(steps) & np.isfinite(values) & (values > 0)
    return np.vstack([steps[keep], values[keep]]) if keep.sum() >= 2 else None


def run_table(runs: pd.DataFrame, curves: dict, schedules: dict) -> pd.DataFrame:
    """One row per run with a curve: name, status, N, panel key (schedule, peak LR), planned tokens D."""
    rows = []
    for run in runs.itertuples():
        curve = curves.get(run.name)
        if curve is None or curve.empty:
            continue
        config = run.config if isinstance(run.config, dict) else {}
        lr = peak_lr(config, schedules.get(run.name))
        last = curve.iloc[-1]
        tokens = planned_tokens(
            config,
            int(run.max_steps or last["step"]),
            int(last["step"]),
            float(last["tokens"]) if "tokens" in curve and pd.notna(last["tokens"]) else None,
        )
        rows.append(
            {
                "name": run.name,
                "status": run.status,
                "n": run.n_params,
                "kind": schedule_kind(config),
                "peak_lr": lr,
                "tokens": tokens,
                "max_steps": int(run.max_steps or last["step"]),
            }
        )
    return pd.DataFrame(rows)


def plot_loss_vs_flops(runs: pd.DataFrame, curves: dict, fits: dict, schedules: dict, path: Path) -> None:
    """Training loss against cumulative FLOPs, one panel per (schedule, peak LR); fitted laws and stops marked."""
    table = run_table(runs, curves, schedules)
    if table.empty:
        fig, ax = plt.subplots(figsize=(7, 4))
        ax.text(0.5, 0.5, "no run has recorded points yet", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        fig.savefig(path, dpi=DPI)
        plt.close(fig)
        return
    table["panel"] = [
        f"{kind}, peak LR {short_number(lr)}" if lr else kind for kind, lr in zip(table["kind"], table["peak_lr"])
    ]
    panels = (
        table.assign(_lr=table["peak_lr"].fillna(0.0))
        .sort_values(["kind", "_lr"], ascending=[True, False])["panel"]
        .drop_duplicates()
        .tolist()
    )
    columns = min(MAX_COLUMNS, len(panels))
    rows = math.ceil(len(panels) / columns)
    fig, axes = plt.subplots(
        rows,
        columns,
        figsize=(4.6 * columns + LEGEND_INCHES, 4.3 * rows + 0.9),
        sharex=True,
        sharey=True,
        squeeze=False,
    )
    sizes = sorted(table["n"].dropna().unique())
    colour_of = size_colours(sizes)
    budgets = sorted(table["tokens"].dropna().unique())
    marker_of = {d: BUDGET_MARKERS[i % len(BUDGET_MARKERS)] for i, d in enumerate(budgets)}
    for ax, panel in zip(axes.flat, panels):
        for run in table[table["panel"] == panel].itertuples():
            _draw_run(
                ax,
                run,
                curves[run.name],
                fits.get(run.name),
                schedules.get(run.name),
                colour_of.get(run.n, "grey"),
                marker_of.get(run.tokens, "o"),
            )
        ax.set_title(panel, fontsize=10)
        ax.grid(True, which="both", alpha=0.25)
    for ax in axes.flat[len(panels) :]:
        ax.set_axis_off()
    first = axes.flat[0]
    first.set_xscale("log")
    first.set_yscale("log")
    first.set_ylim(*_loss_range(table, curves, fits))
    label_narrow_log_axis(first)
    for ax in axes[-1]:
        ax.set_xlabel("training compute C (FLOPs, cumulative)")
    for ax in axes[:, 0]:
        ax.set_ylabel("training loss (nats/token, smoothed)")
    fig.legend(handles=_legend_handles(colour_of, marker_of), loc="center right", fontsize=8, frameon=False)
    fig.suptitle(
        "Loss vs compute per run — panel: schedule and peak LR; colour: model size N; marker: planned "
        "tokens D\nsolid: observed; dashed: forecast to the planned end; bar: predicted final loss "
        "with its interval; red x: stopped early (hollow marker: its forecast end)",
        fontsize=9.5,
    )
    set_margins(fig, 0.8, LEGEND_INCHES, 0.6, 0.95, wspace=0.06, hspace=0.3)
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


def _loss_range(table: pd.DataFrame, curves: dict, fits: dict) -> tuple[float, float]:
    """Observed losses and predicted finals with 3 % margin; a wide interval may run off the axis, not squash it."""
    values = []
    for name in table["name"]:
        loss = curves[name]["loss"].to_numpy(dtype=float)
        loss = loss[np.isfinite(loss) & (loss > 0)]
        if loss.size:
            values += [float(smooth(loss, smoothing_window(loss)).min()), float(np.quantile(loss, 0.99))]
        centre = (fits.get(name) or {}).get("pred_final_loss")
        if isinstance(centre, float) and math.isfinite(centre) and centre > 0:
            values.append(centre)
    if not values:
        return 1.0, 10.0
    return min(values) / 1.03, max(values) * 1.03


def _draw_run(ax, run, curve: pd.DataFrame, fit: dict | None, planned_lrs, colour, marker: str) -> None:
    flops, loss = curve["flops"].to_numpy(dtype=float), curve["loss"].to_numpy(dtype=float)
    keep = np.isfinite(flops) & np.isfinite(loss) & (flops > 0)
    flops, loss = flops[keep], loss[keep]
    if flops.size == 0:
        return
    smoothed = smooth(loss, smoothing_window(loss))
    ax.plot(flops, smoothed, color=colour, lw=1.3, alpha=0.95)
    flops_per_step = flops[-1] / max(int(curve["step"].iloc[-1]), 1)
    predicted = forecast_path(fit)
    if predicted is not None:
        ax.plot(predicted[0] * flops_per_step, predicted[1], color=colour, lw=0.9, ls="--", alpha=0.8)
    fit = fit or {}
    low, high, centre = (fit.get(k) for k in ("pred_final_low", "pred_final_high", "pred_final_loss"))
    forecast = all(isinstance(v, float) and math.isfinite(v) for v in (low, high, centre)) and low <= centre <= high
    end = run.max_steps * flops_per_step
    if forecast:
        ax.errorbar([end], [centre], yerr=[[centre - low], [high - centre]], color=colour, fmt="none", capsize=3, lw=1)
    if run.status == "stopped":
        ax.plot(flops[-1], smoothed[-1], marker="x", color="crimson", ms=9, mew=2, zorder=5)
        if forecast:  # its budget's marker, hollow, at the forecast where it would have ended
            ax.plot(end, centre, marker=marker, mfc="none", mec=colour, mew=1.2, ms=6, ls="", zorder=4)
    else:
        ax.plot(flops[-1], smoothed[-1], marker=marker, color=colour, ms=6, mec="black", mew=0.6, ls="", zorder=4)


def _legend_handles(colour_of: dict, marker_of: dict) -> list:
    line = plt.Line2D
    handles = [line([], [], ls="", label="colour: N (parameters)")]
    handles += [line([], [], color=c, lw=2.5, label=f"  N = {short_number(s)}") for s, c in colour_of.items()]
    handles.append(line([], [], ls="", label="marker: planned tokens D"))
    handles += [
        line([], [], color="grey", marker=m, ls="", mec="black", mew=0.6, label=f"  D = {short_number(d)}")
        for d, m in marker_of.items()
    ]
    handles += [
        line([], [], ls="", label="line"),
        line([], [], color="black", lw=1.3, label="  observed (smoothed)"),
        line([], [], color="black", lw=0.9, ls="--", label="  forecast to planned end"),
        line([], [], color="crimson", marker="x", ls="", mew=2, label="  stopped early"),
        line([], [], color="grey", marker="o", mfc="none", ls="", label="  its forecast end"),
    ]
    return handles
