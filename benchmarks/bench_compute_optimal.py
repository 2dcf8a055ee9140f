"""Benchmark of the compute-optimal fit: speed, and recovery of a (bias, interval coverage) on synthetic sweeps.

    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_compute_optimal.py           # full (10-15 min on a loaded 2-core machine)
    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_compute_optimal.py --quick   # about a minute

Sweeps are drawn from L(N, D) with the Epoch replication's parameters (Besiroglu et al. 2024:
E = 1.817, A = 482, B = 2085, α = 0.348, β = 0.366, so a = 0.5126) on Chinchilla's nine IsoFLOP
budgets, with multiplicative log-normal loss noise. Targets from the issue: point fit ≤ 2 s and a
1000-resample bootstrap ≤ 60 s on the 2-core machine; bootstrap SE of a in 0.01–0.04 on ~240 points.
The machine is shared: the load average is printed before and after, and serial and parallel
bootstrap timings are taken side by side in one run.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import numpy as np
import scipy

from scaling_callback.fitting.bootstrap import bootstrap_compute_optimal
from scaling_callback.fitting.compute_optimal import ComputeOptimalLaw
from scaling_callback.fitting.isoflop import EnvelopeFit, IsoFlopFit
from scaling_callback.fitting.synthetic_sweeps import isoflop_sweep, training_curves
from scaling_callback.laws.chinchilla import REPLICATION_PARAMS, frontier_exponents

TRUE_A = frontier_exponents(REPLICATION_PARAMS["alpha"], REPLICATION_PARAMS["beta"])[0]
CHINCHILLA_LIKE_NOISE = 0.018  # gives a bootstrap SE of a near the replication's 0.020 on 240 points


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min) on {os.cpu_count()} cores"


def fit(sweep) -> ComputeOptimalLaw:
    return ComputeOptimalLaw().fit(sweep["params"], sweep["tokens"], sweep["loss"])


def speed_section(resamples: int) -> None:
    sweep = isoflop_sweep(240, noise=CHINCHILLA_LIKE_NOISE, seed=0)
    seconds = []
    for _ in range(3):
        started = time.perf_counter()
        law = fit(sweep)
        seconds.append(time.perf_counter() - started)
    print(f"\n## Chinchilla-like sweep: {law.n_points_} points, noise {CHINCHILLA_LIKE_NOISE:.3f} (log loss)")
    print(
        f"point fit: {statistics.median(seconds):.3f} s (median of 3; target <= 2 s); status {law.status_}; "
        f"warnings {law.warnings_ or 'none'}"
    )
    print("| quantity | truth | fit |")
    print("|---|---|---|")
    for name in ("E", "A", "B", "alpha", "beta"):
        print(f"| {name} | {REPLICATION_PARAMS[name]:.4g} | {law.params_[name]:.4g} |")
    print(f"| a | {TRUE_A:.4f} | {law.a_:.4f} |")
    print("(one draw of the noise; the recovery table below gives bias and coverage over many draws)")
    print(f"\n{resamples}-resample bootstrap, side by side (same seed, same draws):")
    print("| workers | seconds | SE(a) | 95% CI of a | failed | not converged |")
    print("|---|---|---|---|---|---|")
    for jobs in (1, 2):
        boot = bootstrap_compute_optimal(law, n_resamples=resamples, seed=0, n_jobs=jobs, target_flops=[1e22])
        low, high = boot.ci()["a"]
        print(
            f"| {jobs} | {boot.seconds:.1f} | {boot.se()['a']:.4f} | [{low:.4f}, {high:.4f}] | {boot.n_failed} | {boot.n_not_converged} |"
        )
    auto = bootstrap_compute_optimal(law, n_resamples=resamples, seed=0, target_flops=[1e22])
    print(
        f"| auto ({auto.choices['workers']}) | {auto.seconds:.1f} | {auto.se()['a']:.4f} | | {auto.n_failed} | {auto.n_not_converged} |"
    )


def recovery_section(sizes: list[int], replicates: int, resamples: int) -> None:
    print(
        f"\n## Recovery of a = {TRUE_A:.4f}: {replicates} synthetic sweeps per size, {resamples} resamples each, "
        f"noise {CHINCHILLA_LIKE_NOISE:.3f}"
    )
    print("| runs | bias of a | RMSE of a | mean SE(a) | coverage of 95% CI | median fit s | median bootstrap s |")
    print("|---|---|---|---|---|---|---|")
    for n_runs in sizes:
        estimates, ses, covered, fit_seconds, boot_seconds = [], [], [], [], []
        for replicate in range(replicates):
            sweep = isoflop_sweep(n_runs, noise=CHINCHILLA_LIKE_NOISE, seed=1000 * n_runs + replicate)
            law = fit(sweep)
            boot = bootstrap_compute_optimal(law, n_resamples=resamples, seed=replicate)
            low, high = boot.ci()["a"]
            estimates.append(law.a_)
            ses.append(boot.se()["a"])
            covered.append(low <= TRUE_A <= high)
            fit_seconds.append(law.fit_seconds_)
            boot_seconds.append(boot.seconds)
        errors = np.array(estimates) - TRUE_A
        print(
            f"| {n_runs} | {errors.mean():+.4f} | {np.sqrt(np.mean(errors**2)):.4f} | {np.mean(ses):.4f} | "
            f"{np.mean(covered):.0%} ({sum(covered)}/{replicates}) | {np.median(fit_seconds):.2f} | {np.median(boot_seconds):.1f} |"
        )


def approaches_section(replicates: int) -> None:
    rows: dict[str, list[float]] = {
        "approach 3 (parametric L(N, D))": [],
        "approach 2 (IsoFLOP parabolas)": [],
        "approach 1 (envelope of 14 training curves)": [],
    }
    for seed in range(replicates):
        sweep = isoflop_sweep(240, noise=CHINCHILLA_LIKE_NOISE, seed=seed)
        curves = training_curves(
            np.geomspace(4e7, 1.6e10, 14), max_tokens=6e11, n_checkpoints=40, noise=0.003, seed=seed
        )
        values = (
            fit(sweep).a_,
            IsoFlopFit().fit(sweep["params"], sweep["flops"], sweep["loss"]).a_,
            EnvelopeFit().fit(curves["params"], curves["flops"], curves["loss"], curves["run"]).a_,
        )
        for name, a in zip(rows, values):
            rows[name].append(a)
    print(
        f"\n## Three approaches side by side (true a = {TRUE_A:.4f}; {replicates} seeds; 240 IsoFLOP points with noise "
        f"{CHINCHILLA_LIKE_NOISE}; curves with noise 0.003)"
    )
    print("| approach | mean a | sd of a over seeds |")
    print("|---|---|---|")
    for name, values in rows.items():
        print(f"| {name} | {np.mean(values):.4f} | {np.std(values, ddof=1):.4f} |")


def pathological_section() -> None:
    far_apart = {"E": 1.7, "A": 100.0, "B": 3.178e5, "alpha": 0.20, "beta": 0.64}  # 0.05 tokens/param
    sweep = isoflop_sweep(80, params=far_apart, noise=0.004, seed=3, half_width=1.5)
    law = fit(sweep)
    print("\n## Pathological sweep (alpha = 0.20, beta = 0.64): warnings of the free fit")
    for warning in law.warnings_:
        print(f"- {warning}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer resamples and replicates (about a minute)")
    parser.add_argument("--replicates", type=int, default=20, help="synthetic sweeps per size in the recovery table")
    parser.add_argument(
        "--resamples", type=int, default=150, help="bootstrap resamples per sweep in the recovery table"
    )
    args = parser.parse_args()
    resamples = 200 if args.quick else 1000
    print(
        f"# bench_compute_optimal ({'quick' if args.quick else 'full'}); python {platform.python_version()}, "
        f"numpy {np.__version__}, scipy {scipy.__version__}, OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS')}"
    )
    print(f"start: {load()}")
    started = time.perf_counter()
    speed_section(resamples)
    if args.quick:
        recovery_section([20, 100], replicates=4, resamples=60)
    else:
        recovery_section([20, 50, 100, 300], replicates=args.replicates, resamples=args.resamples)
    approaches_section(2 if args.quick else 6)
    pathological_section()
    print(f"\nend: {load()}; total {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
