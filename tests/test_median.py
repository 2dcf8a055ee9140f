"""The median rule: Optuna's MedianPruner semantics on views, and the shared gating of the protocol."""

from __future__ import annotations

import numpy as np
import pytest

from scaling_callback.errors import InputError
from scaling_callback.stopping.median import MedianPolicy
from scaling_callback.stopping import RunView, SweepView

X = np.arange(10.0, 101.0, 10.0)


def curve(name: str, level: float, status: str = "finished", upto: int | None = None) -> RunView:
    """Loss level + 1/x, logged every 10 up to a budget of 100."""
    n = X.size if upto is None else upto
    return RunView(name, X[:n], level + 1.0 / X[:n], 100.0, status)


def test_stops_a_run_whose_best_loss_is_above_the_finished_median():
    finished = [curve(f"f{i}", level) for i, level in enumerate([1.0, 1.1, 1.2])]
    worse, better = curve("worse", 1.15, "running", upto=4), curve("better", 1.05, "running", upto=4)
    policy = MedianPolicy(n_startup_runs=3)
    decision = policy.decide(worse, SweepView(tuple(finished) + (worse,)))
    assert decision.stop and "median" in decision.reason and decision.probability is None
    assert not policy.decide(better, SweepView(tuple(finished) + (better,))).stop


def test_uses_the_best_value_so_far_and_interpolates_finished_runs_at_x():
    finished = [RunView("f", np.array([0.0, 100.0]), np.array([2.0, 1.0]), 100.0, "finished")]
    # median of the finished run at x=50 is 1.5 (linear); the run's best so far is 1.4 although its last is 1.6
    run = RunView("r", np.array([10.0, 30.0, 50.0]), np.array([1.9, 1.4, 1.6]), 100.0, "running")
    policy = MedianPolicy(n_startup_runs=1)
    assert not policy.decide(run, SweepView((finished[0], run))).stop


def test_startup_warmup_and_interval_gate_the_rule():
    finished = [curve("f0", 1.0), curve("f1", 1.0)]
    run = curve("r", 2.0, "running", upto=2)
    sweep = SweepView(tuple(finished) + (run,))
    assert "startup" in MedianPolicy(n_startup_runs=3).decide(run, sweep).reason
    assert "warm-up" in MedianPolicy(n_startup_runs=2, n_warmup_steps=50).decide(run, sweep).reason
    assert "warm-up" in MedianPolicy(n_startup_runs=2, warmup_fraction=0.5).decide(run, sweep).reason
    policy = MedianPolicy(n_startup_runs=2, interval_steps=30, confirmations=2)
    first = policy.decide(run, sweep)
    assert not first.stop and "confirmation 1 of 2" in first.reason
    later = curve("r", 2.0, "running", upto=3)  # only 10 later: between checks
    assert "between checks" in policy.decide(later, SweepView(tuple(finished) + (later,))).reason
    last = curve("r", 2.0, "running", upto=5)
    assert policy.decide(last, SweepView(tuple(finished) + (last,))).stop


def test_needs_finished_runs_that_reach_x_and_ignores_running_ones():
    short = RunView("short", X[:2], 1.0 + 1.0 / X[:2], 100.0, "finished")
    running = curve("other", 0.5, "running", upto=8)
    run = curve("r", 2.0, "running", upto=5)
    decision = MedianPolicy(n_startup_runs=0).decide(run, SweepView((short, running, run)))
    assert not decision.stop and "0 finished runs reach" in decision.reason


def test_nan_losses_are_ignored():
    finished = [curve("f", 1.0)]
    loss = 2.0 + 1.0 / X[:4]
    loss[1] = np.nan
    run = RunView("r", X[:4], loss, 100.0, "running")
    assert MedianPolicy(n_startup_runs=1).decide(run, SweepView((finished[0], run))).stop


def test_no_stop_at_the_planned_end_or_for_runs_not_running():
    finished = [curve("f", 1.0)]
    policy = MedianPolicy(n_startup_runs=1)
    done = curve("r", 2.0, "running")
    assert "planned end" in policy.decide(done, SweepView((finished[0], done))).reason
    assert "finished" in policy.decide(finished[0], SweepView((finished[0],))).reason


@pytest.mark.parametrize("kwargs", [{"n_startup_runs": -1}, {"confirmations": 0}, {"warmup_fraction": 1.0},
                                    {"interval_steps": -1}, {"n_min_runs": 0}])
def test_rejects_bad_settings_by_name(kwargs):
    with pytest.raises(InputError, match=next(iter(kwargs))):
        MedianPolicy(**kwargs)


def test_state_round_trip_keeps_streaks():
    finished = [curve("f", 1.0)]
    run = curve("r", 2.0, "running", upto=3)
    policy = MedianPolicy(n_startup_runs=1, confirmations=2)
    policy.decide(run, SweepView((finished[0], run)))
    restored = MedianPolicy(n_startup_runs=1, confirmations=2)
    restored.load_state_dict(policy.state_dict())
    later = curve("r", 2.0, "running", upto=4)
    assert restored.decide(later, SweepView((finished[0], later))).stop


def test_store_views_give_running_rivals_curves(tmp_path):
    from scaling_callback.store import SweepStore

    store = SweepStore(tmp_path / "sweep.sqlite")
    for name, level, upto, status in (("f", 1.0, 10, "finished"), ("r", 2.0, 4, "running"), ("other", 0.5, 6, "running")):
        store.register_run(name, sweep="s", max_steps=100)
        store.add_points(name, [{"step": int(x), "loss": level + 1.0 / x} for x in X[:upto]])
        if status == "finished":
            store.mark_finished(name, 100)
    from scaling_callback.callback.store_views import sweep_from_store

    views = {v.name: v for v in sweep_from_store(store, "s")}
    decision = MedianPolicy(n_startup_runs=1).decide(views["r"], SweepView(tuple(views.values())))
    assert decision.stop and "1 finished runs at x=40" in decision.reason
    store.close()
