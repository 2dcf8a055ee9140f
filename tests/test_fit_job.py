"""One online fit: binning, the sweep prior, failures as statuses, the stored record."""

from __future__ import annotations

import math

import numpy as np
import pytest

from scaling_callback.callback.fit_job import FitRequest, run_fit
from scaling_callback.fitting.curves import bin_curve
from scaling_callback.fitting.sweep_forecaster import SweepForecaster
from scaling_callback.store import SweepStore


def wsd_lrs(total: int = 400, warmup: int = 20, decay_from: int = 300, peak: float = 0.1) -> np.ndarray:
    steps = np.arange(total)
    warm = np.minimum((steps + 1) / warmup, 1.0)
    decay = np.where(steps < decay_from, 1.0, np.maximum(1 - (steps - decay_from) / (total - decay_from), 0.05))
    return peak * warm * decay


def curve(lrs: np.ndarray, upto: int) -> tuple[np.ndarray, np.ndarray]:
    sums = np.cumsum(lrs)
    steps = np.arange(1, upto + 1)
    return steps, 2.0 + 1.5 * sums[steps - 1] ** -0.5 - 3.0 * (lrs.max() - lrs[steps - 1])


def test_bin_curve_keeps_post_warmup_finite_points_and_averages_bins():
    steps = np.arange(1, 1001)
    loss = np.full(1000, 2.0)
    loss[500] = math.nan
    binned_steps, binned_loss = bin_curve(steps, loss, after_step=100, max_points=90)
    assert binned_steps.size == 90 and binned_steps[0] > 100 and binned_steps[-1] <= 1000
    assert np.all(np.diff(binned_steps) > 0) and np.all(binned_loss == 2.0)
    few_steps, few_loss = bin_curve(np.arange(1, 11), np.arange(1.0, 11.0), after_step=5, max_points=128)
    assert few_steps.tolist() == [6, 7, 8, 9, 10] and few_loss.tolist() == [6.0, 7.0, 8.0, 9.0, 10.0]


def test_fit_with_decay_stores_the_forecast(tmp_path):
    store = SweepStore(tmp_path / "s.sqlite")
    store.register_run("a", sweep="s")
    lrs = wsd_lrs()
    steps, loss = curve(lrs, 350)
    result = run_fit(FitRequest("a", 350, steps, loss, lrs, sweep="s", conventions={"n_params": 7}), store)
    assert result["status"] == "ok" and result["drop_term"] == "broad prior" and result["cpu_seconds"] > 0
    final = curve(lrs, 400)[1][-1]
    assert result["pred_final_low"] < final < result["pred_final_high"]
    stored = store.latest_fit("a")
    assert stored["id"] == result["fit_id"] and stored["forecast"]["loss"] == result["pred_final_loss"]
    assert stored["record"]["conventions"] == {"n_params": 7} and stored["record"]["binning"]["raw_points"] == 350
    assert stored["forecast"]["choices"]["law"].startswith("multi-power law")


def test_prefix_before_its_decay_takes_the_prior_of_finished_runs(tmp_path):
    store = SweepStore(tmp_path / "s.sqlite")
    lrs = wsd_lrs()
    for name in ("done", "done2"):
        store.register_run(name, sweep="s", max_steps=400)
        steps, loss = curve(lrs, 400)
        store.add_points(name, [{"step": int(t), "loss": float(v)} for t, v in zip(steps, loss * (1.01 if name == "done2" else 1))])
        store.set_planned_schedule(name, lrs)
        store.mark_finished(name, 400)
    store.register_run("new", sweep="s")
    forecaster = SweepForecaster()
    early = run_fit(FitRequest("new", 250, *curve(lrs, 250), lrs, sweep="s"), store, forecaster)
    alone = run_fit(FitRequest("alone", 250, *curve(lrs, 250), lrs), None)
    assert early["drop_term"] == "sweep prior" and early["forecast"]["evidence"]["donors"] == ["done", "done2"]
    assert alone["drop_term"] == "broad prior"
    final = curve(lrs, 400)[1][-1]
    width = lambda r: r["pred_final_high"] - r["pred_final_low"]  # noqa: E731
    assert early["pred_final_low"] < final < early["pred_final_high"] and width(early) < width(alone)


@pytest.mark.parametrize("bad", ["too_few", "nan_lrs"])
def test_failures_become_statuses(bad, tmp_path):
    lrs = wsd_lrs()
    steps, loss = curve(lrs, 400)
    if bad == "too_few":
        steps, loss = steps[:21], loss[:21]  # one post-warmup point
    else:
        lrs = lrs * np.nan
    result = run_fit(FitRequest("x", int(steps[-1]), steps, loss, lrs))
    assert result["status"] != "ok" and math.isnan(result["pred_final_loss"]) and result["forecast"] is None
