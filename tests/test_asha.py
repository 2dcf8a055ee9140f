"""Asynchronous successive halving: rungs, promotion of the top 1/η, Optuna's first-runs rule."""

from __future__ import annotations

import numpy as np
import pytest

from scaling_callback.errors import InputError
from scaling_callback.stopping.asha import SuccessiveHalvingPolicy
from scaling_callback.stopping import RunView, SweepView

X = np.arange(1.0, 101.0)


def run(name: str, level: float, upto: int, status: str = "running") -> RunView:
    return RunView(name, X[:upto], level + 1.0 / X[:upto], 100.0, status)


def test_rungs_follow_min_resource_times_eta_powers():
    policy = SuccessiveHalvingPolicy(min_resource=2.0, reduction_factor=3.0)
    np.testing.assert_allclose(policy.rungs(run("r", 1.0, 1)), [2.0, 6.0, 18.0, 54.0])
    auto = SuccessiveHalvingPolicy(reduction_factor=4.0)
    np.testing.assert_allclose(auto.rungs(run("r", 1.0, 1)), [1.0, 4.0, 16.0, 64.0])  # 1 % of the budget
    skipping = SuccessiveHalvingPolicy(min_resource=2.0, reduction_factor=3.0, min_early_stopping_rate=1)
    np.testing.assert_allclose(skipping.rungs(run("r", 1.0, 1)), [6.0, 18.0, 54.0])


def test_only_the_top_fraction_at_a_rung_continues():
    others = tuple(run(f"o{i}", level, 10, "finished" if i % 2 else "stopped") for i, level in enumerate([1.0, 1.1, 1.2, 1.3, 1.4, 1.5, 1.6]))
    policy = SuccessiveHalvingPolicy(min_resource=5.0, reduction_factor=4.0)
    best = run("best", 0.9, 5)
    assert not policy.decide(best, SweepView(others + (best,))).stop  # top 2 of 8 at rung 5
    second = run("second", 1.05, 5)
    assert not policy.decide(second, SweepView(others + (second,))).stop
    third = run("third", 1.15, 5)
    decision = policy.decide(third, SweepView(others + (third,)))
    assert decision.stop and "rung x=5" in decision.reason


def test_the_first_runs_of_a_rung_continue_only_if_best_so_far():
    policy = SuccessiveHalvingPolicy(min_resource=5.0, reduction_factor=4.0)
    leader = run("a", 1.0, 10)
    worse = run("b", 1.2, 5)
    assert policy.decide(worse, SweepView((leader, worse))).stop
    better = run("c", 0.8, 5)
    assert not policy.decide(better, SweepView((leader, better))).stop


def test_each_rung_is_judged_once_and_sparse_logs_check_every_rung_crossed():
    policy = SuccessiveHalvingPolicy(min_resource=2.0, reduction_factor=2.0)
    leader = run("a", 1.0, 100, "finished")
    sparse = RunView("s", np.array([1.0, 9.0]), np.array([5.0, 1.01]), 100.0, "running")
    # crossing rungs 2, 4 and 8 at once: at rung 2 its value (at x=9, first point past it) still wins
    assert not policy.decide(sparse, SweepView((leader, sparse))).stop
    again = RunView("s", np.array([1.0, 9.0, 9.5]), np.array([5.0, 1.01, 1.01]), 100.0, "running")
    assert "between rungs" in policy.decide(again, SweepView((leader, again))).reason


@pytest.mark.parametrize("kwargs", [{"min_resource": 0}, {"min_resource": "never"}, {"reduction_factor": 1.5},
                                    {"min_early_stopping_rate": -1}])
def test_rejects_bad_settings_by_name(kwargs):
    with pytest.raises(InputError, match=next(iter(kwargs))):
        SuccessiveHalvingPolicy(**kwargs)


def test_state_round_trip_remembers_judged_rungs():
    policy = SuccessiveHalvingPolicy(min_resource=2.0, reduction_factor=2.0)
    leader = run("a", 1.0, 100, "finished")
    view = run("r", 0.9, 5)
    policy.decide(view, SweepView((leader, view)))
    restored = SuccessiveHalvingPolicy(min_resource=2.0, reduction_factor=2.0)
    restored.load_state_dict(policy.state_dict())
    again = run("r", 0.9, 6)
    assert "between rungs" in restored.decide(again, SweepView((leader, again))).reason
