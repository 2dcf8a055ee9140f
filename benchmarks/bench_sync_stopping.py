"""What synchronous stop checks cost: one sweep config with ``stopping.synchronous`` false and true, side by side.

Asynchronous (the default): a check's fit runs in the background within the CPU budget and a stop lands when
its fit returns. Synchronous: every ``fit_every_n_steps``-th step is fitted and training waits for the
policy's decision (docs/early-stopping.md, "When a stop lands"). Per mode and repeat: wall time of the
sweep (training only, no report), online fits, checks judged, the runs stopped with their stop steps, and
the CPU seconds the fits took; then the wall-time ratio, and whether the repeats of a mode stopped the
same runs at the same steps.

    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_sync_stopping.py [--config configs/quickstart.yaml]
        [--workers N] [--repeats 1]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent


def run_once(raw: dict, synchronous: bool, workers: int | None, root: Path) -> dict:
    from scaling_callback.cli import main
    from scaling_callback.store import SweepStore

    config = raw | {"stopping": (raw.get("stopping") or {}) | {"synchronous": synchronous}, "store": None}
    out = Path(tempfile.mkdtemp(prefix="sync_" if synchronous else "async_", dir=root))
    path = out / "sweep.yaml"
    path.write_text(yaml.safe_dump(config))
    command = ["sweep", str(path), "--out", str(out / "out"), "--no-report"]
    began = time.perf_counter()
    code = main(command + (["--workers", str(workers)] if workers else []))
    wall = time.perf_counter() - began
    store = SweepStore(out / "out" / "sweep.sqlite")
    try:
        runs = store.runs(config.get("name", "sweep"))
        fits = [store.fits(name) for name in runs.name]
        decisions = [store.decisions(name) for name in runs.name]
    finally:
        store.close()
    stopped = runs.status == "stopped"
    return {
        "code": code,
        "wall": wall,
        "runs": len(runs),
        "fits": sum(int((~f.final.astype(bool)).sum()) for f in fits if len(f)),
        "fit_cpu": sum(float(f.cpu_seconds.sum()) for f in fits if len(f)),
        "checks": sum(len(d) for d in decisions),
        "stops": dict(zip(runs.name[stopped], runs.stop_step[stopped].astype(int))),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(HERE.parent / "configs" / "quickstart.yaml"))
    parser.add_argument("--workers", type=int, default=None, help="default: the config's")
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    raw = yaml.safe_load(Path(args.config).read_text())
    root = Path(tempfile.mkdtemp(prefix="bench_sync_stopping_"))
    results: dict[str, list[dict]] = {"async": [], "sync": []}
    for _ in range(args.repeats):
        for mode in results:
            results[mode].append(run_once(raw, mode == "sync", args.workers, root))
    workers = args.workers or raw.get("workers", 1)
    print(f"\n{Path(args.config).name}: {results['async'][0]['runs']} runs, {workers} workers, {os.cpu_count()} cores")
    print("| mode | repeat | wall s | online fits | fit CPU s | checks judged | stopped (run: step) |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for mode, repeats in results.items():
        for i, r in enumerate(repeats):
            stops = ", ".join(f"{name}: {step}" for name, step in sorted(r["stops"].items())) or "none"
            print(
                f"| {mode} | {i + 1} | {r['wall']:.1f} | {r['fits']} | {r['fit_cpu']:.1f} | {r['checks']} | "
                f"{len(r['stops'])} ({stops}) |"
            )
    mean = {mode: sum(r["wall"] for r in repeats) / len(repeats) for mode, repeats in results.items()}
    print(f"wall sync / async: {mean['sync'] / mean['async']:.2f}")
    for mode, repeats in results.items():
        if len(repeats) > 1:
            same = all(r["stops"] == repeats[0]["stops"] for r in repeats[1:])
            print(f"{mode}: every repeat stopped the same runs at the same steps: {same}")


if __name__ == "__main__":
    main()
