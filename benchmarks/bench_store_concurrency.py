"""8 processes writing to one SQLite sweep store at once: are rows lost, and how fast is it?

Each process registers a run and writes ``--points`` per-step points through the store's
BatchedWriter in batches of ``--batch`` (what a callback's flush sends), plus one fit and one
decision row every 10 batches and a status at the end, as training runs do. The parent then counts
rows in every table and checks that every run's steps are exactly 1..points.

    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_store_concurrency.py [--processes 8] [--points 20000] [--batch 100]
"""

from __future__ import annotations

import argparse
import multiprocessing
import sqlite3
import tempfile
import time
from pathlib import Path


def write_run(url: str, run: str, points: int, batch: int, start: "multiprocessing.synchronize.Event") -> tuple[str, float, list[str]]:
    from scaling_callback.store import SweepStore

    store = SweepStore(url)
    store.register_run(run, sweep="concurrency", config={"process": run})
    writer = store.writer()
    start.wait()
    began = time.perf_counter()
    for first in range(1, points + 1, batch):
        last = min(first + batch - 1, points)
        writer.add_points(run, [{"step": s, "samples": 32 * s, "flops": 1e9 * s, "lr": 1e-3, "lr_sum": 1e-3 * s, "loss": 2.0}
                                for s in range(first, last + 1)])
        if (first // batch) % 10 == 9:
            writer.submit(SweepStore.add_fit, run, {"step": last, "status": "ok", "law": "mpl", "pred_final_loss": 2.0})
            writer.submit(SweepStore.add_decision, run, last, False, reason="keep")
    writer.submit(SweepStore.mark_finished, run, points)
    writer.close(timeout=600)
    return run, time.perf_counter() - began, writer.errors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=8)
    parser.add_argument("--points", type=int, default=20000)
    parser.add_argument("--batch", type=int, default=100)
    args = parser.parse_args()
    path = Path(tempfile.mkdtemp(prefix="bench_store_")) / "sweep.sqlite"
    from scaling_callback.store import SweepStore

    SweepStore(path)  # create the schema once
    context = multiprocessing.get_context("spawn")
    with context.Manager() as manager:
        start = manager.Event()
        with context.Pool(args.processes) as pool:
            jobs = [pool.apply_async(write_run, (str(path), f"run{i}", args.points, args.batch, start)) for i in range(args.processes)]
            time.sleep(1.0)
            began = time.perf_counter()
            start.set()
            results = [job.get(timeout=1800) for job in jobs]
            wall = time.perf_counter() - began
    connection = sqlite3.connect(path)
    counts = {t: connection.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in ("runs", "points", "fits", "decisions")}
    gapless = all(
        connection.execute("SELECT COUNT(*), MIN(step), MAX(step) FROM points JOIN runs ON runs.id = points.run_id WHERE runs.name = ?",
                           (f"run{i}",)).fetchone() == (args.points, 1, args.points)
        for i in range(args.processes))
    finished = connection.execute("SELECT COUNT(*) FROM runs WHERE status = 'finished'").fetchone()[0]
    expected_points = args.processes * args.points
    batches = -(-args.points // args.batch)
    errors = [e for _, _, errs in results for e in errs]
    print(f"{args.processes} processes x {args.points} points in batches of {args.batch}, one SQLite file (WAL)")
    print(f"points stored {counts['points']} / {expected_points} (lost {expected_points - counts['points']}), "
          f"fits {counts['fits']} / {args.processes * (batches // 10)}, decisions {counts['decisions']}, "
          f"runs finished {finished} / {args.processes}, every run gapless: {gapless}, writer errors: {len(errors)}")
    print(f"wall {wall:.2f} s, {expected_points / wall:,.0f} points/s overall; slowest process {max(r[1] for r in results):.2f} s")
    if errors:
        print("first error:", errors[0])


if __name__ == "__main__":
    main()
