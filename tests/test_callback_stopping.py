"""The callback's early-stopping seam in a real Trainer: stops recorded with the fit they used, policies judged off the training process."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from callback_models import Regressor, SlowSteps, loader, trainer

from scaling_callback import ScalingLawCallback, SweepStore
from scaling_callback.stopping import Decision, StoppingPolicy


class StopAfter(StoppingPolicy):
    """A stand-in early-stopping policy: stop once a fit has seen ``step`` steps; its state survives resumes."""

    def __init__(self, step: int) -> None:
        self.step = step
        self.calls: list = []
        super().__init__()

    def state_dict(self) -> dict:
        return super().state_dict() | {"calls": len(self.calls)}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.restored = state

    def judge(self, run, sweep) -> Decision:
        self.calls.append(run)
        stop = run.current_x >= self.step
        return Decision(
            False,
            "unpromising" if stop else "continue",
            0.1 if stop else 0.9,
            "predicted final loss worse than the best run" if stop else "",
        )


def test_early_stopping_policy_stops_training_and_is_recorded(tmp_path, store_url):
    policy = StopAfter(20)
    callback = ScalingLawCallback(
        store=store_url,
        run_name="stopped",
        fit_worker="thread",
        fit_every_n_steps=10,
        max_fit_fraction=None,
        early_stopping=policy,
    )
    run = trainer(tmp_path, callback, max_steps=400)
    run.fit(Regressor(400), loader(n=8 * 400))
    assert run.global_step < 400
    store = SweepStore(store_url)
    row = store.get_run("stopped")
    assert row["status"] == "stopped" and row["stop_reason"].startswith("predicted final loss worse than the best run")
    assert row["stop_step"] == run.global_step
    decisions = store.decisions("stopped")
    assert decisions.stop.tolist()[-1] and decisions.policy.iloc[0] == "StopAfter"
    assert policy.calls[0].name == "stopped" and policy.calls[0].forecast is not None  # judged on the fit's forecast
    fits = store.fits("stopped")
    assert set(decisions.fit_id.dropna().astype(int)) <= set(fits.id)  # each decision names the fit it used
    from scaling_callback.report.sweep_data import stored_forecast

    stop_fit = int(decisions[decisions.stop].fit_id.iloc[-1])
    assert stored_forecast(store, "stopped")["id"] == stop_fit  # the report shows the forecast the stop used
    assert stored_forecast(store, "stopped")["forecast"] == store.fit(stop_fit)["forecast"]
    state = callback.state_dict()
    assert state["policy"]["calls"] == len(policy.calls)
    fresh = StopAfter(20)
    ScalingLawCallback(early_stopping=fresh).load_state_dict(state)
    assert fresh.restored["calls"] == len(policy.calls)


def test_synchronous_stopping_stops_on_the_check_that_decided_it(tmp_path, store_url):
    callback = ScalingLawCallback(
        store=store_url,
        run_name="sync",
        fit_worker="thread",
        fit_every_n_steps=10,
        early_stopping=StopAfter(25),
        synchronous_stopping=True,  # with the default 2 % budget, which alone admits no fit in a run this short
    )
    run = trainer(tmp_path, callback, max_steps=400)
    run.fit(Regressor(400), loader(n=8 * 400))
    assert run.global_step == 30  # the first check at or past step 25, not whenever its fit returned
    store = SweepStore(store_url)
    decisions = store.decisions("sync")
    assert decisions.step.tolist() == [20, 30] and decisions.stop.tolist() == [False, True]  # one per check
    assert store.get_run("sync")["stop_step"] == 30
    store.close()


@pytest.mark.slow
def test_a_process_worker_judges_off_the_training_process_and_its_policy_state_is_checkpointed(tmp_path, monkeypatch):
    import os
    import sys

    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(Path(__file__).parent), *sys.path]))
    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    from stop_policies import StopAtStep

    policy = StopAtStep(30)
    callback = ScalingLawCallback(
        store=tmp_path / "s.sqlite",
        run_name="judged",
        fit_worker="process",
        fit_every_n_steps=10,
        max_fit_fraction=None,
        early_stopping=policy,
    )
    run = trainer(tmp_path, callback, max_steps=2000, extra_callbacks=[SlowSteps(0.005)])  # ~10 s: the worker starts
    run.fit(Regressor(2000), loader(n=8 * 2000))
    assert run.global_step < 2000
    store = SweepStore(tmp_path / "s.sqlite")
    assert store.get_run("judged")["status"] == "stopped"
    decisions = store.decisions("judged")
    judges = {re.search(r"process (\d+)", reason).group(1) for reason in decisions.reason}
    assert judges and str(os.getpid()) not in judges  # the policy ran in the worker, not on the training thread
    assert callback.state_dict()["policy"]["calls"] == len(decisions)  # the worker's state came back
    store.close()
