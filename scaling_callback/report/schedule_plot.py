"""``schedules.png``: every distinct planned LR schedule of the sweep, labelled by kind, peak LR and length."""

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
    for entry in entries:
        family = families[peaks.index(entry["peak_lr"]) % len(families)] if entry["peak_lr"] in peaks else plt.cm.Greys
        same_peak = [e for e in entries if e["peak_lr"] == entry["peak_lr"]]
        rank = next(i for i, e in enumerate(same_peak) if e is entry)  # by identity: entries hold arrays
        shade = 0.45 + 0.5 * (rank + 1) / (len(same_peak) + 1)
        steps = np.arange(1, entry["steps"] + 1)
        lrs = entry["lrs"]
        keep = lrs > 0
        positive.append(lrs[keep])
        count = f", {len(entry['runs'])} runs" if len(entry["runs"]) > 1 else ""
        ax.plot(
            steps[keep],
            lrs[keep],
            lw=1.5,
            color=family(shade),
            label=f"{entry['kind']}, peak {short_number(entry['peak_lr'] or 0)}, {entry['steps']} steps{count}",
        )
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
