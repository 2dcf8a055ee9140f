"""8 processes writing to one sweep store at once, SQLite file and PostgreSQL side by side: rows lost, errors, speed.

Each process registers a run and writes ``--points`` per-step points through the store's
BatchedWriter in batches of ``--batch`` (what a callback's flush sends), plus one fit and one
decision row every 10 batches and a status at the end, as training runs do. The parent then counts
rows in every table and checks that every run's steps are exactly 1..points. The same load runs
against a SQLite file (WAL) and, when a PostgreSQL URL is given (``--pg-url`` or the tests'
``SCALING_CALLBACK_TEST_PG_URL``), against a fresh schema on that server, one after the other.

    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_store_concurrency.py [--processes 8] [--points 100000] [--batch 100] \
        [--pg-url postgresql+psycopg://postgres@127.0.0.1:5432/db]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import uuid
import tempfile
import time
from pathlib import Path


def write_run(url: str, run: str, points: int, batch: int, start: "multiprocessing.synchronize.Event") -> tuple[str, float, list[str]]:
    from scaling_callback.store import SweepStore
from scaling_callback.store.writer import BatchedWriter

    store = SweepStore(url)
    store.register_run(run, sweep="concurrency", config={"process": run})
    writer = BatchedWriter(store)
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


def run_load(url: str, args: argparse.Namespace) -> dict:
    """The load against one store; what was stored, lost and how fast."""
    from sqlalchemy import create_engine, text

    from scaling_callback.store import SweepStore

    SweepStore(url).close()  # create the schema once
    context = multiprocessing.get_context("spawn")
    with context.Manager() as manager:
        start = manager.Event()
        with context.Pool(args.processes) as pool:
            jobs = [pool.apply_async(write_run, (url, f"run{i}", args.points, args.batch, start)) for i in range(args.processes)]
            time.sleep(1.0)
            began = time.perf_counter()
            start.set()
            results = [job.get(timeout=3600) for job in jobs]
            wall = time.perf_counter() - began
    engine = create_engine(url)
    with engine.connect() as conn:
        counts = {t: conn.execute(text(f"SELECT COUNT(*) FROM {t}")).scalar() for t in ("runs", "points", "fits", "decisions")}
        gapless = all(
            tuple(conn.execute(text("SELECT COUNT(*), MIN(step), MAX(step) FROM points JOIN runs ON runs.id = points.run_id "
                                    "WHERE runs.name = :name"), {"name": f"run{i}"}).one()) == (args.points, 1, args.points)
            for i in range(args.processes))
        finished = conn.execute(text("SELECT COUNT(*) FROM runs WHERE status = 'finished'")).scalar()
    engine.dispose()
    expected = args.processes * args.points
    errors = [e for _, _, errs in results for e in errs]
    return {"points": counts["points"], "lost": expected - counts["points"], "fits": counts["fits"],
            "decisions": counts["decisions"], "finished": finished, "gapless": gapless, "errors": errors,
            "wall": wall, "slowest": max(r[1] for r in results), "rate": expected / wall}


def postgres_schema(base: str) -> tuple[str, "callable"]:
    """A URL whose tables live in a fresh schema on ``base``'s database, and a function dropping it."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    schema = f"bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(base)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))

    def drop() -> None:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()

    url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(hide_password=False)
    return url, drop


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=8)
    parser.add_argument("--points", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--pg-url", default=os.environ.get("SCALING_CALLBACK_TEST_PG_URL"),
                        help="PostgreSQL database to test in a fresh schema (default $SCALING_CALLBACK_TEST_PG_URL)")
    args = parser.parse_args()
    results = {"SQLite file (WAL)": run_load(f"sqlite:///{Path(tempfile.mkdtemp(prefix='bench_store_')) / 'sweep.sqlite'}", args)}
    if args.pg_url:
        url, drop = postgres_schema(args.pg_url)
        try:
            results["PostgreSQL"] = run_load(url, args)
        finally:
            drop()
    else:
        print("no PostgreSQL URL (--pg-url or SCALING_CALLBACK_TEST_PG_URL): SQLite only")
    expected = args.processes * args.points
    batches = -(-args.points // args.batch)
    print(f"{args.processes} processes x {args.points} points in batches of {args.batch} "
          f"(+1 fit and 1 decision per 10 batches), {os.cpu_count()} CPU cores")
    print(f"{'store':<20}{'points stored':>16}{'lost':>6}{'errors':>8}{'fits':>8}{'finished':>10}{'gapless':>9}"
          f"{'wall s':>9}{'points/s':>11}{'slowest s':>11}")
    for name, r in results.items():
        print(f"{name:<20}{r['points']:>16}{r['lost']:>6}{len(r['errors']):>8}{r['fits']:>8}{r['finished']:>10}"
              f"{str(r['gapless']):>9}{r['wall']:>9.1f}{r['rate']:>11,.0f}{r['slowest']:>11.1f}")
    if len(results) == 2:
        sqlite, postgres = results.values()
        print(f"PostgreSQL / SQLite points/s: {postgres['rate'] / sqlite['rate']:.2f}")
    print(f"expected per store: points {expected}, fits {args.processes * (batches // 10)}, finished {args.processes}")
    for name, r in results.items():
        if r["errors"]:
            print(f"{name} first error:", r["errors"][0])


if __name__ == "__main__":
    main()
