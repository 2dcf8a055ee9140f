"""``schedules.png``: every distinct planned LR schedule of the sweep; one legend line per kind and peak LR.

A peak LR scaled by width (the tiny LM factory's ``lr_width_reference``) is shown as the grid's
value "× W/width": its schedules share a colour, lighter for the shorter ones.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from scaling_callback.report.plot_style import DPI, plt, set_margins, short_number
from scaling_callback.report.run_keys import peak_lr, schedule_kind


def distinct_schedules(runs: pd.DataFrame, schedules: dict) -> list[dict]:
    """One entry per distinct planned schedule (identical LR arrays share one): kind, peak LR, steps, lrs, runs."""
    entries: list[dict] = []
    for run in runs.itertuples():
        lrs = schedules.get(run.name)
        if lrs is None or len(lrs) == 0:
            continue
        lrs = np.asarray(lrs, dtype=float)
        config = run.config if isinstance(run.config, dict) else {}
        for entry in entries:
            if entry["lrs"].shape == lrs.shape and np.allclose(entry["lrs"], lrs, rtol=1e-9, atol=0.0):
                entry["runs"].append(run.name)
                break
        else:
            entries.append(
                {
                    "kind": schedule_kind(config),
                    "peak_lr": peak_lr(config, lrs),
                    "steps": len(lrs),
                    "lrs": lrs,
                    "runs": [run.name],
                    "width_reference": config.get("lr_width_reference"),
                }
            )
    return sorted(entries, key=lambda e: (e["kind"], -(e["peak_lr"] or 0.0), e["steps"]))


def plot_schedules(runs: pd.DataFrame, schedules: dict, path: Path) -> None:
    """The planned LR of every distinct schedule against the optimizer step, on a log LR axis."""
    entries = distinct_schedules(runs, schedules)
    fig, ax = plt.subplots(figsize=(10, 4.6))
    peaks = sorted({e["peak_lr"] for e in entries if e["peak_lr"]}, reverse=True)
    families = [plt.cm.Blues, plt.cm.Oranges, plt.cm.Greens, plt.cm.Purples, plt.cm.Reds, plt.cm.Greys]
    positive = []
    groups: dict[tuple, list[dict]] = {}
    for entry in entries:  # one legend line per (kind, peak LR): a sweep may have dozens of schedules
        groups.setdefault((entry["kind"], entry["peak_lr"]), []).append(entry)
    for (kind, peak), members in groups.items():
        family = families[peaks.index(peak) % len(families)] if peak in peaks else plt.cm.Greys
        lengths = ", ".join(str(steps) for steps in sorted({e["steps"] for e in members}))
        n_runs = sum(len(e["runs"]) for e in members)
        count = f", {n_runs} runs" if n_runs > 1 else ""
        reference = members[0]["width_reference"]
        scaled = f" × {reference}/width" if reference else ""
        for position, entry in enumerate(members):
            shade = 0.45 + 0.5 * (position + 1) / (len(members) + 1)
            steps = np.arange(1, entry["steps"] + 1)
            lrs = entry["lrs"]
            keep = lrs > 0
            positive.append(lrs[keep])
            label = f"{kind}, peak {short_number(peak or 0)}{scaled}{count}\n{lengths} steps" if position == 0 else None
            ax.plot(steps[keep], lrs[keep], lw=1.5, color=family(shade), label=label)
    ax.set_yscale("log")
    if positive:
        values = np.concatenate(positive)
        floor = np.quantile(values, 0.01)  # the first warmup steps would otherwise stretch the axis down
        ax.set_ylim(floor / 1.5, values.max() * 1.5)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("learning rate (log scale)")
    ax.set_title("Planned LR schedules, warmup included (runs sharing a schedule drawn once)", fontsize=10)
    ax.grid(True, which="both", alpha=0.25)
    if entries:
        ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    else:
        ax.text(0.5, 0.5, "no planned schedule recorded", ha="center", va="center", transform=ax.transAxes)
    set_margins(fig, 0.85, 2.7, 0.6, 0.45)
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
