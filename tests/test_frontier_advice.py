"""When the report calls the frontier uninformative, and what it says to add to the sweep (decisions, not wording)."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from scaling_callback.report.frontier_advice import WIDE_A_INTERVAL, frontier_advice

SIZES = (1e3, 4e3, 1.6e4)
BUDGETS = (1e5, 4e5, 1.6e6)


def grid(sizes=SIZES, budgets=BUDGETS) -> pd.DataFrame:
    rows = [{"n": n, "tokens": d, "compute": 6.0 * n * d} for n, d in itertools.product(sizes, budgets)]
    return pd.DataFrame(rows)


def fit(g: float = 0.1, a_ci=(0.45, 0.55), alpha_ci=(0.45, 0.55), beta_ci=(0.45, 0.55), **extra) -> dict:
    """A frontier record with α = β = 0.5 (a = 0.5) and N_opt = g·sqrt(C/6): g = 0.1 crosses the grid."""
    return {
        "E": 2.0,
        "A": g,  # α·A/(β·B) = g^(α+β) = g with B = 1
        "B": 1.0,
        "alpha": 0.5,
        "beta": 0.5,
        "a": 0.5,
        "b": 0.5,
        "ci": {"a": list(a_ci), "alpha": list(alpha_ci), "beta": list(beta_ci)},
        "choices": {"flops_per_param_token": 6.0},
        "diagnostics": {},
        **extra,
    }


def test_a_narrow_interval_on_a_frontier_that_crosses_the_grid_is_informative():
    advice = frontier_advice(fit(), grid())
    assert advice.informative and advice.reasons == [] and advice.a_interval_width == pytest.approx(0.1)
    assert advice.add_sizes == [] and advice.add_budgets == []


@pytest.mark.parametrize(
    "alpha_ci, beta_ci, widen_sizes, widen_budgets",
    [
        ((0.1, 0.9), (0.45, 0.55), True, False),
        ((0.45, 0.55), (0.1, 0.9), False, True),
        ((0.2, 0.8), (0.2, 0.8), True, True),
    ],
)
def test_a_wide_interval_asks_for_range_along_the_less_certain_exponent(alpha_ci, beta_ci, widen_sizes, widen_budgets):
    advice = frontier_advice(fit(a_ci=(0.2, 0.2 + WIDE_A_INTERVAL + 0.01), alpha_ci=alpha_ci, beta_ci=beta_ci), grid())
    assert not advice.informative and advice.reasons == ["wide_a"]
    assert (advice.add_sizes == [pytest.approx(6.4e4), pytest.approx(2.56e5)]) is widen_sizes  # 1 and 2 steps of 4x
    assert (advice.add_budgets == [pytest.approx(6.4e6), pytest.approx(2.56e7)]) is widen_budgets


def test_an_interval_of_exactly_the_limit_is_still_informative():
    assert frontier_advice(fit(a_ci=(0.3, 0.3 + WIDE_A_INTERVAL)), grid()).informative


def test_a_frontier_above_the_grid_asks_for_larger_sizes_or_smaller_budgets():
    advice = frontier_advice(fit(g=10.0), grid())  # at D = 1e5 the law wants N = G²·D = 1e7 > 1.6e4
    assert advice.reasons == ["frontier_above_grid"]
    assert advice.add_sizes[0] == pytest.approx(6.4e4) and all(n > max(SIZES) for n in advice.add_sizes)
    assert advice.add_budgets[0] == pytest.approx(2.5e4) and all(d < min(BUDGETS) for d in advice.add_budgets)


def test_a_frontier_below_the_grid_asks_for_smaller_sizes_or_larger_budgets():
    advice = frontier_advice(fit(g=1e-3), grid())  # at D = 1.6e6 the law wants N = G²·D = 1.6 < 1e3
    assert advice.reasons == ["frontier_below_grid"]
    assert all(n < min(SIZES) for n in advice.add_sizes) and all(d > max(BUDGETS) for d in advice.add_budgets)


def test_no_bootstrap_is_a_reason_and_the_fitters_start_grid_warnings_are_not():
    start_grid_edge = {"best_start_on_grid_boundary": ["e = 1"], "n_starts_reaching_best": 1, "n_optimized_starts": 8}
    advice = frontier_advice(fit(ci={}, diagnostics=start_grid_edge), grid())
    assert advice.reasons == ["no_bootstrap"] and advice.a_interval_width is None
    assert frontier_advice(fit(diagnostics=start_grid_edge), grid()).informative


def test_no_fit_says_which_axis_lacks_values():
    advice = frontier_advice(None, grid(sizes=(1e3, 4e3)))
    assert advice.reasons == ["no_fit"] and not advice.informative
    assert advice.add_sizes == [pytest.approx(1.6e4)] and advice.add_budgets == []
    failed = frontier_advice({"status": "failed: no start reached a finite objective", "n_points": 9}, grid())
    assert failed.reasons == ["no_fit"] and failed.add_sizes == [] and failed.text


def test_the_decision_is_json_ready():
    record = frontier_advice(fit(g=10.0), grid()).to_dict()
    assert set(record) == {"informative", "reasons", "a_interval_width", "add_sizes", "add_budgets", "text"}
    assert all(isinstance(v, float) for v in record["add_sizes"] + record["add_budgets"])
    assert np.isfinite(record["add_sizes"]).all()
