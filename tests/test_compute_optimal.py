"""Approach 3 fitter: recovery, the stalled-optimizer trap, variants, conventions, warnings, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from scaling_callback.errors import InputError
from scaling_callback.fitting.compute_optimal import ComputeOptimalLaw
from scaling_callback.fitting.synthetic_sweeps import isoflop_sweep
from scaling_callback.laws.chinchilla import REPLICATION_PARAMS, frontier_exponents

TRUE_A = frontier_exponents(REPLICATION_PARAMS["alpha"], REPLICATION_PARAMS["beta"])[0]
# A start from which L-BFGS-B at scipy's default tolerances stops after a few steps and reports success.
TRAP_START = {"a": [25.0], "b": [20.0], "e": [1.0], "alpha": [2.0], "beta": [1.0]}


@pytest.fixture(scope="module")
def sweep():
    return isoflop_sweep(90, noise=0.005, seed=1)


@pytest.fixture(scope="module")
def law(sweep):
    return ComputeOptimalLaw().fit(sweep["params"], sweep["tokens"], sweep["loss"])


def test_recovers_known_parameters(law):
    assert law.converged_ and law.status_ == "converged" and law.warnings_ == []
    assert law.alpha_ == pytest.approx(REPLICATION_PARAMS["alpha"], abs=0.03)
    assert law.beta_ == pytest.approx(REPLICATION_PARAMS["beta"], abs=0.03)
    assert law.E_ == pytest.approx(REPLICATION_PARAMS["E"], abs=0.05)
    assert law.a_ == pytest.approx(TRUE_A, abs=0.02)
    assert law.a_ + law.b_ == pytest.approx(1.0)


def test_stalled_optimizer_trap_is_avoided_and_detected(sweep, law):
    n, d, loss = sweep["params"], sweep["tokens"], sweep["loss"]
    tight = ComputeOptimalLaw(start_grid=TRAP_START).fit(n, d, loss)
    assert tight.converged_
    assert tight.objective_ == pytest.approx(law.objective_, rel=1e-7)
    assert tight.a_ == pytest.approx(law.a_, abs=1e-5)
    loose = ComputeOptimalLaw(start_grid=TRAP_START, optimizer_options={"ftol": 2.2e-9, "gtol": 1e-5}).fit(n, d, loss)
    assert loose.objective_ > 2 * law.objective_  # scipy's defaults stall: the published trap
    assert not loose.converged_ and loose.status_ == "not_converged"
    assert any("did not converge" in w for w in loose.warnings_)
    bfgs = ComputeOptimalLaw(start_grid=TRAP_START, optimizer="BFGS").fit(n, d, loss)
    assert bfgs.objective_ == pytest.approx(law.objective_, rel=1e-6)


def test_tied_and_fixed_e_variants(sweep):
    n, d, loss = sweep["params"], sweep["tokens"], sweep["loss"]
    tied = ComputeOptimalLaw(tie_exponents=True).fit(n, d, loss)
    assert tied.alpha_ == tied.beta_ and tied.a_ == pytest.approx(0.5)
    assert tied.choices_["variant"] == "alpha = beta"
    fixed = ComputeOptimalLaw(fixed_E=1.8).fit(n, d, loss)
    assert fixed.E_ == pytest.approx(1.8) and fixed.choices_["variant"] == "fixed E = 1.8"
    assert fixed.a_ == pytest.approx(TRUE_A, abs=0.03)
    both = ComputeOptimalLaw(fixed_E=1.8, tie_exponents=True).fit(n, d, loss)
    assert both.E_ == pytest.approx(1.8) and both.alpha_ == both.beta_ and both.converged_


def test_flop_conventions(sweep, law):
    n, d, loss = sweep["params"], sweep["tokens"], sweep["loss"]
    from_flops = ComputeOptimalLaw().fit(n, loss=loss, flops=6 * n * d)
    assert from_flops.a_ == pytest.approx(law.a_, abs=1e-6)
    assert "D = C/(6*N)" in from_flops.choices_["flop_convention"]
    measured = ComputeOptimalLaw().fit(n, d, loss, flops=6.6 * n * d)
    assert measured.flops_per_param_token_ == pytest.approx(6.6)
    assert measured.choices_["flop_convention"].startswith("measured FLOPs")
    row = measured.frontier([1e22]).iloc[0]
    assert 6.6 * row["n_opt"] * row["d_opt"] == pytest.approx(1e22)
    assert law.choices_["flop_convention"].startswith("C = 6*N*D")
    assert law.choices_["n_convention"] == "total parameters"


def test_results_as_dict_json_and_frame(law):
    out = law.to_dict(target_flops=[1e21, 1e23])
    json.dumps(out)
    for key in (
        "E",
        "A",
        "B",
        "alpha",
        "beta",
        "a",
        "b",
        "fit_seconds",
        "converged",
        "warnings",
        "choices",
        "n_points",
    ):
        assert key in out
    for key in (
        "form",
        "loss",
        "delta",
        "optimizer",
        "tolerances",
        "start_grid",
        "starts_optimized",
        "points_used",
        "n_convention",
        "flop_convention",
    ):
        assert key in out["choices"]
    assert [row["flops"] for row in out["frontier"]] == [1e21, 1e23]
    frame = law.to_frame()
    assert len(frame) == 1 and frame.loc[0, "a"] == pytest.approx(law.a_)
    assert np.all(law.predict([1e9], [2e10]) > law.E_)


def test_pathological_fit_warns_and_names_the_tied_variant():
    far_apart = {"E": 1.7, "A": 100.0, "B": 3.178e5, "alpha": 0.20, "beta": 0.64}  # 0.05 tokens/param
    sweep = isoflop_sweep(80, params=far_apart, noise=0.004, seed=3, half_width=1.5)
    law = ComputeOptimalLaw().fit(sweep["params"], sweep["tokens"], sweep["loss"])
    message = " ".join(law.warnings_)
    assert "far apart" in message and "(implausible)" in message
    assert "--tie-exponents" in message and "alpha = beta gives" in message
    tied = ComputeOptimalLaw(tie_exponents=True).fit(sweep["params"], sweep["tokens"], sweep["loss"])
    assert not any("far apart" in w for w in tied.warnings_)


def test_degenerate_data_warn_instead_of_crashing():
    sweep = isoflop_sweep(20, budgets=(1e20,), noise=0.005, seed=4)  # one budget: N and D move together
    law = ComputeOptimalLaw(n_best_starts=2).fit(sweep["params"], sweep["tokens"], sweep["loss"])
    assert law.status_ in ("converged", "not_converged")
    assert any("collinear" in w for w in law.warnings_)
    same_size = ComputeOptimalLaw(n_best_starts=2).fit(
        np.full(8, 1e8), np.geomspace(1e9, 1e11, 8), np.linspace(3.5, 3.0, 8)
    )
    assert same_size.warnings_ and same_size.status_ in ("converged", "not_converged")


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"params": [1e8, -1, 1e9, 2e9, 3e9, 4e9], "tokens": [1e9] * 6, "loss": [3.0] * 6}, "params = -1.0"),
        ({"params": [1e8] * 6, "tokens": [1e9] * 6, "loss": [3.0, np.nan, 3, 3, 3, 3]}, "loss = nan"),
        ({"params": [1e8] * 6, "tokens": [1e9] * 5, "loss": [3.0] * 6}, "differ in length"),
        ({"params": [1e8] * 4, "tokens": [1e9] * 4, "loss": [3.0] * 4}, "4 points cannot determine 5"),
        ({"params": [1e8] * 6, "loss": [3.0] * 6}, "tokens or flops"),
    ],
)
def test_bad_input_raises_input_error(kwargs, match):
    with pytest.raises(InputError, match=match):
        ComputeOptimalLaw().fit(**kwargs)


def test_bad_settings_raise_input_error():
    with pytest.raises(InputError, match="delta"):
        ComputeOptimalLaw(delta=0).fit([1e8] * 6, [1e9] * 6, [3.0] * 6)
    with pytest.raises(InputError, match="optimizer"):
        ComputeOptimalLaw(optimizer="Nelder-Mead").fit([1e8] * 6, [1e9] * 6, [3.0] * 6)
    with pytest.raises(InputError, match="fixed_E"):
        ComputeOptimalLaw(fixed_E=-1.0).fit([1e8] * 6, [1e9] * 6, [3.0] * 6)


def test_exponents_stay_non_negative_when_bigger_models_do_worse():
    """A sweep whose largest model is undertrained must not produce a negative exponent (loss growing with N)."""
    import numpy as np

    from scaling_callback.fitting.compute_optimal import ComputeOptimalLaw

    n = np.repeat([5e3, 1.6e4, 6e4, 1e5], 3)
    d = np.tile([6.4e4, 1.28e5, 2.56e5], 4)
    loss = 3.4 + 40 / d**0.4 + np.where(n > 8e4, 0.15, 0.0) + 0.002 * np.sin(np.arange(n.size))
    law = ComputeOptimalLaw().fit(n, d, loss)
    assert law.alpha_ >= 0 and law.beta_ >= 0


def test_equal_loss_sds_change_nothing(sweep, law):
    weighted = ComputeOptimalLaw().fit(sweep["params"], sweep["tokens"], sweep["loss"], loss_sd=0.01 * sweep["loss"])
    assert weighted.a_ == pytest.approx(law.a_, abs=1e-6)
    assert weighted.alpha_ == pytest.approx(law.alpha_, rel=1e-5)
    assert weighted.choices_["weights"].startswith("each log residual") and law.choices_["weights"].startswith("none")


def test_an_imprecise_outlier_counts_by_its_precision():
    """A point 30 % off whose SD says so barely moves the fit; unweighted, the same point pulls it away."""
    clean = isoflop_sweep(40, noise=0.004, seed=4)
    loss = clean["loss"].to_numpy().copy()
    loss[7] *= 1.3
    sd = np.full(loss.size, 0.004) * loss
    sd[7] = 0.5 * loss[7]
    reference = ComputeOptimalLaw().fit(clean["params"], clean["tokens"], clean["loss"])
    weighted = ComputeOptimalLaw().fit(clean["params"], clean["tokens"], loss, loss_sd=sd)
    plain = ComputeOptimalLaw().fit(clean["params"], clean["tokens"], loss)
    assert abs(weighted.a_ - reference.a_) < 0.004
    assert abs(plain.a_ - reference.a_) > 2 * abs(weighted.a_ - reference.a_)


def test_precise_points_count_only_as_far_as_the_law_can_follow_them():
    """Exact losses of an L(N, D) the law cannot follow (a 3 % ripple), SDs spread over 100x: the misfit
    is estimated and the fit lands where equal weights put it (0.485 with the SDs alone as weights)."""
    rng = np.random.default_rng(0)
    n = np.repeat(np.geomspace(1e6, 1e9, 6), 6)
    d = np.tile(np.geomspace(1e8, 1e11, 6), 6)
    loss = (1.8 + 400 / n**0.34 + 2000 / d**0.37) * np.exp(0.03 * np.sin(2 * np.log(n * d)))
    sd = loss * 10 ** rng.uniform(-4, -2, loss.size)
    weighted = ComputeOptimalLaw().fit(n, d, loss, loss_sd=sd)
    alike = ComputeOptimalLaw().fit(n, d, loss)
    assert weighted.misfit_sd_ == pytest.approx(0.018, abs=0.005)
    assert weighted.a_ == pytest.approx(alike.a_, abs=0.005)


def test_points_as_precise_as_their_sds_say_leave_no_misfit():
    clean = isoflop_sweep(40, noise=0.004, seed=4)
    law = ComputeOptimalLaw().fit(clean["params"], clean["tokens"], clean["loss"], loss_sd=0.004 * clean["loss"])
    assert law.misfit_sd_ < 0.002


@pytest.mark.parametrize(
    "loss_sd, match",
    [([0.01] * 5 + [-0.01], "loss_sd = -0.01"), ([0.01] * 5, "differ in length"), ([0.0] * 6, "loss_sd")],
)
def test_bad_loss_sd_raises_input_error(loss_sd, match):
    points = {"params": [1e8, 2e8, 4e8, 1e8, 2e8, 4e8], "tokens": [1e9] * 3 + [2e9] * 3, "loss": [3.0] * 6}
    with pytest.raises(InputError, match=match):
        ComputeOptimalLaw().fit(**points, loss_sd=loss_sd)
