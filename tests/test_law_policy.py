"""The law policy: forecasts at the planned end, borrowed drops, confirmations, the leader, objectives, the store seam."""

from __future__ import annotations

import math

import numpy as np
import pytest

from curve_factory import TOTAL, TRUE_MPL, per_step_lrs, synthetic_curve
from scaling_callback.errors import InputError
from scaling_callback.stopping.law_policy import LawPolicy
from scaling_callback.stopping.policy import RunView, SweepView


def view(name: str, kind: str, level: float, upto: int | None = None, status: str = "finished",
         seed: int = 0, compute_per_x: float = 1.0) -> RunView:
    """An MPL curve (logged every 40 steps from step 200) with L0 = ``level`` and 0.1 % noise."""
    curve = synthetic_curve(kind, noise=0.001, seed=seed, params=TRUE_MPL | {"L0": level})
    n = len(curve) if upto is None else upto
    return RunView(name, curve.steps[:n].astype(float), curve.loss[:n], float(TOTAL), status,
                   per_step_lrs(kind), compute_per_x)


def at_step(step: int) -> int:
    """Number of logged points up to ``step``."""
    return (step - 200) // 40 + 1


def test_stops_a_clearly_worse_run_only_after_k_confirmations():
    best = view("best", "cosine", 3.0)
    policy = LawPolicy(warmup_fraction=0.2, interval_fraction=0.05)
    first = view("worse", "cosine", 3.3, at_step(800), "running")
    decision = policy.decide(first, SweepView((best, first)))
    assert not decision.stop and "confirmation 1 of 2" in decision.reason and decision.probability < 0.05
    between = view("worse", "cosine", 3.3, at_step(920), "running")
    assert "between checks" in policy.decide(between, SweepView((best, between))).reason
    second = view("worse", "cosine", 3.3, at_step(1000), "running")
    decision = policy.decide(second, SweepView((best, second)))
    assert decision.stop and "2 consecutive checks" in decision.reason and "best observed final" in decision.reason


def test_never_stops_the_leader():
    rival = view("rival", "cosine", 3.0)
    policy = LawPolicy(warmup_fraction=0.2, interval_fraction=0.05)
    for step in (800, 1000, 1200):
        leader = view("leader", "cosine", 2.8, at_step(step), "running")
        decision = policy.decide(leader, SweepView((rival, leader)))
        assert not decision.stop and decision.reason.startswith("leader")


def test_wsd_before_its_decay_borrows_the_drop_of_a_finished_wsd_run():
    wsd_lrs = per_step_lrs("wsd")
    running = view("best", "wsd", 3.0, at_step(2000), "running")
    assert np.all(np.diff(wsd_lrs[200:2000]) == 0)  # no decay seen yet
    policy = LawPolicy()
    alone = policy.decide(running, SweepView((view("flat", "constant", 3.1), running)))
    assert not alone.stop and "cannot judge" in alone.reason
    finished = view("done", "wsd", 3.1)
    members = policy.drop_members(SweepView((finished,)))
    forecast, _ = policy.forecast(running, members)
    true_final = view("truth", "wsd", 3.0).loss[-1]
    assert not forecast.upper_bound and "borrowed from done" in forecast.source
    assert abs(math.log(forecast.loss / true_final)) < 0.01
    assert abs(math.log(forecast.loss / true_final)) < 2 * forecast.sd_log
    decision = LawPolicy().decide(running, SweepView((finished, running)))
    assert not decision.stop and decision.reason.startswith("leader")


def test_a_worse_wsd_run_is_stopped_before_its_decay():
    finished = view("done", "wsd", 3.0)
    policy = LawPolicy(warmup_fraction=0.25, interval_fraction=0.05)
    decisions = [policy.decide(v, SweepView((finished, v)))
                 for v in (view("worse", "wsd", 3.4, at_step(s), "running") for s in (1000, 1200))]
    assert [d.stop for d in decisions] == [False, True]
    assert "borrowed from done" in decisions[-1].reason


def test_frontier_objective_compares_at_equal_planned_compute():
    big = view("big", "cosine", 3.0, compute_per_x=4.0)  # 4x the compute per step
    policies = {"final": LawPolicy(warmup_fraction=0.3, interval_fraction=0.05),
                "frontier": LawPolicy(objective="frontier", warmup_fraction=0.3, interval_fraction=0.05)}
    outcomes = {}
    for name, policy in policies.items():
        for step in (1200, 1400):
            small = view("small", "cosine", 3.3, at_step(step), "running")
            outcomes[name] = policy.decide(small, SweepView((big, small)))
    assert outcomes["final"].stop
    assert not outcomes["frontier"].stop and outcomes["frontier"].reason.startswith("leader")
    assert "observed at x=1000" in outcomes["frontier"].reason  # big spent small's budget at step 1000


def test_without_lrs_a_saturating_power_law_in_x_is_used():
    x = np.arange(50.0, 2001.0, 50.0)
    noise = np.exp(0.001 * np.random.default_rng(1).standard_normal(x.size))
    best = RunView("best", x, (2.0 + 3.0 * x**-0.5) * noise, 2000.0, "finished")
    policy = LawPolicy(warmup_fraction=0.3, interval_fraction=0.05)
    stops = []
    for n in (12, 14):
        worse = RunView("worse", x[:n], (2.3 + 3.0 * x[:n] ** -0.5) * noise[:n], 2000.0, "running")
        decision = policy.decide(worse, SweepView((best, worse)))
        stops.append(decision.stop)
    assert stops == [False, True] and "power law" in decision.reason


def test_gating_decides_before_any_fit(monkeypatch):
    policy = LawPolicy(n_startup_runs=2, warmup_fraction=0.1)
    monkeypatch.setattr(policy, "forecast", lambda *a: pytest.fail("gating must not fit"))
    run = view("r", "cosine", 3.0, at_step(1000), "running")
    assert "startup: 1 of 2" in policy.decide(run, SweepView((view("f", "cosine", 3.0), run))).reason
    early = view("r", "cosine", 3.0, at_step(240), "running")
    assert "warm-up" in LawPolicy(warmup_fraction=0.1).decide(early, SweepView((early,))).reason


def test_a_run_with_too_few_points_gets_no_forecast():
    run = view("r", "cosine", 3.0, 4, "running")
    decision = LawPolicy(warmup_fraction=0.0).decide(run, SweepView((view("f", "cosine", 3.0), run)))
    assert not decision.stop and "no forecast" in decision.reason


@pytest.mark.parametrize("kwargs, name", [({"threshold": 0.0}, "threshold"), ({"threshold": 1.0}, "threshold"),
                                          ({"objective": "speed"}, "objective"), ({"confirmations": 0}, "confirmations")])
def test_rejects_bad_settings_by_name(kwargs, name):
    with pytest.raises(InputError, match=name):
        LawPolicy(**kwargs)


def test_should_stop_reads_views_from_the_sweep_store(tmp_path):
    from scaling_callback.store import SweepStore

    store = SweepStore(tmp_path / "sweep.sqlite")
    lrs = per_step_lrs("cosine")
    for name, level, status in (("done", 3.0, "finished"), ("worse", 3.3, "running")):
        store.register_run(name, sweep="s", max_steps=TOTAL)
        store.set_planned_schedule(name, lrs)
        full = view(name, "cosine", level)
        upto = len(full.x) if status == "finished" else at_step(1000)
        store.add_points(name, [{"step": int(s), "lr": float(lrs[int(s) - 1]), "loss": float(v)}
                                for s, v in zip(full.x[:upto], full.loss[:upto])])
        if status == "finished":
            store.mark_finished(name, TOTAL)
    policy = LawPolicy(warmup_fraction=0.2, interval_fraction=0.05)
    first = policy.should_stop(store=store, run_name="worse", sweep="s", step=1000, fit={})
    full = view("worse", "cosine", 3.3)
    store.add_points("worse", [{"step": int(s), "lr": float(lrs[int(s) - 1]), "loss": float(v)}
                               for s, v in zip(full.x[at_step(1000):at_step(1200)], full.loss[at_step(1000):at_step(1200)])])
    second = policy.should_stop(store=store, run_name="worse", sweep="s", step=1200, fit={})
    assert not first.stop and second.stop and "done observed final" in second.reason
    from scaling_callback.store.drop_members import load_drop_members

    stored = load_drop_members(store, "s")
    assert set(stored) == {"done"} and stored["done"]["run"] == "done"  # fitted once, kept for the sweep's other runs
    fresh = LawPolicy(warmup_fraction=0.2, interval_fraction=0.05)
    fresh.mpl.drop_member = lambda run: pytest.fail(f"refitted the stored drop member of {run.name}")
    assert fresh.should_stop(store=store, run_name="worse", sweep="s", step=1200, fit={}).probability < 0.05
    store.close()


def test_should_stop_without_a_store_is_a_clear_error():
    with pytest.raises(InputError, match="store"):
        LawPolicy().should_stop(store=None, run_name="r", sweep=None, step=1, fit={})


def test_a_rival_already_below_the_forecast_binds_at_its_loss_now():
    """A rival's final is at most its loss now while its LR never rises again, however uncertain its forecast."""
    from scaling_callback.stopping.forecast import Forecast

    vague = Forecast(2.9, 0.5, "given")  # a forecast too uncertain to stop anything against
    curve = view("rival", "constant", 3.0, at_step(3000), "running")
    rival = RunView("rival", curve.x, curve.loss, float(TOTAL), "running", curve.lrs, 1.0, vague)
    policy = LawPolicy(warmup_fraction=0.2, interval_fraction=0.05)
    decisions = [policy.decide(v, SweepView((rival, v))) for v in (view("worse", "constant", 3.4, at_step(s), "running")
                                                                 for s in (1000, 1200))]
    assert [d.stop for d in decisions] == [False, True] and "observed now" in decisions[-1].reason
    rising = per_step_lrs("constant").copy()
    rising[3500:] *= 2.0  # a warm restart ahead: its loss now bounds nothing
    restart = RunView("rival", rival.x, rival.loss, float(TOTAL), "running", rising, 1.0, vague)
    policy.reset()
    later = [policy.decide(v, SweepView((restart, v))) for v in (view("worse", "constant", 3.4, at_step(s), "running")
                                                               for s in (1000, 1200))]
    assert not any(d.stop for d in later) and "observed now" not in later[-1].reason


def test_runs_on_alike_schedules_before_their_decay_are_compared_by_their_no_decay_bounds():
    policy = LawPolicy(warmup_fraction=0.25, interval_fraction=0.05)
    leader = view("leader", "wsd", 3.0, at_step(1400), "running")
    assert "cannot judge" in policy.decide(leader, SweepView((leader,))).reason  # its forecast: an upper bound
    decisions = [policy.decide(v, SweepView((leader, v))) for v in (view("worse", "wsd", 3.4, at_step(s), "running")
                                                                  for s in (1000, 1200))]
    assert [d.stop for d in decisions] == [False, True] and "alike schedules" in decisions[-1].reason
    close = LawPolicy(warmup_fraction=0.25, interval_fraction=0.05)
    close.decide(leader, SweepView((leader,)))
    near = [close.decide(v, SweepView((leader, v))) for v in (view("near", "wsd", 3.02, at_step(s), "running")
                                                             for s in (1000, 1200))]
    assert not any(d.stop for d in near) and "cannot judge" in near[-1].reason


def test_a_running_run_past_most_of_its_decay_lends_its_drop_until_it_finishes():
    policy = LawPolicy()
    decayed = view("decayed", "cosine", 3.0, at_step(3200), "running")  # cosine: 3/4 of its decay behind it at ~2/3
    early = view("early", "cosine", 3.0, at_step(1200), "running")
    assert policy.mpl.decay_seen(decayed) >= 0.75 > policy.mpl.decay_seen(early)
    members = policy.drop_members(SweepView((decayed, early)))
    assert [m.run for m in members] == ["decayed"] and members[0].profile[-1] > 0
    assert policy._unsaved == set()  # not final: never written to the store
    finished = policy.drop_members(SweepView((view("decayed", "cosine", 3.0), early)))
    assert [m.run for m in finished] == ["decayed"] and policy._unsaved == {"decayed"}


def test_the_gain_a_decay_ahead_may_buy_is_bounded_by_drops_seen_at_a_peak_lr_at_least_as_high():
    from scaling_callback.stopping.forecast import DropMember, Forecast
    from scaling_callback.stopping.law_policy import GAIN_SAFETY

    lrs = per_step_lrs("wsd")
    bound = Forecast(3.2, 0.01, "bound", upper_bound=True, decay_ahead=0.9)
    run = view("r", "wsd", 3.0, at_step(1000), "running")
    member = DropMember.from_lrs("seen", np.linspace(0.0, 0.02, 64), lrs)  # a 2 % drop for a 0.9 decay
    policy = LawPolicy(max_decay_gain=0.15)
    gain, source = policy._gain_bound(run, bound, [member])
    assert gain == pytest.approx(GAIN_SAFETY * 0.02 / 0.9 * 0.9) and "seen" in source
    lower = DropMember.from_lrs("low", np.linspace(0.0, 0.02, 64), lrs * 0.3)  # a lower peak LR tells no bound
    assert policy._gain_bound(run, bound, [lower]) == (pytest.approx(0.15 * 0.9), "max_decay_gain")


def test_without_a_drop_to_borrow_the_bound_holds_where_a_decay_costs_more_than_it_buys():
    """With no drop term (B = 0) a cosine run ends above its constant-LR twin: less LR summed, nothing bought."""
    no_drop = TRUE_MPL | {"B": 0.0}
    truth = synthetic_curve("cosine", params=no_drop).loss[-1]
    assert truth > synthetic_curve("constant", params=no_drop).loss[-1]
    curve = synthetic_curve("cosine", noise=0.001, params=no_drop)
    n = at_step(1300)  # a fifth of its decay seen: its own drop term is not trusted yet
    running = RunView("r", curve.steps[:n].astype(float), curve.loss[:n], float(TOTAL), "running", per_step_lrs("cosine"))
    forecast, _ = LawPolicy().forecast(running, [])
    assert forecast.upper_bound and math.log(truth / forecast.loss) < 2 * forecast.sd_log
    assert 0.5 < forecast.decay_ahead <= 0.9  # cosine to 0.1 × peak: most of its 0.9 decrease still ahead


def test_a_bound_midway_through_a_decay_keeps_the_drop_already_realised():
    """Two thirds into a WSD decay with nothing to borrow: the bound starts from the loss now, not the pre-decay law."""
    curve = synthetic_curve("wsd", noise=0.001)
    n = at_step(3760)
    running = RunView("r", curve.steps[:n].astype(float), curve.loss[:n], float(TOTAL), "running", per_step_lrs("wsd"))
    forecast, _ = LawPolicy().forecast(running, [])
    loss_now, truth = float(np.median(curve.loss[n - 5:n])), float(curve.loss[-1])
    assert forecast.upper_bound and forecast.loss <= loss_now * 1.002
    assert math.log(truth / forecast.loss) < 2 * forecast.sd_log  # still a bound
    assert forecast.loss * (1 - 0.15 * forecast.decay_ahead) < truth  # the gain still ahead covers the rest
