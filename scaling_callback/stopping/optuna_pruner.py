"""An Optuna pruner that applies a stopping policy (the law policy by default) to a study's trials.

Optuna keeps trials and their reported values in its storage, which runs across machines, so a
study can use the law policy for a distributed sweep without the callback's store::

    pruner = PolicyPruner(budget=10_000, lr_schedule=lambda trial: planned_lrs(trial.params))
    study = optuna.create_study(pruner=pruner)

Each trial is a run named ``trial-<number>``: its intermediate values (``trial.report(loss,
step)``) are its curve, ``budget`` its planned last step, ``lr_schedule`` the LR of every step
1..budget of its plan (without it the law policy forecasts with a power law in the step).
COMPLETE trials are the sweep's finished runs, PRUNED ones its stopped runs, RUNNING ones the
others; failed and waiting trials are left out. Intermediate values that are NaN are ignored.
The study must minimise (a loss). Needs the optional ``optuna`` extra.

Every decision is also written into the study's storage, so a study optimised by many processes
on one RDB keeps why each trial was pruned: the trial's system attribute ``DECISION_ATTR`` holds
the latest ``{step, stop, probability, reason, policy}``; with ``keep_history`` ``HISTORY_ATTR``
lists every decision with what the policy saw (each other trial's state and number of values),
which :meth:`PolicyPruner.replay` decides again.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

try:
    import optuna
    from optuna.pruners import BasePruner
    from optuna.study import StudyDirection
    from optuna.trial import FrozenTrial, TrialState
except ImportError as error:  # pragma: no cover - depends on the environment
    raise ImportError("PolicyPruner needs optuna: pip install 'scaling-callback[optuna]'") from error

from scaling_callback.errors import InputError
from scaling_callback.stopping.law_policy import LawPolicy
from scaling_callback.stopping.policy import StoppingPolicy
from scaling_callback.stopping.views import Decision, RunView, SweepView

STATES = {TrialState.COMPLETE: "finished", TrialState.PRUNED: "stopped", TrialState.RUNNING: "running"}
DECISION_ATTR = "scaling_callback.decision"
HISTORY_ATTR = "scaling_callback.history"


class PolicyPruner(BasePruner):
    """``prune(study, trial)`` = ``policy.decide(trial's view, study's view).stop``.

    Args:
        policy: any :class:`StoppingPolicy` (default: a :class:`LawPolicy`).
        budget: the planned last step of every trial, or a function of the trial giving it.
        lr_schedule: a function of the trial giving its planned per-step LRs (length ≥ budget).
        compute_per_step: a function of the trial giving its compute per step (frontier objective).
        keep_history: also store every decision with the sweep it saw (one attribute write per report).

    ``decisions`` maps each trial number to the policy's latest :class:`Decision` about it.
    """

    def __init__(
        self,
        policy: StoppingPolicy | None = None,
        budget: float | Callable[[FrozenTrial], float] | None = None,
        lr_schedule: Callable[[FrozenTrial], np.ndarray] | None = None,
        compute_per_step: Callable[[FrozenTrial], float] | None = None,
        keep_history: bool = False,
    ) -> None:
        if budget is None:
            raise InputError("PolicyPruner needs budget: the planned last step of a trial (a number or a function)")
        if not callable(budget) and not (isinstance(budget, (int, float)) and budget > 0):
            raise InputError(f"budget must be a positive number or a function of the trial, got {budget!r}")
        self.policy = policy if policy is not None else LawPolicy()
        self.budget, self.lr_schedule, self.compute_per_step = budget, lr_schedule, compute_per_step
        self.keep_history = keep_history
        self.decisions: dict[int, Decision] = {}

    def prune(self, study: "optuna.study.Study", trial: FrozenTrial) -> bool:
        if study.direction != StudyDirection.MINIMIZE:
            raise InputError("PolicyPruner compares losses: the study must minimise")
        trials = study.get_trials(deepcopy=False, states=tuple(STATES))
        seen = {t.number: (STATES[t.state], len(t.intermediate_values)) for t in trials if t.number != trial.number}
        views = self._views(trial, trials, seen)
        if views is None:
            return False
        decision = self.policy.decide(*views)
        self.decisions[trial.number] = decision
        self._record(study, trial, decision, seen)
        return decision.stop

    def replay(self, study: "optuna.study.Study", number: int, policy: StoppingPolicy) -> list[tuple[dict, Decision]]:
        """Decide again, with ``policy`` (a fresh one), every stored decision about trial ``number`` of a finished study.

        Each pair is (the stored decision, ``policy``'s decision on the same views); needs ``keep_history``.
        """
        trials = {t.number: t for t in study.get_trials(deepcopy=False)}
        history = trials[number].system_attrs.get(HISTORY_ATTR, [])
        pairs = []
        for stored in history:
            seen = {int(k): (state, int(n)) for k, (state, n) in stored["seen"].items()}
            judged = _truncated(trials[number], stored["n_values"])
            views = self._views(judged, [_truncated(trials[k], n) for k, (_, n) in seen.items()], seen)
            if views is not None:
                pairs.append((stored, policy.decide(*views)))
        return pairs

    def _views(self, trial: FrozenTrial, trials: list[FrozenTrial], seen: dict[int, tuple[str, int]]) -> tuple[RunView, SweepView] | None:
        run = self._view(trial, "running")
        if run is None:
            return None
        others = [self._view(t, seen[t.number][0]) for t in trials if t.number in seen]
        return run, SweepView(tuple(v for v in others if v is not None) + (run,))

    def _record(self, study: "optuna.study.Study", trial: FrozenTrial, decision: Decision, seen: dict) -> None:
        """Keep the decision in the study's storage (visible to every process and to ``optuna`` dashboards)."""
        record = {"step": max(trial.intermediate_values, default=0), "stop": decision.stop,
                  "probability": decision.probability if decision.probability is None or math.isfinite(decision.probability) else None,
                  "reason": decision.reason, "policy": getattr(self.policy, "name", type(self.policy).__name__)}
        storage = study._storage  # the pruner gets a FrozenTrial; writes go through the study's storage (as Optuna's own pruners do)
        storage.set_trial_system_attr(trial._trial_id, DECISION_ATTR, record)
        if self.keep_history:
            history = list(trial.system_attrs.get(HISTORY_ATTR, []))
            history.append(record | {"n_values": len(trial.intermediate_values),
                                     "seen": {str(k): list(v) for k, v in seen.items()}})
            storage.set_trial_system_attr(trial._trial_id, HISTORY_ATTR, history)

    def _view(self, trial: FrozenTrial, status: str) -> RunView | None:
        values = {int(step): float(value) for step, value in trial.intermediate_values.items()
                  if value is not None and math.isfinite(value) and value > 0}
        steps = np.array(sorted(values), dtype=float)
        if steps.size == 0 and status != "running":
            return None
        loss = np.array([values[int(s)] for s in steps])
        budget = float(self.budget(trial) if callable(self.budget) else self.budget)
        if status == "finished" and steps.size:
            budget = max(budget, float(steps[-1]))
        lrs = None if self.lr_schedule is None else np.asarray(self.lr_schedule(trial), dtype=float)
        if lrs is not None and lrs.size < budget:
            raise InputError(f"trial {trial.number}: lr_schedule gives {lrs.size} steps, its budget is {budget:g}")
        per_step = 1.0 if self.compute_per_step is None else float(self.compute_per_step(trial))
        return RunView(f"trial-{trial.number}", steps, loss, budget, status, lrs, per_step)


def _truncated(trial: FrozenTrial, n_values: int) -> FrozenTrial:
    """``trial`` as it was when it had reported its first ``n_values`` intermediate values."""
    steps = sorted(trial.intermediate_values)[:n_values]
    copy = optuna.trial.FrozenTrial(
        number=trial.number, state=trial.state, value=trial.value, datetime_start=trial.datetime_start,
        datetime_complete=trial.datetime_complete, params=trial.params, distributions=trial.distributions,
        user_attrs=trial.user_attrs, system_attrs=trial.system_attrs,
        intermediate_values={s: trial.intermediate_values[s] for s in steps}, trial_id=trial._trial_id, values=None)
    return copy
