"""The callback side of stopping: views of the judged run and its rivals from the store."""

from __future__ import annotations

import numpy as np

from scaling_callback.callback.store_views import (
    compute_per_step,
    judged_view,
    learn_from_store,
    sweep_from_store,
    sweep_view,
)
from scaling_callback.fitting.sweep_forecaster import SweepForecaster
from scaling_callback.store import SweepStore


def _store(tmp_path) -> SweepStore:
    store = SweepStore(tmp_path / "s.sqlite")
    for name, status in (("done", "finished"), ("live", "running")):
        store.register_run(name, sweep="s", max_steps=100)
        store.add_points(name, [{"step": s, "flops": 6.0e6 * s, "loss": 3.0 + 1.0 / s} for s in range(1, 51)])
        store.set_planned_schedule(name, np.full(100, 1e-3))
        if status == "finished":
            store.add_points(name, [{"step": s, "flops": 6.0e6 * s, "loss": 3.0 + 1.0 / s} for s in range(51, 101)])
            store.mark_finished(name, 100)
    return store


def test_the_judged_run_compares_at_its_own_compute_per_step(tmp_path):
    store = _store(tmp_path)
    steps = np.arange(1.0, 51.0)
    per_step = compute_per_step(6.0e6 * steps, steps)  # from the callback's own record, as its fit request carries
    assert per_step == 6.0e6 and compute_per_step(np.empty(0), np.empty(0)) == 1.0  # what the frontier compares at
    run = judged_view("live", steps, 3.0 + 1.0 / steps, np.full(100, 1e-3), None, per_step)
    sweep = sweep_view(run, store, "s")
    assert {v.name: v.status for v in sweep.runs} == {"done": "finished", "live": "running"}
    assert run.planned_compute == 100 * 6.0e6


def test_ended_runs_are_read_once_and_running_ones_fresh(tmp_path):
    store = _store(tmp_path)
    first = {v.name: v for v in sweep_from_store(store, "s")}
    store.add_points("live", [{"step": 51, "flops": 6.0e6 * 51, "loss": 3.01}])
    again = {v.name: v for v in sweep_from_store(store, "s")}
    assert again["done"] is first["done"] and again["live"].x.size == first["live"].x.size + 1


def _sweep_of_ended_runs(tmp_path, n_runs: int = 3) -> SweepStore:
    rng = np.random.default_rng(0)
    store = SweepStore(tmp_path / "lent.sqlite")
    steps = np.arange(1, 201)
    lrs = np.where(steps <= 160, 1e-3, 1e-3 * (200 - steps) / 40 + 1e-5)  # WSD: a decay over the last 20 %
    for i in range(n_runs):
        name = f"run{i}"
        store.register_run(name, sweep="s", max_steps=200)
        store.set_planned_schedule(name, lrs)
        loss = 2.5 + 0.1 * i + 3.0 * np.cumsum(lrs * 1e3) ** -0.4 - 0.05 * np.clip(steps - 160, 0, None) / 40
        store.add_points(
            name,
            [
                {"step": int(s), "flops": 1e6 * s, "loss": float(v)}
                for s, v in zip(steps, loss + 0.003 * rng.standard_normal(steps.size))
            ],
        )
        store.mark_finished(name, 200)
    return store


def test_what_an_ended_run_lends_is_computed_once_and_read_back_by_later_workers(tmp_path):
    store = _sweep_of_ended_runs(tmp_path)
    first = SweepForecaster()
    learn_from_store(store, "s", first)
    assert first.n_fits > 3 and set(store.lent("s")) == {"run0", "run1", "run2"}
    later = SweepForecaster()  # another run's fit worker: a fresh process
    learn_from_store(store, "s", later)
    assert later.n_fits == 0  # read back, nothing refitted
    assert later.pool.calibration() == first.pool.calibration()
    for name, posterior in first.pool.posteriors.items():
        np.testing.assert_allclose(later.pool.posteriors[name].alpha_weights, posterior.alpha_weights)
    assert later.pool.backtests == first.pool.backtests


def test_a_lent_record_of_another_curve_or_other_settings_is_made_again(tmp_path):
    store = _sweep_of_ended_runs(tmp_path, n_runs=2)
    learn_from_store(store, "s", SweepForecaster())
    record = store.lent("s")["run0"]
    store.set_lent("run0", "finished", 150, record["settings"], record["record"])  # made from a shorter curve
    again = SweepForecaster()
    learn_from_store(store, "s", again)
    assert again.n_fits > 0 and store.lent("s")["run0"]["last_step"] == record["last_step"]
    other = SweepForecaster(level=0.8)
    learn_from_store(store, "s", other)
    assert other.n_fits > 0 and store.lent("s")["run0"]["settings"] == other.settings


def test_a_lent_record_the_store_cannot_take_is_still_used_and_reported(tmp_path, monkeypatch):
    store = _sweep_of_ended_runs(tmp_path, n_runs=2)

    def refuse(*args, **kwargs):
        raise OSError("read-only store")

    monkeypatch.setattr(store, "set_lent", refuse)
    forecaster = SweepForecaster()
    unstored = learn_from_store(store, "s", forecaster)
    assert len(unstored) == 2 and set(forecaster.pool.posteriors) == {"run0", "run1"}
    assert store.lent("s") == {}


def test_a_worker_that_lives_for_many_runs_learns_each_ended_run_once_and_forgets_a_resumed_one(tmp_path):
    store = _sweep_of_ended_runs(tmp_path, n_runs=2)
    forecaster = SweepForecaster()  # one fit process's, kept from run to run
    learn_from_store(store, "s", forecaster)
    learned = forecaster.n_fits
    learn_from_store(store, "s", forecaster)
    assert forecaster.n_fits == learned  # nothing new ended: nothing read back or refitted
    store.truncate("run0", 120)  # run0 is resumed from step 120: running again, no longer a donor
    store.set_run_status("run0", "running")
    learn_from_store(store, "s", forecaster)
    assert set(forecaster.pool.posteriors) == {"run1"}
    store.add_points("run0", [{"step": s, "flops": 1e6 * s, "loss": 2.6 + 0.001 * (200 - s)} for s in range(121, 201)])
    store.mark_finished("run0", 200)
    learn_from_store(store, "s", forecaster)  # it ended again: learned from its new curve
    assert set(forecaster.pool.posteriors) == {"run0", "run1"} and forecaster.n_fits > learned
