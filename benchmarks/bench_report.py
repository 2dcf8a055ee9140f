"""Benchmark of the report's slow part, the frontier bootstrap: warm-started refits against refits from every start.

    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_report.py                      # synthetic sweeps only
    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_report.py --sweep-dir runs/quickstart   # + the quickstart's store

For each point set the same fitted law is bootstrapped twice, side by side in one run: the default
(warm start from the point fit's optimum, stop at its convergence criterion, distinct points
weighted) and ``warm_start=False`` (every resample optimised from all starts at ftol 1e-15 /
gtol 1e-12, the method it replaced). Printed: seconds of each, their ratio, the largest difference
of the draws of a, and both 95 % intervals of a. With ``--sweep-dir`` the whole ``write_report``
is timed too (target: ≤ 15 s for the quickstart on a 2-core machine). The load average is printed
before and after: the machine may be shared.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from scaling_callback.fitting.bootstrap import bootstrap_compute_optimal
from scaling_callback.fitting.compute_optimal import ComputeOptimalLaw
from scaling_callback.fitting.synthetic_sweeps import isoflop_sweep


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min) on {os.cpu_count()} cores"


def compare(label: str, n, d, loss, resamples: int) -> None:
    law = ComputeOptimalLaw().fit(n, d, loss)
    timings, draws = {}, {}
    for name, warm in (("warm start", True), ("all starts", False)):
        started = time.perf_counter()
        result = bootstrap_compute_optimal(law, n_resamples=resamples, seed=0, n_jobs=1, warm_start=warm)
        timings[name] = time.perf_counter() - started
        draws[name] = result
    warm, full = draws["warm start"], draws["all starts"]
    both = min(len(warm.draws), len(full.draws))
    delta = float(np.nanmax(np.abs(warm.draws["a"].to_numpy()[:both] - full.draws["a"].to_numpy()[:both])))
    ci_w, ci_f = warm.ci()["a"], full.ci()["a"]
    print(
        f"| {label} | {len(n)} | {resamples} | {timings['warm start']:.2f} | {timings['all starts']:.2f} | "
        f"{timings['all starts'] / timings['warm start']:.1f}x | {delta:.2g} | "
        f"[{ci_w[0]:.3f}, {ci_w[1]:.3f}] | [{ci_f[0]:.3f}, {ci_f[1]:.3f}] |"
    )


def sweep_points(sweep_dir: Path):
    from scaling_callback.report.frontier import usable_points
    from scaling_callback.report.sweep_data import final_points
    from scaling_callback.store import SweepStore

    store = SweepStore(f"sqlite:///{(sweep_dir / 'sweep.sqlite').resolve()}")
    try:
        name = str(store.sweeps()["name"].iloc[-1])
        finals = final_points(store, name)
    finally:
        store.close()
    data = usable_points(finals[finals["status"].isin(["finished", "stopped"])])
    return data["n"].to_numpy(), data["tokens"].to_numpy(), data["loss"].to_numpy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sweep-dir", type=Path, default=None, help="a sweep's output folder (holds sweep.sqlite)")
    parser.add_argument("--resamples", type=int, default=200, help="bootstrap resamples per comparison")
    args = parser.parse_args()
    print(f"start: {load()}")
    print(
        "| points | n | resamples | warm start s | all starts s | speed-up | max abs diff of a | 95 % CI of a (warm) "
        "| 95 % CI of a (all starts) |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for runs in (20, 60, 240):
        sweep = isoflop_sweep(runs, noise=0.01, seed=2)
        compare(
            "synthetic Chinchilla-like",
            sweep["params"].to_numpy(),
            sweep["tokens"].to_numpy(),
            sweep["loss"].to_numpy(),
            args.resamples,
        )
    if args.sweep_dir is not None:
        compare(f"sweep {args.sweep_dir}", *sweep_points(args.sweep_dir), args.resamples)
        from scaling_callback.report.writer import write_report

        with tempfile.TemporaryDirectory() as scratch:  # the report is written elsewhere: the sweep stays as it is
            url = f"sqlite:///{(args.sweep_dir / 'sweep.sqlite').resolve()}"
            started = time.perf_counter()
            write_report(scratch, url, bootstrap=args.resamples)
            print(
                f"\nwrite_report on {args.sweep_dir} with {args.resamples} resamples: "
                f"{time.perf_counter() - started:.1f} s (inside Python, imports excluded)"
            )
    print(f"end: {load()}")


if __name__ == "__main__":
    main()
