"""The one forecaster: interval coverage on the benchmark sweeps, and the cost of a check as a sweep grows.

Coverage: every run of each sweep is forecast from its first 10, 25, 50, 75 and 90 % with every
other run of the sweep as a donor (finished, backtested), and the 90 % interval is checked against
its observed final. Printed per sweep and fraction: forecasts, coverage, mean z (truth − forecast
over SD: positive means optimistic), SD of z (1 when calibrated), mean |error| and mean SD, relative;
then each sweep's calibration (κ, τ, τ_drop) once all its runs have finished.

Scaling (``--scaling``): the law policy replays synthetic multi-power-law sweeps of 10 to 500 runs
(``bench_stopping.many_runs``) on 4 slots; printed per sweep size: checks, forecasts per check,
milliseconds per check, and the whole replay's seconds.

    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_forecast.py [--scaling] [--sizes 10 30 100 250 500]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_stopping import GROUPS, many_runs

from scaling_callback.fitting.forecast_types import Calibration, RunCurve
from scaling_callback.fitting.sweep_forecaster import SweepForecaster
from scaling_callback.stopping import LawPolicy, replay

FRACTIONS = (0.1, 0.25, 0.5, 0.75, 0.9)


def coverage(name: str, runs: list) -> None:
    rows = []
    for run in runs:
        forecaster = SweepForecaster()
        for other in runs:
            if other.name != run.name:
                forecaster.add_ended(other.curve(), finished=True)
        whole = run.curve()
        for fraction in FRACTIONS:
            keep = whole.x <= fraction * whole.budget
            prefix = RunCurve(whole.name, whole.x[keep], whole.loss[keep], whole.budget, whole.lrs, whole.step_per_x)
            forecast, _ = forecaster.forecast(prefix)
            if forecast is None:
                continue
            truth = float(run.loss[-1])
            rows.append(
                (
                    fraction,
                    (truth - forecast.loss) / forecast.sd,
                    forecast.low <= truth <= forecast.high,
                    abs(truth - forecast.loss) / truth,
                    forecast.sd / truth,
                )
            )
    table = np.array(rows, dtype=float)
    for fraction in FRACTIONS:
        part = table[table[:, 0] == fraction]
        if part.size == 0:
            continue
        print(
            f"| {name} | {fraction:.0%} | {len(part)} | {part[:, 2].mean():.0%} | {part[:, 1].mean():+.2f} | "
            f"{part[:, 1].std():.2f} | {part[:, 3].mean():.2%} | {part[:, 4].mean():.2%} |"
        )


def scaling(sizes: list[int]) -> None:
    print("| runs | checks | forecasts per check | ms per check | replay s |")
    print("|---|---|---|---|---|")
    for size in sizes:
        runs = many_runs(size)
        policy = LawPolicy()
        started = time.perf_counter()
        result = replay(runs, policy, workers=4)
        seconds = time.perf_counter() - started
        print(
            f"| {size} | {result.n_decisions} | {policy.forecaster.n_fits / result.n_decisions:.2f} | "
            f"{1e3 * seconds / result.n_decisions:.1f} | {seconds:.1f} |",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scaling", action="store_true", help="measure the cost of a check as the sweep grows")
    parser.add_argument(
        "--sizes", type=int, nargs="+", default=[10, 30, 100, 250, 500], help="sweep sizes for --scaling"
    )
    args = parser.parse_args()
    if args.scaling:
        scaling(args.sizes)
        return
    print("| sweep | from | forecasts | 90 % covered | mean z | SD of z | mean abs error | mean SD |")
    print("|---|---|---|---|---|---|---|---|")
    for name, runs in GROUPS.items():
        coverage(name, runs if len(runs) <= 40 else runs[:40])
    print("\n| sweep | κ | τ (power law) | τ_drop (drop term) | from |")
    print("|---|---|---|---|---|")
    for name, runs in GROUPS.items():
        calibration = calibrated(runs if len(runs) <= 40 else runs[:40])
        print(
            f"| {name} | {calibration.kappa:.2f} | {calibration.tau:.3f} | {calibration.tau_drop:.3f} | "
            f"{calibration.source} |"
        )


def calibrated(runs: list) -> Calibration:
    """The sweep's calibration once every run has finished, in the file's order (each backtested with the prior
    of the runs before it, as in a sweep)."""
    forecaster = SweepForecaster()
    for run in runs:
        forecaster.add_ended(run.curve(), finished=True)
    return forecaster.pool.calibration()


if __name__ == "__main__":
    main()
