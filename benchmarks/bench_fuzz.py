"""Reliability as numbers: fuzzed curves, sweeps, files and configs into every target, one table.

For each target: cases, statuses returned, clear input errors, exceptions, hangs (over 10 s),
broken results (status ok with non-finite numbers), max seconds and max memory of one case
(tracemalloc peak, measured on every ``--memory-every``-th case and on every 1e7–1e8-step schedule).
The CLI rows count exit codes on bad files and malformed configs: exit 2 with one line naming the
file or key and nothing written is the contract.

Run (the issue's sizes: 10 000 curves, 2 000 L(N, D) inputs)::

    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_fuzz.py --curves 10000 --sweeps 2000 --workers 2

(``--full-fit-curves`` and ``--other-sweeps`` shrink the slow targets on a small machine.)

A forecaster is added as a target with ``tests.fuzz_harness.forecaster_contract`` (any callable
mapping a CurveCase to a mapping with ``status`` and numbers).
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fuzz_batch import tally_many  # noqa: E402
from tests.fuzz_harness import CHEAP_CURVE_TARGET, CURVE_TARGETS, Tally  # noqa: E402
from tests.fuzz_sweeps import SWEEP_TARGETS  # noqa: E402


def _run_target(kind: str, target: str, n: int, seed: int, workers: int, memory_every: int) -> Tally:
    started = time.perf_counter()
    tally = tally_many(kind, target, n, seed, workers, memory_every)
    tally.wall = time.perf_counter() - started  # type: ignore[attr-defined]
    return tally


def _steps_rows() -> list[tuple[int, float, float, int, str]]:
    """The same 300 logged rows of a cosine fitted on a 1e4-, 1e6- and 1e8-step schedule: time and memory."""
    import tracemalloc

    import numpy as np

    from scaling_callback.fitting.curve_fitter import CurveFitter
    from scaling_callback.fitting.curves import Curve
    from scaling_callback.laws.schedule import Schedule

    rows = []
    for total in (10**4, 10**6, 10**8):
        warmup = total // 100
        knots = np.rint(np.linspace(warmup, total, 300))
        lrs = 1e-3 * (0.1 + 0.45 * (1 + np.cos(np.pi * (knots - warmup) / (total - warmup))))
        steps = np.unique(np.rint(np.linspace(warmup + 1, 0.6 * total, 300)).astype(int))
        best = None
        for _ in range(3):
            tracemalloc.start()
            started = time.perf_counter()
            schedule = Schedule.from_logged(knots, lrs, warmup_steps=warmup, total_steps=total)
            s1 = schedule.lr_sum_at(steps - warmup) + schedule.warmup_sum
            fitter = CurveFitter().fit([Curve(schedule, steps, 2.0 + 3.0 * (s1 / s1[0]) ** -0.4)])
            final = fitter.predict_final(schedule)
            seconds = time.perf_counter() - started
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            if best is None or seconds < best[1]:
                best = (total, seconds, peak / 2**20, schedule.n_pieces, f"{fitter.status_}, final {final.loss:.4f}")
        rows.append(best)
    return rows


def _cli_rows() -> list[dict]:
    """Every CLI on every bad file, and ``sweep`` on every malformed config (in-process, as the tests do)."""
    import os

    from tests.test_fuzz_cli import BAD_CONFIGS, COMMANDS, _bad_files, _run, _snapshot

    rows = []
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        os.environ["SCALING_CALLBACK_MAX_FILE_MB"] = "1"
        previous = os.getcwd()
        os.chdir(root)
        try:
            (root / "notes.txt").write_text("not a database\n")  # the configs' relative "store: notes.txt"
            files = _bad_files(root / "bad")
            (root / "bad" / "out").mkdir()
            for command, build in COMMANDS.items():
                rows.append(
                    _cli_row(
                        command, [(kind, build(path), root / "bad") for kind, path in files.items()], _run, _snapshot
                    )
                )
            configs = []
            for case, (text, _) in BAD_CONFIGS.items():
                folder_ = root / "configs" / case.replace(" ", "_")
                folder_.mkdir(parents=True)
                (folder_ / "notes.txt").write_text("not a database\n")
                (folder_ / "config.yaml").write_text(text)
                configs.append((case, ["sweep", str(folder_ / "config.yaml"), "--out", str(folder_ / "out")], folder_))
            rows.append(_cli_row("sweep (malformed configs)", configs, _run, _snapshot))
        finally:
            os.chdir(previous)
            del os.environ["SCALING_CALLBACK_MAX_FILE_MB"]
    return rows


def _cli_row(command: str, cases: list, run, snapshot) -> dict:
    row = {
        "target": f"CLI {command}",
        "cases": 0,
        "exit 2, one line": 0,
        "tracebacks": 0,
        "exit 0": 0,
        "other exit": 0,
        "wrote": 0,
        "max_s": 0.0,
        "failures": [],
    }
    for kind, argv, root in cases:
        before = snapshot(root)
        started = time.perf_counter()
        code, _, err = run(argv)
        row["max_s"] = max(row["max_s"], time.perf_counter() - started)
        row["cases"] += 1
        lines = [line for line in err.splitlines() if line.strip()]
        changed = snapshot(root) != before or any((root / "out").glob("*"))
        row["wrote"] += changed
        if "Traceback" in err or "internal error" in err:
            row["tracebacks"] += 1
        elif code == 0:
            row["exit 0"] += 1
        elif code == 2 and len(lines) == 1 and not changed:
            row["exit 2, one line"] += 1
            continue
        else:
            row["other exit"] += 1
        row["failures"].append(f"{kind}: exit {code} {err.strip()[:160]!r}")
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--curves", type=int, default=1000, help="fuzzed curves per per-run target (issue: 10000)")
    parser.add_argument(
        "--full-fit-curves", type=int, default=None, help="curves for the full-fit targets (default: --curves)"
    )
    parser.add_argument("--sweeps", type=int, default=500, help="fuzzed inputs into the L(N, D) fitter (issue: 2000)")
    parser.add_argument(
        "--other-sweeps",
        type=int,
        default=None,
        help="fuzzed inputs into the other cross-run targets (default: --sweeps)",
    )
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--workers", type=int, default=1, help="processes (each case still runs on one core)")
    parser.add_argument(
        "--memory-every", type=int, default=10, help="trace memory on every k-th case (and all huge schedules)"
    )
    parser.add_argument("--skip-cli", action="store_true")
    args = parser.parse_args()
    full = args.curves if args.full_fit_curves is None else args.full_fit_curves

    started = time.perf_counter()
    from tests.fuzz_harness import warm_imports

    warm_imports()
    steps = _steps_rows()
    print(
        "cost by information: 300 logged rows of a cosine schedule, fit (MPL, jackknife) + final prediction, best of 3"
    )
    print(f"{'steps':>12}{'pieces':>8}{'seconds':>9}{'x 1e4':>7}{'peak MiB':>10}{'x 1e4':>7}  result")
    for total, seconds, mib, pieces, result in steps:
        print(
            f"{total:>12.0e}{pieces:>8}{seconds:>9.2f}{seconds / steps[0][1]:>7.2f}"
            f"{mib:>10.1f}{mib / steps[0][2]:>7.2f}  {result}"
        )
    print()
    tallies = [_run_target("curve", CHEAP_CURVE_TARGET[0], args.curves, args.seed, args.workers, args.memory_every)]
    tallies += [_run_target("curve", t, full, args.seed, args.workers, args.memory_every) for t in CURVE_TARGETS]
    others = args.sweeps if args.other_sweeps is None else args.other_sweeps
    tallies += [
        _run_target(
            "sweep",
            t,
            args.sweeps if t.startswith("ComputeOptimalLaw") else others,
            args.seed,
            args.workers,
            args.memory_every,
        )
        for t in SWEEP_TARGETS
    ]

    print(f"fuzz: seed {args.seed}, {args.workers} worker(s); a hang is a case over 10 s\n")
    header = (
        f"{'target':<38}{'cases':>7}  {'statuses':<44}{'input err':>10}{'exc':>5}{'hang':>5}{'broken':>7}"
        f"{'max s':>7}{'max MiB':>9}"
    )
    print(header)
    print("-" * len(header))
    for tally in tallies:
        statuses = ", ".join(f"{k} {v}" for k, v in sorted(tally.statuses.items(), key=lambda kv: -kv[1])[:3])
        others = sum(tally.statuses.values()) - sum(
            v for _, v in sorted(tally.statuses.items(), key=lambda kv: -kv[1])[:3]
        )
        statuses += f", other {others}" if others else ""
        print(
            f"{tally.target:<38}{tally.cases:>7}  {statuses[:43]:<44}{tally.input_errors:>10}{tally.exceptions:>5}"
            f"{tally.hangs:>5}{tally.broken:>7}{tally.max_seconds:>7.2f}{tally.max_bytes / 2**20:>9.1f}"
        )
    for tally in tallies:
        for failure in tally.failures[:5]:
            print(f"  {tally.target}: {failure.label}: {failure.kind}: {failure.detail[:160]}")
    if not args.skip_cli:
        rows = _cli_rows()
        print()
        head = (
            f"{'CLI target':<40}{'cases':>7}{'exit 2, 1 line':>16}{'traceback':>11}{'exit 0':>8}{'other':>7}"
            f"{'wrote':>7}{'max s':>7}"
        )
        print(head)
        print("-" * len(head))
        for row in rows:
            print(
                f"{row['target']:<40}{row['cases']:>7}{row['exit 2, one line']:>16}{row['tracebacks']:>11}"
                f"{row['exit 0']:>8}{row['other exit']:>7}{row['wrote']:>7}{row['max_s']:>7.2f}"
            )
        for row in rows:
            for failure in row["failures"][:5]:
                print(f"  {row['target']}: {failure}")
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\nwall {time.perf_counter() - started:.0f} s; peak RSS of the main process {peak_rss:.0f} MiB")


if __name__ == "__main__":
    main()
