"""The naive baseline: one cut at a fixed fraction of each run's budget, keeping only the best there."""

from __future__ import annotations

import numpy as np
import pytest

from scaling_callback.errors import InputError
from scaling_callback.stopping.fixed_budget import FixedBudgetPolicy
from scaling_callback.stopping import RunView, SweepView

X = np.arange(5.0, 201.0, 5.0)


def run(name: str, level: float, upto: int, status: str = "running", budget: float = 200.0) -> RunView:
    x = X[X <= budget][:upto]
    return RunView(name, x, level + 1.0 / x, budget, status)


def test_is_judged_once_at_the_fraction_and_keeps_only_the_best():
    earlier = run("earlier", 1.0, 40, "finished")
    policy = FixedBudgetPolicy(fraction=0.1, keep_top=1)
    too_early = run("r", 1.2, 3)  # x = 15 < 20
    assert "warm-up" in policy.decide(too_early, SweepView((earlier, too_early))).reason
    at_cut = run("r", 1.2, 4)
    decision = policy.decide(at_cut, SweepView((earlier, at_cut)))
    assert decision.stop and "ranks 2 of 2" in decision.reason
    better = run("b", 0.9, 4)
    assert not policy.decide(better, SweepView((earlier, better))).stop
    later = run("b", 0.9, 30)
    assert "survived" in policy.decide(later, SweepView((earlier, later))).reason


def test_keep_top_and_fractions_of_different_budgets():
    short = run("short", 1.0, 40, "finished", budget=100.0)  # judged at x=10 of its own budget
    policy = FixedBudgetPolicy(fraction=0.1, keep_top=2)
    second = run("second", 1.05, 4)
    assert not policy.decide(second, SweepView((short, second))).stop
    third_view = run("third", 1.2, 4)
    assert policy.decide(third_view, SweepView((short, run("second", 1.05, 6), third_view))).stop


def test_the_first_run_always_continues():
    alone = run("alone", 5.0, 4)
    assert not FixedBudgetPolicy().decide(alone, SweepView((alone,))).stop


@pytest.mark.parametrize("kwargs", [{"fraction": 0.0}, {"fraction": 1.0}, {"keep_top": 0}])
def test_rejects_bad_settings_by_name(kwargs):
    with pytest.raises(InputError, match=next(iter(kwargs))):
        FixedBudgetPolicy(**kwargs)


def test_state_round_trip_remembers_judged_runs():
    policy = FixedBudgetPolicy(fraction=0.1)
    first = run("r", 1.0, 4)
    policy.decide(first, SweepView((first,)))
    restored = FixedBudgetPolicy(fraction=0.1)
    restored.load_state_dict(policy.state_dict())
    later = run("r", 1.0, 6)
    assert "survived" in restored.decide(later, SweepView((run("x", 0.1, 40, "finished"), later))).reason
