"""The replay simulator: interleaving, honesty (no peeking), the measures, crossing curves."""

from __future__ import annotations

import numpy as np
import pytest

from curve_factory import TOTAL, TRUE_MPL, per_step_lrs, synthetic_curve
from scaling_callback.errors import InputError
from scaling_callback.stopping.asha import SuccessiveHalvingPolicy
from scaling_callback.stopping.law_policy import LawPolicy
from scaling_callback.stopping import Decision, RunView, StoppingPolicy, SweepView
from scaling_callback.stopping.replay import replay

X = np.arange(10.0, 101.0, 10.0)


def runs(levels: dict[str, float]) -> list[RunView]:
    return [RunView(name, X, level + 1.0 / X, 100.0, "finished") for name, level in levels.items()]


class Spy(StoppingPolicy):
    """Records what every decision could see; stops runs named in ``stop_at`` once they reach that x."""

    name = "spy"

    def __init__(self, stop_at: dict[str, float] | None = None) -> None:
        self.stop_at = stop_at or {}
        self.seen: list[tuple[str, float, dict[str, tuple[str, float]]]] = []
        super().__init__()

    def judge(self, run: RunView, sweep: SweepView) -> Decision:
        self.seen.append((run.name, run.current_x, {r.name: (r.status, r.current_x) for r in sweep.others(run.name)}))
        limit = self.stop_at.get(run.name)
        return Decision(False, "unpromising" if limit is not None and run.current_x >= limit else "continue", None, "scripted")


def test_all_parallel_runs_see_only_points_logged_so_far():
    spy = Spy()
    replay(runs({"a": 1.0, "b": 1.1, "c": 1.2}), spy, workers=3)
    for _, x, others in spy.seen:  # everyone started at time 0, so time = x
        assert all(other_x <= x and status == "running" for status, other_x in others.values())
    assert {name for name, _, _ in spy.seen} == {"a", "b", "c"}


def test_one_worker_runs_the_sweep_in_order_and_never_shows_later_runs():
    spy = Spy()
    replay(runs({"a": 1.0, "b": 1.1, "c": 1.2}), spy, workers=1, order=["c", "a", "b"])
    for name, _, others in spy.seen:
        earlier = {"c": set(), "a": {"c"}, "b": {"c", "a"}}[name]
        assert set(others) == earlier
        assert all(status == "finished" and x == 100.0 for status, x in others.values())


def test_a_stop_frees_the_worker_for_the_next_run():
    spy = Spy(stop_at={"a": 30.0})
    result = replay(runs({"a": 1.0, "b": 1.1}), spy, workers=1)
    b_first = next(others for name, _, others in spy.seen if name == "b")
    assert b_first == {"a": ("stopped", 30.0)}
    assert result.stopped == [{"run": "a", "x": 30.0, "reason": "scripted (1 consecutive checks)"}]


def test_measures_compute_saved_regret_and_best_kept():
    sweep = runs({"best": 1.0, "second": 1.1, "third": 1.2})
    result = replay(sweep, Spy(stop_at={"third": 20.0, "second": 50.0}), workers=3)
    assert result.compute_saved == pytest.approx((80.0 + 50.0) / 300.0)
    assert result.best_kept and result.regret == 0.0 and result.best_run == "best"
    lost = replay(sweep, Spy(stop_at={"best": 40.0}), workers=3)
    assert not lost.best_kept
    assert lost.regret == pytest.approx(0.1) and lost.relative_regret == pytest.approx(0.1 / 1.01)
    record = lost.to_dict()
    assert {"compute_saved", "best_kept", "regret", "stopped"} <= set(record) and "decisions" not in record


def test_keeps_decisions_when_asked():
    result = replay(runs({"a": 1.0, "b": 1.1}), Spy(stop_at={"b": 50.0}), workers=2, keep_decisions=True)
    assert result.decisions and result.decisions[-1]["stop"] and result.n_decisions >= len(result.decisions)


@pytest.mark.parametrize("make, message", [
    (lambda: ([], {}), "no runs"),
    (lambda: (runs({"a": 1.0}) * 2, {}), "unique"),
    (lambda: (runs({"a": 1.0}), {"workers": 0}), "workers"),
    (lambda: (runs({"a": 1.0, "b": 1.0}), {"order": ["a"]}), "order"),
    (lambda: ([RunView("a", X, 1.0 + 0 * X, 200.0, "finished")], {}), "budget"),
])
def test_rejects_bad_input_with_a_clear_message(make, message):
    curves, kwargs = make()
    with pytest.raises(InputError, match=message):
        replay(curves, Spy(), **kwargs)


def crossing_sweep() -> list[RunView]:
    """Constant-LR MPL curves: the early leader ('fast') ends worst, the slowest starter ('slow') ends best."""
    shapes = {"fast": (3.2, 0.3, 0.45), "fast2": (3.25, 0.3, 0.45), "mid": (3.1, 0.4, 0.6), "slow": (2.9, 0.5, 0.8)}
    out = []
    for name, (level, amplitude, alpha) in shapes.items():
        curve = synthetic_curve("constant", noise=0.001, params=TRUE_MPL | {"L0": level, "A": amplitude, "alpha": alpha})
        keep = np.arange(len(curve))[::-1][::4][::-1]  # a point every 160 steps, ending at the budget, keeps it fast
        out.append(RunView(name, curve.steps[keep].astype(float), curve.loss[keep], float(TOTAL), "finished",
                           per_step_lrs("constant")))
    return out


def test_on_crossing_curves_the_law_policy_keeps_the_eventual_best_and_asha_does_not():
    sweep = crossing_sweep()
    early = {r.name: r.loss[2] for r in sweep}
    final = {r.name: r.loss[-1] for r in sweep}
    assert min(early, key=early.get) == "fast" and min(final, key=final.get) == "slow"
    assert max(early, key=early.get) == "slow" and final["fast"] > final["mid"]
    order = ["fast", "fast2", "mid", "slow"]
    law = replay(sweep, LawPolicy(interval_fraction=0.1), workers=2, order=order)
    assert law.best_kept and law.regret == 0.0
    assert "slow" not in {s["run"] for s in law.stopped}
    assert law.compute_saved > 0.0  # it does stop someone
    asha = replay(sweep, SuccessiveHalvingPolicy(min_resource=400.0, reduction_factor=2.0), workers=2, order=order)
    assert not asha.best_kept
