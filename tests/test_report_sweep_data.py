"""What the report and the progress line read of a sweep: one row per run, ended runs' rows cached by a poller."""

from __future__ import annotations

import pandas as pd

from scaling_callback.report.sweep_data import final_points, read_state
from scaling_callback.store import SweepStore


def _sweep(tmp_path) -> SweepStore:
    store = SweepStore(tmp_path / "s.sqlite")
    for name in ("done", "live"):
        store.register_run(name, sweep="s", max_steps=100)
        store.add_points(name, [{"step": s, "flops": 1e6 * s, "loss": 3.0 + 1.0 / s} for s in range(1, 51)])
    store.add_points("done", [{"step": s, "flops": 1e6 * s, "loss": 3.0 + 1.0 / s} for s in range(51, 101)])
    store.add_evals("done", 100, {"val_loss": 3.02, "val_loss_sd": 0.002, "val_loss_tokens": 2e5})
    store.mark_finished("done", 100)
    return store


def test_a_poller_reads_ended_runs_once_and_running_ones_every_time(tmp_path, monkeypatch):
    store = _sweep(tmp_path)
    cache: dict = {}
    first = final_points(store, "s", cache)
    read: list[str] = []
    points = SweepStore.points
    monkeypatch.setattr(SweepStore, "points", lambda self, run: read.append(run) or points(self, run))
    store.add_points("live", [{"step": 51, "flops": 5.1e7, "loss": 3.01}])
    again = final_points(store, "s", cache)
    assert read == ["live"]  # the finished run's row came from the cache
    assert again.set_index("name").loc["live", "last_step"] == 51
    pd.testing.assert_frame_equal(again[again["name"] == "done"], first[first["name"] == "done"])
    assert (
        again.set_index("name").loc["done", "loss"] == 3.02
        and again.set_index("name").loc["done", "source"] == "evaluated"
    )


def test_a_cached_state_equals_a_fresh_one(tmp_path):
    store = _sweep(tmp_path)
    url = store.url
    cache: dict = {}
    read_state(url, "s", cache)
    cached, fresh = read_state(url, "s", cache), read_state(url, "s")
    assert cached.best_observed == fresh.best_observed == (3.02, "done")
    assert (cached.n_finished, cached.n_running) == (fresh.n_finished, fresh.n_running) == (1, 1)
    pd.testing.assert_frame_equal(cached.final_points, fresh.final_points)
