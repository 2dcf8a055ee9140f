"""One run per model size against the full grid on the tiny LM: the frontier each gives and the compute each spends.

Two sweeps of the built-in tiny LM (the quickstart's corpus, widths and width-scaled LR), run with the
sweep runner exactly as a user would, no early stopping:

- **grid**: 4 widths × 7 token budgets (factors of √2 over 8×), each a separate cosine run, its final
  evaluated on the sweep's held-out stream (~200k tokens) with its standard error;
- **one run per size**: each width once, WSD (20 % linear decay) to the largest budget; the report
  forecasts the final of a fully decayed run (WSD target) at every budget of the grid from its curve
  (:mod:`scaling_callback.report.forecast_points`).

Both reports fit approach 3 weighted by the finals' SDs, with a 200-resample bootstrap. Printed: a, b,
α, β and the loss at the recommended budget (10× the largest run's compute, the same C for both) with
95 % intervals, and the compute each design used::

    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_one_run_tiny_lm.py [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

WIDTHS = (8, 16, 32, 64)
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
    return {"grid (cosine)": grid, "one WSD run per size": one}


def run_sweep(config: dict, folder: Path) -> tuple[dict, float]:
    """Write the config, run ``scaling-callback sweep`` on it, return its report's details and the wall seconds."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    started = time.perf_counter()
    command = [sys.executable, "-m", "scaling_callback", "sweep", str(path), "--out", str(folder / "out")]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    seconds = time.perf_counter() - started
    return json.loads((folder / "out" / "report" / "details.json").read_text()), seconds


def compute_used(details: dict) -> float:
    """6·N·D summed over the runs the sweep trained (the same count for both designs)."""
    return float(sum(6.0 * run["n_params"] * run["tokens"] for run in details["runs"]))


def row(name: str, details: dict, seconds: float) -> dict:
    fit = details["frontier_fit"]
    ci = fit.get("ci") or {}
    loss_key = next((k for k in ci if k.startswith("loss@")), None)
    rec = fit.get("recommendation") or {}
    return {
        "design": name,
        **{k: (fit.get(k), ci.get(k)) for k in ("a", "b", "alpha", "beta")},
        "loss": (rec.get("loss"), ci.get(loss_key) if loss_key else None),
        "compute": compute_used(details),
        "seconds": seconds,
    }


def cell(value: tuple) -> str:
    centre, interval = value
    if centre is None:
        return "–"
    return f"{centre:.3f} [{interval[0]:.3f}, {interval[1]:.3f}]" if interval else f"{centre:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="folder for the two sweeps (default: a temporary one)")
    args = parser.parse_args()
    root = args.out or Path(tempfile.mkdtemp(prefix="one-run-tiny-lm-"))
    rows = []
    for index, (name, config) in enumerate(configs().items()):
        details, seconds = run_sweep(config, root / f"sweep{index}")
        rows.append(row(name, details, seconds))
    grid = rows[0]
    print("| design | a | b | α | β | loss at 10× the largest run | compute (× grid) | a − a_grid | wall s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        gap = r["a"][0] - grid["a"][0] if r["a"][0] is not None and grid["a"][0] is not None else float("nan")
        print(
            f"| {r['design']} | {cell(r['a'])} | {cell(r['b'])} | {cell(r['alpha'])} | {cell(r['beta'])} | "
            f"{cell(r['loss'])} | {r['compute'] / grid['compute']:.3f} | {gap:+.3f} | {r['seconds']:.0f} |"
        )
    print(f"\nsweeps in {root}")


if __name__ == "__main__":
    main()
