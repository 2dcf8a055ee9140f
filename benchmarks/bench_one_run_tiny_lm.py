"""One run per model size against the full grid on the tiny LM: the frontier each gives and the compute each spends.

Four sweeps of the built-in tiny LM (the quickstart's corpus, widths and width-scaled LR), run with
the sweep runner exactly as a user would, no early stopping:

- **grids**: 4 widths × 7 token budgets (factors of √2 over 8×), each a separate run, cosine in one
  grid and WSD (20 % linear decay) in the other, its final evaluated on the sweep's held-out stream
  (~200k tokens) with its standard error;
- **one run per size**: each width once, WSD to the largest budget; the report forecasts the final of
  a fully decayed run (WSD target) at every budget of the grid from its curve
  (:mod:`scaling_callback.report.forecast_points`): from its training losses, or, in the fourth sweep,
  from held-out evaluations every ``EVAL_EVERY`` steps.

Every report fits approach 3 weighted by the finals' SDs, with a 200-resample bootstrap. Printed: a,
b, α, β and the loss at the recommended budget (10× the largest run's compute, the same C for all)
with 95 % intervals, the compute each design used (training 6·N·D, and with the evaluations' 2·N
per held-out token), and how far each design's frontier points lie from each grid's evaluated
finals at the same (N, D)::

    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_one_run_tiny_lm.py [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from scaling_callback.report.forecast_points import one_run_points, sweep_config
from scaling_callback.store import SweepStore

WIDTHS = (8, 16, 32, 64)
EVAL_EVERY = 125  # 16 held-out evaluations along a 2000-step run
TOKENS = (128000, 181019, 256000, 362039, 512000, 724077, 1024000)  # 250 ... 2000 steps of 512 tokens
COMMON = {
    "model": {
        "factory": "tiny_lm",
        "args": {"vocab_size": 64, "seq_len": 32, "batch_size": 16, "lr_width_reference": 32},
    },
    "optimizer": {"peak_lr": 0.008, "warmup_steps": 20, "final_lr_fraction": 0.1, "decay_fraction": 0.2},
    "evaluation": {"tokens": 196608, "every_n_steps": 0, "target_sd": 0.003},
    "callback": {"fit_every_n_steps": 100, "max_fit_fraction": 1.0},
    "stopping": {"policy": "none"},
    "frontier": {"bootstrap": 200},
    "workers": 2,
    "checkpoint_every_n_steps": 200,
}


def configs() -> dict[str, dict]:
    sizes = [{"d_model": w, "n_layers": 1} for w in WIDTHS]
    grid = COMMON | {"name": "tiny-grid", "grid": {"sizes": sizes, "tokens": list(TOKENS), "schedules": ["cosine"]}}
    wsd_grid = COMMON | {
        "name": "tiny-grid-wsd",
        "grid": {"sizes": sizes, "tokens": list(TOKENS), "schedules": ["wsd"]},
    }
    one = COMMON | {
        "name": "tiny-one-run",
        "grid": {
            "design": "one_run_per_size",
            "sizes": sizes,
            "tokens": list(TOKENS),
            "schedules": ["wsd"],
            "forecast_schedule": "wsd",
        },
    }
    held_out = one | {
        "name": "tiny-one-run-held-out",
        "evaluation": COMMON["evaluation"] | {"every_n_steps": EVAL_EVERY},
    }
    return {
        "grid (cosine)": grid,
        "grid (WSD)": wsd_grid,
        "one WSD run per size, training-loss curve": one,
        f"one WSD run per size, held-out curve (every {EVAL_EVERY} steps)": held_out,
    }


def run_sweep(config: dict, folder: Path) -> tuple[dict, pd.DataFrame, float]:
    """Run ``scaling-callback sweep`` on ``config``: its report's details, its frontier's points, the wall seconds."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    started = time.perf_counter()
    command = [sys.executable, "-m", "scaling_callback", "sweep", str(path), "--out", str(folder / "out")]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    seconds = time.perf_counter() - started
    details = json.loads((folder / "out" / "report" / "details.json").read_text())
    if config["grid"].get("design") == "one_run_per_size":
        store = SweepStore(folder / "out" / "sweep.sqlite")
        points = one_run_points(store, config["name"], sweep_config(store, config["name"]))[0]
        store.close()
        points = points.rename(columns={"n_params": "n", "tokens": "d"})[["n", "d", "loss"]]
    else:
        points = pd.DataFrame(details["runs"]).rename(columns={"n_params": "n", "tokens": "d"})[["n", "d", "loss"]]
    return details, points, seconds


def point_errors(points: pd.DataFrame, grid: pd.DataFrame) -> str:
    """Mean and largest |point − the grid's final| over the (N, D) both have (D matched to within 1 %)."""
    errors = []
    for n, d, loss in points.itertuples(index=False):
        same = grid[(grid.n == n) & (np.abs(grid.d / d - 1.0) < 0.01)]
        if len(same):
            errors.append(loss - float(same.loss.iloc[0]))
    if not errors:
        return "–"
    errors = np.abs(errors)
    return f"{errors.mean():.4f} / {errors.max():.4f} ({errors.size})"


def compute_used(details: dict) -> float:
    """6·N·D summed over the runs the sweep trained (the same count for every design)."""
    return float(sum(6.0 * run["n_params"] * run["tokens"] for run in details["runs"]))


def evaluation_compute(details: dict, config: dict) -> float:
    """2·N·(held-out tokens) per evaluation (forward passes only), summed over the runs' evaluations."""
    evaluation, args = config["evaluation"], config["model"]["args"]
    every, per_step = evaluation.get("every_n_steps", 0), args["batch_size"] * args["seq_len"]
    count = lambda run: 1 + (int(run["tokens"] // per_step) // every if every else 0)  # noqa: E731
    return float(sum(2.0 * run["n_params"] * evaluation["tokens"] * count(run) for run in details["runs"]))


def row(name: str, details: dict, config: dict, seconds: float) -> dict:
    fit = details["frontier_fit"]
    ci = fit.get("ci") or {}
    loss_key = next((k for k in ci if k.startswith("loss@")), None)
    rec = fit.get("recommendation") or {}
    return {
        "design": name,
        **{k: (fit.get(k), ci.get(k)) for k in ("a", "b", "alpha", "beta")},
        "loss": (rec.get("loss"), ci.get(loss_key) if loss_key else None),
        "compute": compute_used(details),
        "evaluation": evaluation_compute(details, config),
        "curves": ((details.get("design") or {}).get("choices") or {}).get("curve"),
        "seconds": seconds,
    }


def cell(value: tuple) -> str:
    centre, interval = value
    if centre is None:
        return "–"
    return f"{centre:.3f} [{interval[0]:.3f}, {interval[1]:.3f}]" if interval else f"{centre:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="folder for the sweeps (default: a temporary one)")
    args = parser.parse_args()
    root = args.out or Path(tempfile.mkdtemp(prefix="one-run-tiny-lm-"))
    rows, points = [], []
    for index, (name, config) in enumerate(configs().items()):
        details, found, seconds = run_sweep(config, root / f"sweep{index}")
        rows.append(row(name, details, config, seconds))
        points.append(found)
    cosine, wsd = rows[0], rows[1]
    print(
        "| design | a | b | α | β | loss at 10× the largest run | training compute (× grid) | "
        "+ evaluations (× grid) | a − a_cosine grid | a − a_WSD grid | wall s |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        gaps = [
            r["a"][0] - g["a"][0] if r["a"][0] is not None and g["a"][0] is not None else math.nan
            for g in (cosine, wsd)
        ]
        print(
            f"| {r['design']} | {cell(r['a'])} | {cell(r['b'])} | {cell(r['alpha'])} | {cell(r['beta'])} | "
            f"{cell(r['loss'])} | {r['compute'] / cosine['compute']:.3f} | "
            f"{(r['compute'] + r['evaluation']) / (cosine['compute'] + cosine['evaluation']):.3f} | "
            f"{gaps[0]:+.3f} | {gaps[1]:+.3f} | {r['seconds']:.0f} |"
        )
    print(
        "\nThe frontier's points against each grid's evaluated finals: mean / largest |difference| (points compared)\n"
    )
    print("| design | against the cosine grid | against the WSD grid |")
    print("|---|---|---|")
    for r, found in zip(rows, points):
        print(f"| {r['design']} | {point_errors(found, points[0])} | {point_errors(found, points[1])} |")
    for r in rows[2:]:
        print(f"\n{r['design']}: curves forecast from {r['curves']}")
    print(f"\nsweeps in {root}")


if __name__ == "__main__":
    main()
