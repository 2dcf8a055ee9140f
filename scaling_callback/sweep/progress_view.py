"""The sweep's live status: runs done/running/pending/stopped, elapsed, ETA, best observed and forecast finals.

The ETA is a regression, refitted at every poll, of the seconds each finished or stopped run took
on the work it did (its planned cost — the runner's token budget × size rank — times the share of
its planned steps it trained): seconds ≈ c0 + c1·work, c0 the per-run start-up (process spawn,
imports, the model build), c1 the seconds per unit of work. The runs still to do (pending ones
whole, running ones their remaining share) are summed under that model and divided among the
workers: a sweep of unequal runs is not "half done" when half its runs are. It is an upper
estimate when the stopping policy will stop some of the pending runs. As runs finish, the
compute-optimal law is refitted whenever its input points changed (no bootstrap) and its exponent
shown; every snapshot is appended to ``frontier_history.jsonl``. Runs that ended are read once
(:func:`~scaling_callback.report.sweep_data.final_points`' cache), so a poll costs ~40 ms at 70 runs.
"""

from __future__ import annotations

import json
import time
import warnings
from pathlib import Path
from typing import TextIO

import numpy as np
import pandas as pd

from scaling_callback.progress import LiveProgress, format_interval, format_value
from scaling_callback.report.sweep_data import SweepState, read_state


class SweepProgress:
    """Reads the sweep's store every poll and renders one status (tqdm on a terminal, plain lines otherwise)."""

    def __init__(
        self,
        name: str,
        url: str,
        out_dir: Path,
        stream: TextIO,
        costs: dict[str, float],
        skipped: list[str] = (),
        workers: int = 1,
    ) -> None:
        self.name, self.url, self.out_dir = name, url, out_dir
        self.costs = dict(costs)
        self.skipped = set(skipped)
        self.total = len(self.costs)
        self.workers = max(1, int(workers))
        self.live = LiveProgress(name, self.total, "runs", stream, caller_eta=True)
        self.finished_seen = -1
        self.frontier_a: float | None = None
        self._ended_rows: dict = {}  # rows of runs that ended, read once (report.sweep_data.final_points)
        self._frontier_input: pd.DataFrame | None = None  # the (N, D) points the frontier was last fitted to

    def update(self, failed: dict[str, str], force: bool = False) -> None:
        state = read_state(self.url, self.name, self._ended_rows)
        if state.n_done != self.finished_seen:
            self.finished_seen = state.n_done
            self._refit_frontier(state)
        self.live.update(state.n_done, self.status_text(state, failed), force=force, eta=self.eta(state))

    def line(self, text: str) -> None:
        self.live.write(text)

    def close(self) -> None:
        self.live.close()

    def eta(self, state: SweepState) -> float | None:
        """Seconds left under the fitted seconds ≈ c0 + c1·work model; None before any run has finished."""
        names = [n for n in state.seconds if n in self.costs and n not in self.skipped]
        if not names:
            return None
        work = np.array([self.costs[n] * state.step_fraction.get(n, 1.0) for n in names])
        seconds = np.array([state.seconds[n] for n in names])
        c0, c1 = per_run_model(work, seconds)
        left = 0.0
        for name, cost in self.costs.items():
            if name in self.skipped or name in state.seconds:
                continue
            share = state.step_fraction.get(name, 0.0)
            left += (c0 + c1 * cost) * (1.0 - share)
        return left / self.workers

    def status_text(self, state: SweepState, failed: dict[str, str]) -> str:
        pending = max(0, self.total - state.n_done - state.n_running - len(failed))
        parts = [
            f"{state.n_running} running, {pending} pending, {state.n_finished} finished, {state.n_stopped} stopped"
        ]
        if failed:
            parts[0] += f", {len(failed)} failed"
        if state.best_observed:
            parts.append(f"best observed final {format_value(state.best_observed[0], 4)}")
        if state.best_forecast:
            loss, low, high, _ = state.best_forecast
            interval = format_interval((low, high), 4) if low is not None and high is not None else ""
            wide = " (interval wider than the observed finals' spread)" if state.best_forecast_is_wide else ""
            parts.append(f"best forecast {format_value(loss, 4)} {interval}".rstrip() + wide)
        if self.frontier_a is not None:
            parts.append(f"frontier a {self.frontier_a:.3f}")
        return " | ".join(parts)

    def _refit_frontier(self, state: SweepState) -> None:
        """Refit the frontier when its input changed: a run that ended without changing any (N, D) cell's best
        final (a losing twin, a stopped run) leaves it as it was. A refit costs ~1 CPU-s beside the training
        workers; refitted at every run's end, the quickstart's progress line spent ~60 of them."""
        from scaling_callback.report.frontier import fit_frontier_points, usable_points

        inputs = usable_points(state.final_points)[["n", "tokens", "loss", "loss_sd"]].astype(float)
        if self._frontier_input is not None and inputs.equals(self._frontier_input):
            return
        self._frontier_input = inputs
        with warnings.catch_warnings():  # a progress snapshot: numerical warnings belong to the report's details
            warnings.simplefilter("ignore")
            snapshot = fit_frontier_points(state.final_points, bootstrap=0)
        if snapshot is None or "a" not in snapshot:
            return
        self.frontier_a = snapshot.get("a")
        keys = ("a", "b", "E", "alpha", "beta", "n_points")
        record = {"time": time.time(), "runs_done": state.n_done} | {k: snapshot.get(k) for k in keys}
        with open(self.out_dir / "frontier_history.jsonl", "a") as handle:
            handle.write(json.dumps(record) + "\n")


def per_run_model(work: np.ndarray, seconds: np.ndarray) -> tuple[float, float]:
    """Least-squares c0, c1 ≥ 0 of seconds ≈ c0 + c1·work; proportional (c0 = 0) until two distinct works are seen."""
    if len(work) >= 2 and np.ptp(work) > 0:
        c1, c0 = np.polyfit(work, seconds, 1)
        if c1 < 0:
            return float(np.mean(seconds)), 0.0
        if c0 >= 0:
            return float(c0), float(c1)
    total = float(np.sum(work))
    return 0.0, float(np.sum(seconds * work) / np.sum(work * work)) if total > 0 else 0.0
