"""Fuzzed fitters: a status (never an exception), finite numbers when ok, bounded time and memory.

Fast tier: a few hundred seeded cases per target, in the default run. Slow tier (``-m slow``, run
in CI): 10 000 curves through the per-run pipeline up to its optimiser, a few hundred through the
full fits, and 2 000 inputs into the L(N, D) fitter. ``benchmarks/bench_fuzz.py`` prints the table.
"""

from __future__ import annotations

import os
import warnings

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from scaling_callback.laws.lr_terms import lr_terms
from scaling_callback.laws.schedule import Schedule
from tests.fuzz_batch import tally_many
from tests.fuzz_harness import CHEAP_CURVE_TARGET, CURVE_TARGETS, HANG_SECONDS, curve_cases, forecaster_contract
from tests.fuzz_sweeps import SWEEP_TARGETS, sweep_cases, sweep_contract


@pytest.fixture(autouse=True)
def _quiet_numpy():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


def _assert_contract(tally) -> None:
    detail = "; ".join(f"{f.label}: {f.kind} {f.detail}" for f in tally.failures[:5])
    assert tally.exceptions == 0 and tally.hangs == 0 and tally.broken == 0, detail
    assert tally.max_seconds < HANG_SECONDS
    assert sum(tally.statuses.values()) + tally.input_errors == tally.cases


@pytest.mark.parametrize("target", list(CURVE_TARGETS))
def test_per_run_fitters_keep_the_contract_on_pathological_curves(target):
    forecast, numbers = CURVE_TARGETS[target]
    tally = forecaster_contract(forecast, curve_cases(45, seed=11), target, numbers, measure_memory=False)
    _assert_contract(tally)
    assert tally.statuses.get("ok", 0) > 0.3 * tally.cases  # clean curves among them do fit


def test_pre_optimiser_pipeline_keeps_the_contract_fast_tier():
    name, forecast, numbers = CHEAP_CURVE_TARGET
    tally = forecaster_contract(forecast, curve_cases(300, seed=12), name, numbers, measure_memory=False)
    _assert_contract(tally)


@pytest.mark.parametrize("target", list(SWEEP_TARGETS))
def test_cross_run_fitters_keep_the_contract(target):
    fit, numbers = SWEEP_TARGETS[target]
    tally = sweep_contract(fit, sweep_cases(28, seed=13), target, numbers, measure_memory=False)
    _assert_contract(tally)


def test_a_huge_schedule_fits_within_time_and_memory():
    cases = [c for c in curve_cases(15 * 4, seed=14) if c.label.split(":")[1] == "huge_schedule"]
    # logged rows of a 1e7..1e8-step schedule: memory follows the rows, not the steps
    forecast, numbers = CURVE_TARGETS["CurveFitter (logged CSV path)"]
    tally = forecaster_contract(forecast, cases, "logged", numbers, measure_memory=True)
    _assert_contract(tally)
    assert tally.max_bytes < 64 * 2**20
    # the callback's per-step LRs (cut at 1e7 steps, 80 MB of input by themselves) stay under 1 GiB
    forecast, numbers = CURVE_TARGETS["run_fit (callback fit job)"]
    tally = forecaster_contract(forecast, cases[:2], "per-step", numbers, measure_memory=True)
    _assert_contract(tally)
    assert tally.max_bytes < 2**30


_WORKERS = min(os.cpu_count() or 1, 4)


@pytest.mark.slow
def test_ten_thousand_curves_slow_tier():
    _assert_contract(tally_many("curve", CHEAP_CURVE_TARGET[0], 10_000, seed=21, workers=_WORKERS))
    for target in CURVE_TARGETS:
        _assert_contract(tally_many("curve", target, 150, seed=22, workers=_WORKERS))


@pytest.mark.slow
def test_two_thousand_l_nd_inputs_slow_tier():
    _assert_contract(tally_many("sweep", "ComputeOptimalLaw (L(N, D))", 2_000, seed=23, workers=_WORKERS))
    for target in SWEEP_TARGETS:
        _assert_contract(tally_many("sweep", target, 60, seed=24, workers=_WORKERS))


# ------------------------------------------------------------------ properties of the piecewise schedule
_piece = st.tuples(st.integers(1, 400), st.floats(0.0, 1.0), st.floats(0.0, 1.0))


@settings(max_examples=150, deadline=None)
@given(
    pieces=st.lists(_piece, min_size=1, max_size=6),
    n_points=st.integers(1, 12),
    blocks=st.sampled_from([None, 2, 7, 64]),
)
@example(pieces=[(1, 0.0, 0.0), (1, 5e-324, 0.0)], n_points=2, blocks=None)  # a subnormal drop (found by hypothesis)
def test_lr_terms_over_pieces_match_every_step_sums(pieces, n_points, blocks):
    lrs = np.concatenate([np.linspace(a, b, n) for n, a, b in pieces])
    schedule = Schedule(lrs, 1.0, 0.0)
    assert np.allclose(schedule.lrs, lrs, atol=1e-12)
    steps = np.unique(np.linspace(0, lrs.size, n_points).round().astype(int))
    terms = lr_terms([schedule], [steps], blocks)
    cumulative = np.concatenate([[0.0], np.cumsum(lrs)])
    assert np.allclose(terms.s1, cumulative[steps], rtol=1e-9, atol=1e-9)
    previous = np.concatenate([[1.0], lrs[:-1]])
    drop_by_point = np.array([np.sum((previous - lrs)[:t]) for t in steps])
    assert np.allclose(terms.point_sums(terms.pair_dlr), drop_by_point, atol=1e-9)  # every change counted once
    assert np.all(terms.pair_sum >= 0) and np.all(terms.pair_lag >= 0)


def test_a_per_step_log_of_a_million_points_is_fitted_as_bin_means():
    from scaling_callback.fitting.curve_fitter import MAX_POINTS_PER_CURVE, CurveFitter
    from scaling_callback.fitting.curves import Curve

    steps = np.arange(1, 10**6 + 1)
    schedule = Schedule.from_logged(np.array([1.0, 8e5, 1e6]), np.array([1e-3, 1e-3, 1e-4]), total_steps=10**6)
    s1 = schedule.lr_sum_at(steps)
    loss = (2.0 + 3.0 * (s1 / s1[0]) ** -0.3) * (1 + 0.01 * np.random.default_rng(0).standard_normal(steps.size))
    fitter = CurveFitter(jackknife=False).fit([Curve(schedule, steps, loss)])
    assert fitter.status_ == "ok" and fitter.n_points_ <= MAX_POINTS_PER_CURVE
