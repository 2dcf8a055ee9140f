"""Run a sweep: its runs in K worker processes sharing one store, with live progress and an online frontier.

Runs are started cheapest first (token budget × position of the size in the grid, which lists
sizes small to large), so that finished small runs give the stopping policy its
startup runs and the drop-term prior early. The status display is
:class:`~scaling_callback.sweep.progress_view.SweepProgress`.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import sys
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from scaling_callback.errors import InputError
from scaling_callback.sweep.config import SweepConfig
from scaling_callback.sweep.progress_view import SweepProgress
from scaling_callback.sweep.runs import RunSpec, build_run, expand_grid
from scaling_callback.sweep.train_run import train_run

DONE_STATUSES = ("finished", "stopped")
POLL_SECONDS = 2.0


@dataclass
class SweepOutcome:
    """What a sweep did: runs trained now, runs skipped as already done, runs that failed."""

    trained: list[str]
    skipped: list[str]
    failed: dict[str, str]


def store_url(config: SweepConfig, out_dir: Path) -> str:
    """The configured store, or an SQLite file in the output folder."""
    return config.store or f"sqlite:///{(out_dir / 'sweep.sqlite').resolve()}"


def plan_runs(config: SweepConfig, raw_config: dict, out_dir: Path, resume: bool) -> tuple[list[RunSpec], list[str]]:
    """The runs still to train (cheapest first) and the names of those already done."""
    from scaling_callback.store import SweepStore

    runs = expand_grid(config)
    build_run(config, runs[0])  # the factory and its arguments work before anything is written
    costs = run_costs(config)
    cost = {r.name: (costs[r.name], r.seed) for r in runs}
    if config.store and "://" not in config.store and Path(config.store).exists():
        from scaling_callback.files import check_sqlite_file

        check_sqlite_file(config.store)  # before the output folder is made
    if config.store:  # a configured store must open (driver, host, schema) before anything is written
        store = SweepStore(store_url(config, out_dir))
        out_dir.mkdir(parents=True, exist_ok=True)
    else:
        out_dir.mkdir(parents=True, exist_ok=True)
        store = SweepStore(store_url(config, out_dir))
    try:
        existing = store.runs(config.name) if store.get_sweep(config.name) else None
        if existing is not None and len(existing) and not resume:
            raise InputError(f"{out_dir}: sweep {config.name!r} already has runs in its store; rerun with --resume")
        store.create_sweep(config.name, raw_config) if store.get_sweep(config.name) is None else None
        done = (
            set(existing.loc[existing["status"].isin(DONE_STATUSES), "name"])
            if existing is not None and len(existing)
            else set()
        )
    finally:
        store.close()
    order = run_order(config, cost)
    todo = sorted((r for r in runs if r.name not in done), key=lambda r: order[r.name])
    return todo, sorted(done)


def run_order(config: SweepConfig, cost: dict[str, float]) -> dict[str, tuple]:
    """Where each run goes in the queue: cheapest first, so that early runs inform the stopping of later ones.

    With ``stopping.objective: same_size_and_budget`` a run competes only with the other runs of its
    (size, budget) cell, so the queue first holds every cell's first configuration (by cost), then
    every cell's second: the alternatives of a cell start once its first has (mostly) finished, and
    are judged against its measured final rather than against a forecast made as early as their own.
    """
    if config.stopping.objective != "same_size_and_budget":
        return {name: (value,) for name, value in cost.items()}
    seen: dict[str, int] = {}
    order = {}
    for run in expand_grid(config):
        cell = json.dumps([run.size, run.tokens], sort_keys=True)
        order[run.name] = (seen.get(cell, 0), cost[run.name])
        seen[cell] = seen.get(cell, 0) + 1
    return order


def run_costs(config: SweepConfig) -> dict[str, float]:
    """Relative cost of each run of the grid: token budget × (1 + position of its size in the grid, small first)."""
    position = {json.dumps(size, sort_keys=True): i for i, size in enumerate(config.grid.sizes)}
    return {r.name: r.tokens * (1 + position[json.dumps(r.size, sort_keys=True)]) for r in expand_grid(config)}


def run_sweep(
    config: SweepConfig,
    raw_config: dict,
    out_dir: Path,
    workers: int | None = None,
    resume: bool = False,
    stream: TextIO | None = None,
) -> SweepOutcome:
    """Train every run of the grid not yet done; returns what happened."""
    out_dir = Path(out_dir)
    stream = stream or sys.stderr  # progress; the outcome is printed on stdout by the CLI
    todo, skipped = plan_runs(config, raw_config, out_dir, resume)
    url = store_url(config, out_dir)
    n_workers = max(1, min(workers or config.workers, len(todo) or 1))
    progress = SweepProgress(config.name, url, out_dir, stream, run_costs(config), skipped, n_workers)
    failed: dict[str, str] = {}
    trained: list[str] = []
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=n_workers, mp_context=context) as pool:
        pending: dict[Future, RunSpec] = {
            pool.submit(train_run, raw_config, run, str(out_dir), url, resume): run for run in todo
        }
        try:
            while pending:
                finished, _ = wait(pending, timeout=POLL_SECONDS, return_when=FIRST_COMPLETED)
                for future in finished:
                    run = pending.pop(future)
                    error = future.exception()
                    if error is None:
                        trained.append(run.name)
                    else:
                        failed[run.name] = f"{type(error).__name__}: {error}".splitlines()[0]
                progress.update(failed)
        except KeyboardInterrupt:
            for future in pending:
                future.cancel()
            _interrupt_workers(pool)
            pool.shutdown(wait=False, cancel_futures=True)
            progress.line("interrupted: rerun with --resume to continue from the last checkpoints")
            progress.close()
            raise
    progress.update(failed, force=True)
    progress.close()
    return SweepOutcome(trained, skipped, failed)


def _interrupt_workers(pool: ProcessPoolExecutor) -> None:
    """Pass Ctrl-C on to the workers (a terminal sends it to them too; ``kill -INT`` does not).

    Each worker's Trainer then stops at once, marks its run ``interrupted`` and flushes its points, so
    ``--resume`` continues it from its last checkpoint instead of waiting for it to end.
    """
    for process in list(getattr(pool, "_processes", {}).values()):  # no public accessor for the worker processes
        try:
            if process.is_alive():
                os.kill(process.pid, signal.SIGINT)
        except (OSError, ValueError):
            pass  # already gone
