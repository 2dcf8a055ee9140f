"""Forecast points of fully decayed runs from one run per size: accuracy, the frontier they give, plans, errors."""

from __future__ import annotations

import numpy as np
import pytest
from curve_factory import FAMILY_TOKENS_PER_STEP, family_loss, family_runs

from scaling_callback.errors import InputError
from scaling_callback.fitting.bootstrap import bootstrap_compute_optimal
from scaling_callback.fitting.compute_optimal import ComputeOptimalLaw
from scaling_callback.fitting.decayed_finals import (
    DecayedFinals,
    DecayTarget,
    cosine_plan,
    equivalent_grid_ratio,
    shared_steps,
    wsd_plan,
)


@pytest.fixture(scope="module")
def runs():
    return family_runs()


@pytest.fixture(scope="module")
def finals(runs):
    return DecayedFinals().fit(runs)


def exact_finals(runs, points) -> np.ndarray:
    by_name = {r.name: r for r in runs}
    values = []
    for row in points.itertuples():
        run = by_name[row.run]
        plan, _ = wsd_plan(run, int(round(row.d / FAMILY_TOKENS_PER_STEP)), 0.2, 0.1)
        values.append(family_loss(run.n_params, plan, np.array([plan.total_steps]))[0])
    return np.array(values)


def test_points_are_forecast_within_their_sd(runs, finals):
    points = finals.points_
    assert len(points) == 4 * 7 and not finals.failures_
    assert set(points["source"]) == {"forecast", "observed"}
    assert (points["source"] == "observed").sum() == 4  # each run at its own budget is the run
    z = (exact_finals(runs, points) - points["loss"]) / points["loss_sd"]
    assert np.all(np.abs(z) < 3.0)
    assert np.max(np.abs(exact_finals(runs, points) - points["loss"])) < 0.02


def test_one_run_frontier_recovers_a_within_its_interval(runs, finals):
    points = finals.points_
    truth = ComputeOptimalLaw().fit(points["n"], points["d"], exact_finals(runs, points)).a_
    law = ComputeOptimalLaw().fit(points["n"], points["d"], points["loss"], loss_sd=points["loss_sd"])
    boot = bootstrap_compute_optimal(law, groups=points["run"], n_resamples=100, seed=0)
    low, high = boot.ci()["a"]
    assert low < truth < high
    assert abs(law.a_ - truth) < 0.03


def test_compute_used_against_the_equivalent_grid(runs, finals):
    # 7 budgets at ratios 8^(1/6) below the run's length: the grid spends sum_k 8^(-k/6) = 3.11x one run
    ratio = equivalent_grid_ratio(finals.points_, finals.compute_used_)
    assert ratio == pytest.approx(finals.compute_used_ / finals.compute_grid_)
    assert ratio == pytest.approx(1.0 / sum(8.0 ** (-k / 6) for k in range(7)), rel=1e-3)


def test_the_wsd_target_of_the_runs_own_length_is_the_run(runs):
    run = runs[0]
    plan, shared = wsd_plan(run, run.schedule.total_steps, 0.2, 0.1)
    assert shared == run.schedule.total_steps  # every step shared: the forecaster sees the whole run
    np.testing.assert_allclose(plan.lrs, run.schedule.lrs, rtol=1e-12)
    half, shared_half = wsd_plan(run, 2000, 0.2, 0.1)
    assert shared_half == 100 + int(round(0.8 * 1900)) and half.total_steps == 2000
    cosine = cosine_plan(run, 2000, 0.1)
    assert cosine.lrs[0] == pytest.approx(run.peak_lr) and cosine.lrs[-1] == pytest.approx(0.1 * run.peak_lr)


def test_given_budgets_past_a_run_are_extrapolated(runs):
    longest = runs[0].tokens
    finals = DecayedFinals().fit(runs, target_tokens=[longest / 4, longest / 2, 1.5 * longest])
    assert list(finals.points_.groupby("source").size().items()) == [("extrapolated", 4), ("forecast", 8)]
    extrapolated = finals.points_[finals.points_["source"] == "extrapolated"]
    within = finals.points_[finals.points_["d"] == longest / 2]
    assert extrapolated["loss_sd"].mean() > within["loss_sd"].mean()


def test_cosine_target_needs_a_decay_somewhere():
    with pytest.raises(InputError, match="never decays"):
        DecayedFinals(DecayTarget("cosine")).fit(family_runs("constant"))
    finals = DecayedFinals(DecayTarget("cosine")).fit(family_runs(), target_tokens=[5e8, 1e9])
    assert len(finals.points_) == 8 and np.all(finals.points_["loss_sd"] > 0)


def test_bad_inputs_are_one_line_errors(runs):
    with pytest.raises(InputError, match="one model size"):
        DecayedFinals().fit(runs[:1])
    with pytest.raises(InputError, match="before the smallest target budget"):
        DecayedFinals().fit(runs, target_tokens=[3 * runs[0].tokens])
    with pytest.raises(InputError, match="decay target"):
        DecayTarget("linear")
    with pytest.raises(InputError, match="decay_fraction"):
        DecayTarget("wsd", decay_fraction=0.0)


def test_a_target_shares_the_steps_whose_lrs_agree(runs):
    run = runs[0]
    plan, _ = wsd_plan(run, run.schedule.total_steps, 0.2, 0.1)
    nudged = plan.lrs.copy()
    nudged[plan.n_steps - 50 :] *= 1.0 + 1e-4  # a trainer's rounding of the decay: still the run
    assert shared_steps(run, type(plan)(nudged, plan.peak_lr, plan.warmup_sum, plan.warmup_steps)) == plan.total_steps
    nudged[plan.n_steps - 50 :] *= 1.01  # 1 % of the peak: another schedule from there on
    other = type(plan)(nudged, plan.peak_lr, plan.warmup_sum, plan.warmup_steps)
    assert shared_steps(run, other) == plan.warmup_steps + plan.n_steps - 50


def test_the_runs_own_budget_is_its_fitted_end(runs, finals):
    points = finals.points_
    for run in runs:
        own = points[(points["run"] == run.name) & (points["source"] == "observed")]
        others = points[(points["run"] == run.name) & (points["source"] == "forecast")]
        assert len(own) == 1 and own["d"].iloc[0] == pytest.approx(run.tokens)
        exact = family_loss(run.n_params, run.schedule, np.array([run.schedule.total_steps]))[0]
        assert own["loss"].iloc[0] == pytest.approx(exact, abs=3 * own["loss_sd"].iloc[0])
        assert own["loss_sd"].iloc[0] < others["loss_sd"].min()
