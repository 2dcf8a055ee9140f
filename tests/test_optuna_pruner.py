"""The Optuna adapter: a real in-memory study whose trials report synthetic loss curves."""

from __future__ import annotations

import numpy as np
import pytest

optuna = pytest.importorskip("optuna")

from curve_factory import TOTAL, TRUE_MPL, per_step_lrs, synthetic_curve  # noqa: E402

from scaling_callback.errors import InputError  # noqa: E402
from scaling_callback.stopping.law_policy import LawPolicy  # noqa: E402
from scaling_callback.stopping.median import MedianPolicy  # noqa: E402
from scaling_callback.stopping.optuna_pruner import PolicyPruner  # noqa: E402

LEVELS = [3.0, 3.3, 3.5, 3.1, 3.4]
optuna.logging.set_verbosity(optuna.logging.WARNING)


def objective(trial: optuna.Trial) -> float:
    level = trial.suggest_float("level", 2.5, 4.0)
    curve = synthetic_curve("constant", noise=0.001, seed=trial.number, params=TRUE_MPL | {"L0": level})
    for step, loss in zip(curve.steps[::4], curve.loss[::4]):  # a report every 160 steps
        trial.report(float(loss), int(step))
        if trial.should_prune():
            raise optuna.TrialPruned()
    return float(curve.loss[-1])


def study_with(pruner: PolicyPruner, direction: str = "minimize") -> optuna.Study:
    study = optuna.create_study(direction=direction, pruner=pruner, sampler=optuna.samplers.RandomSampler(seed=0))
    for level in LEVELS:
        study.enqueue_trial({"level": level})
    return study


def test_the_law_policy_prunes_worse_trials_and_keeps_the_best():
    pruner = PolicyPruner(
        LawPolicy(warmup_fraction=0.2, interval_fraction=0.1),
        budget=TOTAL,
        lr_schedule=lambda trial: per_step_lrs("constant"),
    )
    study = study_with(pruner)
    study.optimize(objective, n_trials=len(LEVELS))
    states = {t.params["level"]: t.state for t in study.trials}
    assert states[3.0] == optuna.trial.TrialState.COMPLETE
    pruned = [level for level, state in states.items() if state == optuna.trial.TrialState.PRUNED]
    assert {3.4, 3.5} <= set(pruned)
    assert study.best_params["level"] == 3.0
    last = {t.params["level"]: max(t.intermediate_values) for t in study.trials}
    assert all(last[level] < TOTAL for level in pruned)
    stop = pruner.decisions[next(t.number for t in study.trials if t.params["level"] == 3.5)]
    assert stop.stop and "trial-0" in stop.reason and stop.probability < 0.05


def test_any_policy_of_the_protocol_plugs_in():
    study = study_with(PolicyPruner(MedianPolicy(n_startup_runs=1), budget=lambda trial: TOTAL))
    study.optimize(objective, n_trials=3)
    assert [t.state for t in study.trials][:3] == [
        optuna.trial.TrialState.COMPLETE,
        optuna.trial.TrialState.PRUNED,
        optuna.trial.TrialState.PRUNED,
    ]


def test_a_maximising_study_is_refused():
    study = study_with(PolicyPruner(MedianPolicy(), budget=TOTAL), direction="maximize")
    with pytest.raises(InputError, match="minimise"):
        study.optimize(objective, n_trials=1, catch=())


@pytest.mark.parametrize("budget", [None, 0, "long"])
def test_budget_is_required_and_checked(budget):
    with pytest.raises(InputError, match="budget"):
        PolicyPruner(budget=budget)


def test_a_short_lr_schedule_is_a_clear_error():
    pruner = PolicyPruner(LawPolicy(), budget=TOTAL, lr_schedule=lambda trial: np.ones(10))
    study = study_with(pruner)
    with pytest.raises(InputError, match="lr_schedule gives 10 steps"):
        study.optimize(objective, n_trials=1, catch=())
