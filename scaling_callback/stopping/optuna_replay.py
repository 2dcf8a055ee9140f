"""Optuna's own pruners as stopping policies, so a replay compares the law policy with the real thing.

:class:`OptunaPrunerPolicy` drives a real ``optuna`` pruner through the calls a study makes —
``study.ask()`` when a run starts, ``trial.report(loss, step)`` at each of its points,
``trial.should_prune()`` at each check, ``study.tell()`` when it finishes (its final loss) or is
stopped (PRUNED) — inside the same interleaved replay as every other policy. Needs ``optuna``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import optuna
from optuna.trial import TrialState

from scaling_callback.stopping.policy import StoppingPolicy
from scaling_callback.stopping.views import Decision, RunView, SweepView

PRUNERS: dict[str, Callable[[], optuna.pruners.BasePruner]] = {
    "optuna-median": lambda: optuna.pruners.MedianPruner(),
    "optuna-percentile": lambda: optuna.pruners.PercentilePruner(25.0),
    "optuna-sha": lambda: optuna.pruners.SuccessiveHalvingPruner(),
    "optuna-hyperband": lambda: optuna.pruners.HyperbandPruner(),
    "optuna-patient": lambda: optuna.pruners.PatientPruner(optuna.pruners.MedianPruner(), patience=3),
    "optuna-wilcoxon": lambda: optuna.pruners.WilcoxonPruner(p_threshold=0.1),
}


class OptunaPrunerPolicy(StoppingPolicy):
    """A real Optuna pruner behind the stopping-policy protocol (checks at every point, no confirmations).

    Args:
        name: a key of :data:`PRUNERS` (its default settings), or any label with ``make_pruner``.
        make_pruner: builds the pruner (a fresh one per replay).
    """

    def __init__(self, name: str, make_pruner: Callable[[], Any] | None = None) -> None:
        self.name = name
        self.make_pruner = make_pruner or PRUNERS[name]
        super().__init__(n_startup_runs=0, interval_steps=0.0, confirmations=1)

    def reset(self) -> None:
        super().reset()
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        # a fixed study name: HyperbandPruner assigns brackets by hashing it with the trial number, and
        # Optuna's default name is a fresh UUID, which made two replays of one sweep disagree
        self._study = optuna.create_study(
            study_name=f"replay-{self.name}",
            direction="minimize",
            pruner=self.make_pruner(),
            sampler=optuna.samplers.RandomSampler(seed=0),
        )
        self._trials: dict[str, Any] = {}
        self._reported: dict[str, int] = {}
        self._told: set[str] = set()

    def judge(self, run: RunView, sweep: SweepView) -> Decision:
        for other in sweep.runs:  # runs that ended since the last check are told to the study
            if other.status != "running" and other.name in self._trials and other.name not in self._told:
                self._report(other)
                state = TrialState.COMPLETE if other.status == "finished" else TrialState.PRUNED
                value = float(other.loss[-1]) if state == TrialState.COMPLETE else None
                self._study.tell(self._trials[other.name], value, state=state)
                self._told.add(other.name)
        if run.name not in self._trials:
            self._trials[run.name] = self._study.ask()
        self._report(run)
        if self._trials[run.name].should_prune():
            return Decision(
                False, "unpromising", None, f"{type(self._study.pruner).__name__} prunes at x={run.current_x:g}"
            )
        return Decision(False, "continue", None, "")

    def _report(self, run: RunView) -> None:
        if run.name not in self._trials:
            return
        trial, done = self._trials[run.name], self._reported.get(run.name, 0)
        for x, loss in zip(run.x[done:], run.loss[done:]):
            if math.isfinite(loss):
                trial.report(float(loss), int(round(x)))
        self._reported[run.name] = run.x.size
