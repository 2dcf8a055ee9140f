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


class PolicyPruner(BasePruner):
    """``prune(study, trial)`` = ``policy.decide(trial's view, study's view).stop``.

    Args:
        policy: any :class:`StoppingPolicy` (default: a :class:`LawPolicy`).
        budget: the planned last step of every trial, or a function of the trial giving it.
        lr_schedule: a function of the trial giving its planned per-step LRs (length ≥ budget).
        compute_per_step: a function of the trial giving its compute per step (frontier objective).

    ``decisions`` maps each trial number to the policy's latest :class:`Decision` about it.
    """

    def __init__(
        self,
        policy: StoppingPolicy | None = None,
        budget: float | Callable[[FrozenTrial], float] | None = None,
        lr_schedule: Callable[[FrozenTrial], np.ndarray] | None = None,
        compute_per_step: Callable[[FrozenTrial], float] | None = None,
    ) -> None:
        if budget is None:
            raise InputError("PolicyPruner needs budget: the planned last step of a trial (a number or a function)")
        if not callable(budget) and not (isinstance(budget, (int, float)) and budget > 0):
            raise InputError(f"budget must be a positive number or a function of the trial, got {budget!r}")
        self.policy = policy if policy is not None else LawPolicy()
        self.budget, self.lr_schedule, self.compute_per_step = budget, lr_schedule, compute_per_step
        self.decisions: dict[int, Decision] = {}

    def prune(self, study: "optuna.study.Study", trial: FrozenTrial) -> bool:
        if study.direction != StudyDirection.MINIMIZE:
            raise InputError("PolicyPruner compares losses: the study must minimise")
        run = self._view(trial, "running")
        if run is None:
            return False
        others = [self._view(t, STATES[t.state]) for t in study.get_trials(deepcopy=False, states=tuple(STATES))
                  if t.number != trial.number]
        decision = self.policy.decide(run, SweepView(tuple(v for v in others if v is not None) + (run,)))
        self.decisions[trial.number] = decision
        return decision.stop

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
