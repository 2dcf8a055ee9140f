"""Replay recorded curves as a sweep would run them, under a stopping policy, and measure it.

The sweep runs on ``workers`` parallel slots: runs start in ``order``; a slot that frees (a run
finished or was stopped) starts the next run. Every run consumes x at the same rate, so the
point at x of a run started at time s is logged at time s + x. Points are delivered in time
order, and at each one the policy decides about that run seeing only what exists at that moment:
the run's own points so far and, for every started run, its points logged until then — never
later points, never runs not yet started. That is the honesty a replay needs; a policy that
peeked would look better than it could be.

Measures (docs/reference.md §4): ``compute_saved`` = fraction of the full sweep's x not spent (a stopped
run spent x up to its stop point); ``best_kept`` = the run with the best final loss (its last
logged loss) finished; ``regret`` = best final loss of the runs that finished − best final loss
of all runs (``relative_regret`` divides by the latter).
"""

from __future__ import annotations

import heapq
import math
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

import numpy as np

from scaling_callback.errors import InputError
from scaling_callback.stopping.policy import StoppingPolicy
from scaling_callback.stopping.views import Decision, RunView, SweepView

DEFAULT_WORKERS = 4


@dataclass
class ReplayResult:
    """What one policy did to one recorded sweep."""

    policy: str
    compute_saved: float
    best_kept: bool
    regret: float
    relative_regret: float
    stopped: list[dict[str, Any]]  # {"run", "x", "reason"} in the order the stops happened
    best_run: str
    best_final: float
    spent: float
    total: float
    n_decisions: int
    seconds: float
    decisions: list[dict[str, Any]] = field(default_factory=list, repr=False)

    def to_dict(self, with_decisions: bool = False) -> dict[str, Any]:
        record = asdict(self)
        if not with_decisions:
            record.pop("decisions")
        return record


def replay(runs: Sequence[RunView], policy: StoppingPolicy, workers: int = DEFAULT_WORKERS,
           order: Sequence[str] | None = None, keep_decisions: bool = False) -> ReplayResult:
    """Replay finished ``runs`` under ``policy`` (which is reset first); see the module docstring."""
    runs = list(runs)
    _check(runs, workers)
    by_name = {r.name: i for i, r in enumerate(runs)}
    if order is None:
        queue = deque(range(len(runs)))
    else:
        unknown = [n for n in order if n not in by_name]
        if unknown or len(set(order)) != len(runs):
            raise InputError(f"order must list every run once; unknown or missing: {unknown or sorted(set(by_name) - set(order))}")
        queue = deque(by_name[n] for n in order)
    policy.reset()
    started = time.perf_counter()
    sim = _Simulation(runs)
    for _ in range(min(workers, len(runs))):
        sim.launch(queue.popleft(), 0.0)
    decisions: list[dict[str, Any]] = []
    n_decisions = 0
    while sim.events:
        now, _, i, k = heapq.heappop(sim.events)
        sim.visible[i] = k + 1
        if k == runs[i].x.size - 1:
            sim.status[i], sim.spent[i] = "finished", float(runs[i].x[-1])
        else:
            decision = policy.decide(sim.view(i), sim.sweep())
            n_decisions += 1
            if keep_decisions and (decision.probability is not None or decision.stop):
                decisions.append(_decision_row(runs[i].name, float(runs[i].x[k]), decision))
            if not decision.stop:
                sim.schedule(i, k + 1)
                continue
            sim.status[i], sim.spent[i] = "stopped", float(runs[i].x[k])
            sim.stops.append({"run": runs[i].name, "x": float(runs[i].x[k]), "reason": decision.reason})
        if queue:
            sim.launch(queue.popleft(), now)
    return _measure(policy.name, runs, sim, n_decisions, time.perf_counter() - started, decisions)


class _Simulation:
    """Event queue and state of the replayed sweep."""

    def __init__(self, runs: list[RunView]) -> None:
        self.runs = runs
        self.visible = [0] * len(runs)
        self.status = ["pending"] * len(runs)
        self.start = [0.0] * len(runs)
        self.spent = [0.0] * len(runs)
        self.stops: list[dict[str, Any]] = []
        self.events: list[tuple[float, int, int, int]] = []
        self._sequence = 0
        self._views: dict[int, tuple[tuple, RunView]] = {}

    def launch(self, i: int, now: float) -> None:
        self.status[i], self.start[i] = "running", now
        self.schedule(i, 0)

    def schedule(self, i: int, k: int) -> None:
        self._sequence += 1
        heapq.heappush(self.events, (self.start[i] + float(self.runs[i].x[k]), self._sequence, i, k))

    def view(self, i: int) -> RunView:
        key = (i, self.visible[i], self.status[i])
        if self._views.get(i, (None, None))[0] != key:  # a run's view changes only when it logs or ends
            run, n = self.runs[i], self.visible[i]
            self._views[i] = (key, RunView(run.name, run.x[:n], run.loss[:n], run.budget, self.status[i], run.lrs,
                                           run.compute_per_x, None, run.step_per_x))
        return self._views[i][1]

    def sweep(self) -> SweepView:
        return SweepView(tuple(self.view(i) for i, s in enumerate(self.status) if s != "pending"))


def _measure(name: str, runs: list[RunView], sim: _Simulation, n_decisions: int, seconds: float,
             decisions: list[dict[str, Any]]) -> ReplayResult:
    finals = np.array([float(r.loss[-1]) for r in runs])
    best = int(np.argmin(finals))
    finished = [i for i, s in enumerate(sim.status) if s == "finished"]
    best_surviving = float(finals[finished].min()) if finished else math.inf
    total = float(sum(r.budget for r in runs))
    spent = float(sum(sim.spent))
    regret = best_surviving - float(finals[best])
    return ReplayResult(
        policy=name, compute_saved=1.0 - spent / total, best_kept=sim.status[best] == "finished", regret=regret,
        relative_regret=regret / float(finals[best]), stopped=sim.stops, best_run=runs[best].name,
        best_final=float(finals[best]), spent=spent, total=total, n_decisions=n_decisions, seconds=seconds,
        decisions=decisions,
    )


def _decision_row(run: str, x: float, decision: Decision) -> dict[str, Any]:
    return {"run": run, "x": x, "stop": decision.stop, "probability": decision.probability, "reason": decision.reason}


def _check(runs: list[RunView], workers: int) -> None:
    if not runs:
        raise InputError("nothing to replay: no runs")
    if int(workers) != workers or workers < 1:
        raise InputError(f"workers must be a positive integer, got {workers!r}")
    names = [r.name for r in runs]
    if len(set(names)) != len(names):
        raise InputError(f"run names must be unique; repeated: {sorted({n for n in names if names.count(n) > 1})}")
    for run in runs:
        if run.x.size == 0:
            raise InputError(f"run {run.name!r} has no points")
        if not math.isclose(float(run.x[-1]), run.budget, rel_tol=1e-9):
            raise InputError(f"run {run.name!r}: a recorded run ends at its budget (last x {run.x[-1]:g}, budget {run.budget:g})")
