"""The sweep's live status: runs done/running/pending/stopped, elapsed, ETA, best observed and forecast finals.

The ETA weights runs by their planned cost (the runner's token budget × size rank), counting a
running run by the share of its planned steps done and a stopped run as done: a sweep of unequal
runs is not "half done" when half its runs are. As runs finish, the compute-optimal law is refitted
(no bootstrap) and its exponent shown; every snapshot is appended to ``frontier_history.jsonl``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TextIO

from scaling_callback.progress import LiveProgress, format_interval, format_value
from scaling_callback.report.sweep_data import SweepState, read_state


class SweepProgress:
    """Reads the sweep's store every poll and renders one status (tqdm on a terminal, plain lines otherwise)."""

    def __init__(self, name: str, url: str, out_dir: Path, stream: TextIO, costs: dict[str, float],
                 skipped: list[str] = ()) -> None:
        self.name, self.url, self.out_dir = name, url, out_dir
        self.costs = dict(costs)
        self.skipped = set(skipped)
        self.total = len(self.costs)
        self.live = LiveProgress(name, self.total, "runs", stream)
        self.finished_seen = -1
        self.frontier_a: float | None = None

    def update(self, failed: dict[str, str], force: bool = False) -> None:
        state = read_state(self.url, self.name)
        if state.n_done != self.finished_seen:
            self.finished_seen = state.n_done
            self._refit_frontier(state)
        self.live.update(state.n_done, self.status_text(state, failed), force=force, fraction=self.fraction(state))

    def line(self, text: str) -> None:
        self.live.write(text)

    def close(self) -> None:
        self.live.close()

    def fraction(self, state: SweepState) -> float:
        """Share of the sweep's planned cost done (runs skipped as already done excluded from both sides)."""
        todo = {name: cost for name, cost in self.costs.items() if name not in self.skipped}
        total = sum(todo.values())
        if total <= 0:
            return 1.0
        return sum(cost * state.step_fraction.get(name, 0.0) for name, cost in todo.items()) / total

    def status_text(self, state: SweepState, failed: dict[str, str]) -> str:
        pending = max(0, self.total - state.n_done - state.n_running - len(failed))
        parts = [f"{state.n_running} running, {pending} pending, {state.n_finished} finished, {state.n_stopped} stopped"]
        if failed:
            parts[0] += f", {len(failed)} failed"
        if state.best_observed:
            parts.append(f"best observed final {format_value(state.best_observed[0], 4)}")
        if state.best_forecast:
            loss, low, high, _ = state.best_forecast
            interval = format_interval((low, high), 4) if low is not None and high is not None else ""
            parts.append(f"best forecast {format_value(loss, 4)} {interval}".rstrip())
        if self.frontier_a is not None:
            parts.append(f"frontier a {self.frontier_a:.3f}")
        return " | ".join(parts)

    def _refit_frontier(self, state: SweepState) -> None:
        from scaling_callback.report.frontier import fit_frontier_points

        snapshot = fit_frontier_points(state.final_points, bootstrap=0)
        if snapshot is None or "a" not in snapshot:
            return
        self.frontier_a = snapshot.get("a")
        keys = ("a", "b", "E", "alpha", "beta", "n_points")
        record = {"time": time.time(), "runs_done": state.n_done} | {k: snapshot.get(k) for k in keys}
        with open(self.out_dir / "frontier_history.jsonl", "a") as handle:
            handle.write(json.dumps(record) + "\n")
