"""The stopping-policy protocol and the gating every policy shares.

A policy answers one question, Optuna-style (``BasePruner.prune(study, trial)``): *given this
run's curve so far and what the sweep knows, stop the run now?* — ``decide(run, sweep)``. The
base class does what every policy shares: it waits for ``n_startup_runs`` finished runs, skips
the warm-up and checks only every ``interval_steps``, and turns a policy's per-check judgement
into a stop only after ``confirmations`` consecutive unpromising judgements (one noisy point never
stops a run). Subclasses implement :meth:`StoppingPolicy.judge`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import replace
from typing import Any

from scaling_callback.errors import InputError
from scaling_callback.stopping.views import Decision, RunView, SweepView


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

    # ------------------------------------------------------------------ protocol
    def decide(self, run: RunView, sweep: SweepView) -> Decision:
        """Stop ``run`` now? Uses only ``run``'s points so far and what ``sweep`` shows."""
        if run.status != "running":
            return Decision(False, "gated", None, f"run is {run.status}")
        x = run.current_x
        if sweep.n_finished < self.n_startup_runs:
            return Decision(False, "gated", None, f"startup: {sweep.n_finished} of {self.n_startup_runs} runs finished")
        warmup = max(self.n_warmup_steps, self.warmup_fraction * run.budget)
        if run.x.size == 0 or x < warmup:
            return Decision(False, "gated", None, f"warm-up: x={x:g} < {warmup:g}")
        if x >= run.budget:
            return Decision(False, "gated", None, "at its planned end")
        last = self._last_check.get(run.name)
        interval = max(self.interval_steps, self.interval_fraction * run.budget)
        if last is not None and x - last < interval:
            return Decision(False, "gated", None, f"between checks: next at x={last + interval:g}")
        self._last_check[run.name] = x
        verdict = self.judge(run, sweep)
        unpromising = verdict.kind == "unpromising"
        streak = self._streak.get(run.name, 0) + self.weight(verdict) if unpromising else 0
        self._streak[run.name] = streak
        if unpromising and streak >= self.confirmations:
            return replace(verdict, stop=True, kind="stop", reason=f"{verdict.reason} ({streak} consecutive checks)")
        if unpromising:
            return replace(verdict, reason=f"{verdict.reason}; confirmation {streak} of {self.confirmations}")
        return verdict

    def weight(self, verdict: Decision) -> int:
        """How many confirmations one unpromising check is worth (one; a probabilistic rule may say more)."""
        return 1

    @abstractmethod
    def judge(self, run: RunView, sweep: SweepView) -> Decision:
        """The rule itself, at one check that passed the gating: kind ``unpromising`` or another, never ``stop``."""

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
