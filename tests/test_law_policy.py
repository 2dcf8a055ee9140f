"""The law policy: P(beats the best rival) from the sweep's one forecast, confirmations, the leader, objectives, cost."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from curve_factory import TOTAL, TRUE_MPL, per_step_lrs, synthetic_curve

from scaling_callback.errors import InputError
from scaling_callback.fitting.forecast_types import Forecast
from scaling_callback.fitting.run_final import RunFinal
from scaling_callback.stopping import LawPolicy, RunView, SweepView, make_policy, replay


def view(
    name: str,
    kind: str,
    level: float,
    upto: int | None = None,
    status: str = "finished",
    seed: int = 0,
    compute_per_x: float = 1.0,
) -> RunView:
    """An MPL curve (logged every 40 steps from step 200) with L0 = ``level`` and 0.1 % noise."""
    curve = synthetic_curve(kind, noise=0.001, seed=seed, params=TRUE_MPL | {"L0": level})
    n = len(curve) if upto is None else upto
    return RunView(
        name, curve.steps[1:n].astype(float), curve.loss[1:n], float(TOTAL), status, per_step_lrs(kind), compute_per_x
    )


def at_step(step: int) -> int:
    """Number of logged points up to ``step``."""
    return (step - 200) // 40 + 1


def test_stops_a_worse_run_only_after_k_confirmations():
    best = view("best", "cosine", 3.0)
    first = view("worse", "cosine", 3.3, at_step(1600), "running")
    probe = LawPolicy(warmup_fraction=0.2).decide(first, SweepView((best, first)))
    assert 0.0 < probe.probability < 0.05
    # a threshold with P between threshold² and threshold: this check is worth one confirmation
    policy = LawPolicy(threshold=probe.probability**0.75, warmup_fraction=0.2, interval_fraction=0.05)
    decision = policy.decide(first, SweepView((best, first)))
    assert decision.kind == "unpromising" and not decision.stop
    between = view("worse", "cosine", 3.3, at_step(1720), "running")
    assert policy.decide(between, SweepView((best, between))).kind == "gated"
    second = view("worse", "cosine", 3.3, at_step(1800), "running")
    decision = policy.decide(second, SweepView((best, second)))
    assert decision.stop and decision.kind == "stop" and decision.forecast is not None


def test_one_check_below_threshold_to_the_k_is_worth_k_confirmations():
    """A doubling grid has no second check before the end: P < threshold^k once bounds a false stop as k would."""
    best = view("best", "cosine", 3.0)
    first = view("worse", "cosine", 3.3, at_step(1600), "running")
    probe = LawPolicy(warmup_fraction=0.2).decide(first, SweepView((best, first)))
    policy = LawPolicy(threshold=probe.probability**0.4, warmup_fraction=0.2, confirmations=2)
    decision = policy.decide(first, SweepView((best, first)))
    assert decision.stop and decision.kind == "stop"


def test_never_stops_the_leader():
    rival = view("rival", "cosine", 3.0)
    policy = LawPolicy(warmup_fraction=0.2, interval_fraction=0.05)
    for step in (800, 1000, 1200):
        leader = view("leader", "cosine", 2.8, at_step(step), "running")
        decision = policy.decide(leader, SweepView((rival, leader)))
        assert not decision.stop and decision.kind == "leader"


def test_a_close_rival_is_not_enough_to_stop():
    rival = view("rival", "cosine", 3.0)
    policy = LawPolicy(warmup_fraction=0.1, interval_fraction=0.05, confirmations=1)
    close = view("close", "cosine", 3.002, at_step(1000), "running", seed=1)
    decision = policy.decide(close, SweepView((rival, close)))
    assert decision.kind in ("continue", "leader") and decision.probability > 0.05


def test_a_wsd_run_before_its_decay_is_not_stopped_against_a_cosine_run_it_will_beat():
    """Its stable phase lies above the cosine run; the decay ahead (from the sweep's prior) wins it the sweep."""
    cosine = view("cosine", "cosine", 3.0)
    done_wsd = view("done-wsd", "wsd", 3.05)
    policy = LawPolicy(confirmations=1)
    for step in range(400, 3000, 200):
        running = view("wsd", "wsd", 2.98, at_step(step), "running", seed=2)
        assert policy.decide(running, SweepView((cosine, done_wsd, running))).kind != "unpromising"


def test_a_finished_rival_is_compared_by_its_evaluated_final_when_it_has_one():
    """Its curve ends at 3.62; its held-out final says 4.2: the judged run (forecast 3.82) is then the better one."""
    policy = LawPolicy(warmup_fraction=0.1, interval_fraction=0.05, confirmations=1)
    running = view("running", "cosine", 3.2, at_step(1600), "running")
    curve_only = view("done", "cosine", 3.0)
    assert policy.decide(running, SweepView((curve_only, running))).stop
    evaluated = replace(curve_only, final=RunFinal(4.2, 0.003, "evaluated", "held-out"))
    decision = LawPolicy(warmup_fraction=0.1, interval_fraction=0.05, confirmations=1).decide(
        running, SweepView((evaluated, running))
    )
    assert decision.kind == "leader" and not decision.stop


def test_a_running_rival_binds_by_its_forecast():
    policy = LawPolicy(warmup_fraction=0.1, interval_fraction=0.01, confirmations=1)
    ahead = view("ahead", "cosine", 3.0, at_step(2000), "running")
    assert policy.decide(ahead, SweepView((ahead,))).kind == "continue"  # no rival yet
    behind = view("behind", "cosine", 3.4, at_step(1000), "running")
    decision = policy.decide(behind, SweepView((ahead, behind)))
    assert decision.stop and "ahead forecast final" in decision.reason


def test_frontier_objective_compares_at_equal_planned_compute():
    """A bigger model (twice the compute per step) ends lower but is no rival at this run's budget."""
    big = view("big", "cosine", 2.9, compute_per_x=2.0)
    small = view("small", "cosine", 3.0, at_step(1600), "running")
    final = LawPolicy(warmup_fraction=0.1, confirmations=1).decide(small, SweepView((big, small)))
    frontier = LawPolicy(warmup_fraction=0.1, confirmations=1, objective="frontier").decide(
        small, SweepView((big, small))
    )
    assert final.stop and frontier.kind == "leader"


def test_same_size_and_budget_compares_only_the_runs_of_one_grid_cell():
    """A small run far behind a bigger model is kept (its cell has no better run); its low-LR twin is stopped."""
    big = view("big", "cosine", 2.9, compute_per_x=2.0)
    small = view("small", "cosine", 3.0, at_step(1600), "running")
    policy = LawPolicy(warmup_fraction=0.1, confirmations=1, objective="same_size_and_budget")
    assert policy.decide(small, SweepView((big, small))).kind == "continue"  # no rival in its cell
    done = view("small-high-lr", "cosine", 3.0)
    twin = view("small-low-lr", "cosine", 3.3, at_step(1600), "running")
    decision = policy.decide(twin, SweepView((big, done, twin)))
    assert decision.stop and "small-high-lr" in decision.reason


@pytest.mark.parametrize(
    "levels, stopped",
    [
        ((3.0, 3.2, 3.4), {"L3.2": 1520.0, "L3.4": 1280.0}),
        ((3.0, 3.01, 3.5), {"L3.5": 1040.0}),
    ],
)
def test_exact_stops_of_small_sweeps(levels, stopped):
    runs = [view(f"L{level:g}", "cosine", level, seed=i) for i, level in enumerate(levels)]
    result = replay(runs, LawPolicy(), workers=3)
    assert {s["run"]: s["x"] for s in result.stopped} == stopped and result.best_kept


def test_the_cost_of_a_check_does_not_grow_with_the_sweep():
    """Fits per check stay flat: rivals' forecasts are reused, ended runs join the prior once."""
    per_check = []
    for n_runs in (4, 16):
        runs = [view(f"r{i}", ("cosine", "wsd", "constant")[i % 3], 3.0 + 0.02 * i, seed=i) for i in range(n_runs)]
        policy = LawPolicy()
        result = replay(runs, policy, workers=4)
        checks = sum(1 for _ in range(result.n_decisions))
        per_check.append(policy.forecaster.n_fits / checks)
    assert per_check[1] <= per_check[0] * 1.5


def test_bad_settings_name_the_value():
    with pytest.raises(InputError, match="threshold"):
        LawPolicy(threshold=1.5)
    with pytest.raises(InputError, match="objective"):
        LawPolicy(objective="best")
    with pytest.raises(InputError, match="policy 'bogus'"):
        make_policy("bogus")
    assert make_policy("median", threshold=0.1).name == "median"  # law-only options are dropped for rank rules


def test_forecast_paths_agree_with_the_final_forecast():
    policy = LawPolicy()
    run = view("r", "cosine", 3.0, at_step(1200), "running")
    forecast, _ = policy.forecast(run)
    assert forecast.at(TOTAL) == pytest.approx((forecast.loss, forecast.sd))
    assert np.all(np.diff(forecast.path_loss) <= 1e-9)  # a cosine run's loss only falls


def forecast_of(loss: float, sd: float, shared: float) -> Forecast:
    return Forecast(loss, sd, loss - 1.645 * sd, loss + 1.645 * sd, 0.9, 800.0, float(TOTAL), "mpl", shared=shared)


@pytest.mark.parametrize("shared, kind", [(-0.38, "unpromising"), (0.0, "continue")])
def test_two_runs_awaiting_their_decay_are_compared_through_the_unknown_they_share(shared, kind):
    """Both forecasts are 0.4 wide mostly from the one unknown gain of a decay: their difference is not."""
    worse = view("worse", "wsd", 3.3, at_step(800), "running")
    better = view("better", "wsd", 2.8, at_step(800), "running")
    worse = replace(worse, forecast=forecast_of(3.3, 0.4, shared))
    better = replace(better, forecast=forecast_of(2.8, 0.4, shared))
    decision = LawPolicy(warmup_fraction=0.1, confirmations=1).decide(worse, SweepView((better, worse)))
    assert decision.kind == ("stop" if kind == "unpromising" else kind)
