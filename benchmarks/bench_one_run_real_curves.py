"""Forecast finals of fully decayed cosine runs from one real run per size (the MPL paper's 25M/100M/400M curves).

Needs ``../shared/reference/mpl_curves`` (not in the repository). Every size has three 24k-step-schedule
curves: constant LR to step 24000, cosine to step 24000 (to 10 % of the peak: the truth here), and
``wsdcon_9`` (the peak until step 8000, then 0.3x of it until step 14144; the same run as the
constant one until step 8000). :class:`~scaling_callback.fitting.decayed_finals.DecayedFinals` with
the ``cosine`` target forecasts the cosine run's final at step 24000 from:

- **A** the two-stage curve alone (14144 steps: the target is 1.7x its length);
- **B** the constant curve (24000 steps: the same length), the drop term from the same size's
  two-stage curve (its LR never decays, so it takes the nearest decayed size's);
- **C** the constant curve's first 8000 steps (the target is 3x its length), the same drop term.

Printed per size and case: forecast, truth, error, the forecast's SD, and whether the truth is inside
the 90 % and 95 % intervals (Gaussian with that SD)::

    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_one_run_real_curves.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

from scaling_callback.cli.curve_files import read_curve_csv
from scaling_callback.fitting.decayed_finals import DecayedFinals, DecayTarget, SizeRun

ROOT = Path(__file__).resolve().parents[2] / "shared" / "reference" / "mpl_curves"
SIZES = {"25M": 25e6, "100M": 100e6, "400M": 400e6}
WARMUP, TARGET, STABLE = 2160, 24000, 8000


def size_run(size: str, stem: str, name: str, last_step: int | None = None) -> SizeRun:
    curve = read_curve_csv(ROOT / size / f"{stem}.csv", WARMUP)
    schedule, steps, loss = curve.schedule, curve.steps, curve.loss
    if last_step is not None:
        keep = steps <= last_step
        schedule, steps, loss = schedule.truncated(last_step), steps[keep], loss[keep]
    return SizeRun(name, SIZES[size], schedule, steps, loss, 1.0)  # D counted in steps


def main() -> None:
    if not ROOT.is_dir():
        sys.exit(f"needs the MPL paper's curves in {ROOT}")
    truth = {size: float(read_curve_csv(ROOT / size / "cosine_24000.csv", WARMUP).loss[-1]) for size in SIZES}
    cases = {
        "A: two-stage curve (14144 steps), target 1.7x": [size_run(s, "wsdcon_9", f"A {s}") for s in SIZES],
        "B: constant curve (24000 steps) + drop of the two-stage, target 1x": [
            size_run(s, "constant_24000", f"B {s}") for s in SIZES
        ]
        + [size_run(s, "wsdcon_9", f"drop {s}") for s in SIZES],
        "C: constant curve to step 8000 + drop of the two-stage, target 3x": [
            size_run(s, "constant_24000", f"C {s}", STABLE) for s in SIZES
        ]
        + [size_run(s, "wsdcon_9", f"drop {s}") for s in SIZES],
    }
    print("| case | size | forecast | truth | error | SD | in 90 % | in 95 % |")
    print("|---|---|---|---|---|---|---|---|")
    errors, inside = [], []
    started = time.perf_counter()
    for label, runs in cases.items():
        shortest = min(r.schedule.total_steps for r in runs)  # every run must reach the smallest budget
        finals = DecayedFinals(DecayTarget("cosine", final_lr_fraction=0.1)).fit(runs, [float(shortest), float(TARGET)])
        for row in finals.points_.itertuples():
            kind, size = row.run.split(" ")
            if kind == "drop" or row.d != TARGET:
                continue
            error = row.loss - truth[size]
            z = abs(error) / row.loss_sd
            errors.append(abs(error))
            inside.append(z < 1.645)
            print(
                f"| {label} | {size} | {row.loss:.4f} | {truth[size]:.4f} | {error:+.4f} | {row.loss_sd:.4f} | "
                f"{'yes' if z < 1.645 else 'no'} | {'yes' if z < 1.96 else 'no'} |"
            )
    print(
        f"\nmean |error| {np.mean(errors):.4f}, max {np.max(errors):.4f}, within 0.01: {np.sum(np.array(errors) <= 0.01)}"
        f"/{len(errors)}, inside the 90 % interval: {sum(inside)}/{len(inside)}; {time.perf_counter() - started:.1f} s"
    )


if __name__ == "__main__":
    main()
