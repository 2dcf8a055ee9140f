"""The stopping-policy protocol: views of a run and its sweep, a decision, and the shared gating.

A policy answers one question, Optuna-style (``BasePruner.prune(study, trial)``): *given this
run's curve so far and what the sweep knows, stop the run now?* — ``decide(run, sweep)``. The
base class does what every policy shares: it waits for ``n_startup_runs`` finished runs, skips
the warm-up and checks only every ``interval_steps``, and turns a policy's per-check verdict
into a stop only after ``confirmations`` consecutive unpromising verdicts (one noisy point never
stops a run; docs/reference.md §4). Subclasses implement :meth:`StoppingPolicy.judge`.

Units: ``x`` is the run's resource (optimizer steps, tokens or samples); ``budget`` is the x of
its planned end; ``compute_per_x`` converts x to compute (FLOPs) for the frontier objective.

The Lightning callback calls :meth:`StoppingPolicy.should_stop` after each online fit (see
:mod:`scaling_callback.callback.stopping`); it builds the views from the sweep store.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from scaling_callback.errors import InputError

if TYPE_CHECKING:
    from scaling_callback.stopping.forecast import DropMember, Forecast

RUN_STATES = ("running", "finished", "stopped")


@dataclass(frozen=True)
class Decision:
    """Stop the run or not, the probability behind it (None for rank rules) and a one-line reason."""

    stop: bool
    probability: float | None
    reason: str


@dataclass(frozen=True)
class Verdict:
    """One check's judgement before confirmation: is the run unpromising, how likely to win, why."""

    unpromising: bool
    probability: float | None
    reason: str


@dataclass(frozen=True)
class RunView:
    """What a policy may know about one run: its curve so far and its plan.

    Args:
        name: unique within the sweep.
        x: resource at each logged point, strictly increasing.
        loss: loss at each point (positive).
        budget: x of the planned end.
        status: ``running``, ``finished`` or ``stopped``.
        lrs: LR of every optimizer step 1..T of the plan (recorded, then planned), when known.
        compute_per_x: compute per unit of x (e.g. 6·N FLOPs per token); 1 compares x itself.
        forecast: a prediction of the final loss already made elsewhere (e.g. the callback's online fit).
        step_of_x: optimizer step of resource x when x is not the step (maps x onto ``lrs``).
    """

    name: str
    x: np.ndarray
    loss: np.ndarray
    budget: float
    status: str = "running"
    lrs: np.ndarray | None = None
    compute_per_x: float = 1.0
    forecast: "Forecast | None" = None
    step_of_x: Callable[[np.ndarray], np.ndarray] | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        x = np.asarray(self.x, dtype=float)
        loss = np.asarray(self.loss, dtype=float)
        if x.ndim != 1 or x.shape != loss.shape:
            raise InputError(f"run {self.name!r}: x and loss must be 1-D arrays of equal length")
        if x.size > 1 and np.any(np.diff(x) <= 0):
            raise InputError(f"run {self.name!r}: x must be strictly increasing")
        if self.status not in RUN_STATES:
            raise InputError(f"run {self.name!r}: status {self.status!r} is not one of {', '.join(RUN_STATES)}")
        if not (math.isfinite(self.budget) and self.budget > 0):
            raise InputError(f"run {self.name!r}: budget must be positive, got {self.budget!r}")
        if not (math.isfinite(self.compute_per_x) and self.compute_per_x > 0):
            raise InputError(f"run {self.name!r}: compute_per_x must be positive, got {self.compute_per_x!r}")
        object.__setattr__(self, "x", x)
        object.__setattr__(self, "loss", loss)
        if self.lrs is not None:
            object.__setattr__(self, "lrs", np.asarray(self.lrs, dtype=float))

    @property
    def current_x(self) -> float:
        """x of the last logged point (0 before the first)."""
        return float(self.x[-1]) if self.x.size else 0.0

    @property
    def planned_compute(self) -> float:
        return self.budget * self.compute_per_x

    def loss_at(self, x: float) -> float:
        """Observed loss at the last point with x' ≤ ``x`` (NaN before the first point)."""
        index = int(np.searchsorted(self.x, x, side="right")) - 1
        return float(self.loss[index]) if index >= 0 else math.nan


@dataclass(frozen=True)
class SweepView:
    """The runs of the sweep a decision may look at (the judged run may be among them).

    ``drop_members``: the finished runs' fitted drop terms when the caller already has them (the
    store keeps them); None lets a law policy fit the finished runs' curves itself, except those in
    ``stored_members`` (kept in the store by an earlier judgement, as ``DropMember.to_dict`` values).
    """

    runs: tuple[RunView, ...]
    drop_members: "tuple[DropMember, ...] | None" = None
    stored_members: "dict[str, dict | None] | None" = None  # drop members the store kept, by run (None: has none)

    def others(self, name: str) -> list[RunView]:
        return [r for r in self.runs if r.name != name]

    @property
    def n_finished(self) -> int:
        return sum(r.status == "finished" for r in self.runs)


class StoppingPolicy(ABC):
    """Base of every policy: gating (startup, warm-up, interval) and confirmation; ``judge`` is the rule.

    Args:
        n_startup_runs: no run is stopped before this many runs of the sweep have finished.
        n_warmup_steps: no check before x reaches this value.
        warmup_fraction: ... nor before this fraction of the run's budget.
        interval_steps: at least this much x between two checks of a run.
        interval_fraction: ... and at least this fraction of the run's budget.
        confirmations: consecutive unpromising checks needed to stop (k).
    """

    name = "policy"
    needs_sweep_curves = True  # whether judge() reads other runs' curves (else forecasts and finals suffice)

    def __init__(
        self,
        n_startup_runs: int = 0,
        n_warmup_steps: float = 0.0,
        warmup_fraction: float = 0.0,
        interval_steps: float = 1.0,
        interval_fraction: float = 0.0,
        confirmations: int = 1,
    ) -> None:
        if int(n_startup_runs) != n_startup_runs or n_startup_runs < 0:
            raise InputError(f"n_startup_runs must be a non-negative integer, got {n_startup_runs!r}")
        if not n_warmup_steps >= 0:
            raise InputError(f"n_warmup_steps must be >= 0, got {n_warmup_steps!r}")
        if not interval_steps >= 0:
            raise InputError(f"interval_steps must be >= 0, got {interval_steps!r}")
        for label, value in (("warmup_fraction", warmup_fraction), ("interval_fraction", interval_fraction)):
            if not 0.0 <= value < 1.0:
                raise InputError(f"{label} must lie in [0, 1), got {value!r}")
        if int(confirmations) != confirmations or confirmations < 1:
            raise InputError(f"confirmations must be a positive integer, got {confirmations!r}")
        self.n_startup_runs = int(n_startup_runs)
        self.n_warmup_steps = float(n_warmup_steps)
        self.warmup_fraction = float(warmup_fraction)
        self.interval_steps = float(interval_steps)
        self.interval_fraction = float(interval_fraction)
        self.confirmations = int(confirmations)
        self.reset()

    def reset(self) -> None:
        """Forget every run's confirmation streak and last check (a new sweep)."""
        self._streak: dict[str, int] = {}
        self._last_check: dict[str, float] = {}
        self._store_cache: dict[str, RunView] = {}  # finished runs read from a store (they no longer change)

    # ------------------------------------------------------------------ protocol
    def decide(self, run: RunView, sweep: SweepView) -> Decision:
        """Stop ``run`` now? Uses only ``run``'s points so far and what ``sweep`` shows."""
        if run.status != "running":
            return Decision(False, None, f"run is {run.status}")
        x = run.current_x
        if sweep.n_finished < self.n_startup_runs:
            return Decision(False, None, f"startup: {sweep.n_finished} of {self.n_startup_runs} runs finished")
        warmup = max(self.n_warmup_steps, self.warmup_fraction * run.budget)
        if run.x.size == 0 or x < warmup:
            return Decision(False, None, f"warm-up: x={x:g} < {warmup:g}")
        if x >= run.budget:
            return Decision(False, None, "at its planned end")
        last = self._last_check.get(run.name)
        interval = max(self.interval_steps, self.interval_fraction * run.budget)
        if last is not None and x - last < interval:
            return Decision(False, None, f"between checks: next at x={last + interval:g}")
        self._last_check[run.name] = x
        verdict = self.judge(run, sweep)
        streak = self._streak.get(run.name, 0) + 1 if verdict.unpromising else 0
        self._streak[run.name] = streak
        if verdict.unpromising and streak >= self.confirmations:
            return Decision(True, verdict.probability, f"{verdict.reason} ({streak} consecutive checks)")
        if verdict.unpromising:
            return Decision(False, verdict.probability, f"{verdict.reason}; confirmation {streak} of {self.confirmations}")
        return Decision(False, verdict.probability, verdict.reason)

    @abstractmethod
    def judge(self, run: RunView, sweep: SweepView) -> Verdict:
        """The rule itself, at one check that passed the gating."""

    def should_stop(self, **context: Any) -> Decision:
        """The callback's entry point (``store``, ``run_name``, ``sweep``, ``step``, ``fit``): views from the store."""
        from scaling_callback.stopping.store_views import views_from_store

        run, sweep = views_from_store(needs_curves=self.needs_sweep_curves, cache=self._store_cache, **context)
        return self.decide(run, sweep)

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        """Confirmation streaks and last checks (plain Python), to survive a resume."""
        return {"streak": dict(self._streak), "last_check": dict(self._last_check)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._streak = {str(k): int(v) for k, v in state.get("streak", {}).items()}
        self._last_check = {str(k): float(v) for k, v in state.get("last_check", {}).items()}

    def describe(self) -> dict[str, Any]:
        """The policy's settings, for the record."""
        return {"policy": self.name} | {k: v for k, v in vars(self).items() if not k.startswith("_")}
