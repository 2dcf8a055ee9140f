"""The callback side of stopping: views of the judged run and its rivals from the store."""

from __future__ import annotations

import numpy as np

from scaling_callback.callback.store_views import compute_per_step, judged_view, sweep_from_store, sweep_view
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
