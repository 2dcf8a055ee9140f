"""Case bootstrap of the compute-optimal fit: clustering, reproducibility, interval behaviour, errors."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pandas as pd
import pytest

from scaling_callback.errors import InputError
from scaling_callback.fitting.bootstrap import bootstrap_compute_optimal, frontier_column
from scaling_callback.fitting.compute_optimal import ComputeOptimalLaw
from scaling_callback.fitting.synthetic_sweeps import isoflop_sweep


@pytest.fixture(scope="module")
def fitted():
    sweep = isoflop_sweep(60, noise=0.01, seed=2)
    return sweep, ComputeOptimalLaw(n_best_starts=4).fit(sweep["params"], sweep["tokens"], sweep["loss"])


def test_draws_intervals_and_frontier_columns(fitted):
    _, law = fitted
    boot = bootstrap_compute_optimal(law, n_resamples=40, seed=0, target_flops=[1e22], n_jobs=1)
    assert len(boot.draws) == 40 and boot.n_failed == 0
    column = frontier_column("n_opt", 1e22)
    for name in ("E", "A", "B", "alpha", "beta", "a", "b", column, frontier_column("loss", 1e22)):
        low, high = boot.ci()[name]
        assert low < high
    assert boot.ci()["a"][0] < law.a_ < boot.ci()["a"][1]
    assert 0.003 < boot.se()["a"] < 0.1
    table = boot.to_frame()
    assert table.loc["a", "estimate"] == pytest.approx(law.a_)
    out = boot.to_dict()
    json.dumps(out)
    assert out["choices"]["clustered_by"].startswith("point") and out["choices"]["n_resamples"] == 40


def test_same_seed_same_draws_whatever_the_worker_count(fitted):
    _, law = fitted
    serial = bootstrap_compute_optimal(law, n_resamples=12, seed=5, n_jobs=1)
    parallel = bootstrap_compute_optimal(law, n_resamples=12, seed=5, n_jobs=2)
    assert parallel.choices["workers"] == 2
    pd.testing.assert_frame_equal(serial.draws, parallel.draws)


def test_clusters_resample_whole_runs():
    curves = isoflop_sweep(30, noise=0.01, seed=3)
    repeated = pd.concat([curves, curves.assign(loss=curves["loss"] * 1.002)], ignore_index=True)
    law = ComputeOptimalLaw(n_best_starts=3).fit(repeated["params"], repeated["tokens"], repeated["loss"])
    boot = bootstrap_compute_optimal(law, groups=repeated["run"], n_resamples=20, seed=1, n_jobs=1)
    assert boot.choices["n_clusters"] == 30 and boot.choices["clustered_by"].startswith("run")
    naive = bootstrap_compute_optimal(law, n_resamples=20, seed=1, n_jobs=1)
    assert naive.choices["n_clusters"] == 60
    # duplicated points treated as independent understate the spread
    assert boot.se()["a"] > naive.se()["a"]


def test_one_run_per_size_keeps_its_sizes_and_covers_the_true_frontier():
    """Four sizes, each one run with points at seven budgets and one error shared by its points: the design
    is kept (wild cluster bootstrap), and the interval of a holds the true a without spanning most of [0, 1]."""
    rng = np.random.default_rng(0)
    n = np.repeat(np.geomspace(1e6, 3e8, 4), 7)
    d = np.tile(np.geomspace(1e8, 1e10, 7), 4)
    run = np.repeat(np.arange(4), 7)
    loss = (1.8 + 400 / n**0.34 + 2000 / d**0.37) * np.exp(
        0.004 * rng.standard_normal(4)[run] + 0.002 * rng.standard_normal(28)
    )
    law = ComputeOptimalLaw().fit(n, d, loss, loss_sd=0.005 * loss)
    boot = bootstrap_compute_optimal(law, groups=run, n_resamples=100, seed=0, n_jobs=1)
    low, high = boot.ci()["a"]
    assert boot.choices["method"].startswith("wild cluster")
    assert low < 0.37 / (0.34 + 0.37) < high  # a = beta / (alpha + beta)
    assert high - low < 0.2
    grid = bootstrap_compute_optimal(law, groups=np.arange(28), n_resamples=20, seed=0, n_jobs=1)
    assert grid.choices["method"].startswith("case")  # one point per run: runs are resampled as before


def test_interval_width_shrinks_with_more_runs():
    widths = {}
    for n_runs in (30, 120):
        sweep = isoflop_sweep(n_runs, noise=0.015, seed=7)
        law = ComputeOptimalLaw(n_best_starts=3).fit(sweep["params"], sweep["tokens"], sweep["loss"])
        widths[n_runs] = bootstrap_compute_optimal(law, n_resamples=30, seed=0, n_jobs=1).se()["a"]
    assert 0.25 < widths[120] / widths[30] < 0.85  # about 1/2 = sqrt(30/120)


def test_bad_arguments_raise_input_error(fitted):
    _, law = fitted
    with pytest.raises(InputError, match="fitted"):
        bootstrap_compute_optimal(ComputeOptimalLaw(), n_resamples=10)
    with pytest.raises(InputError, match="n_resamples"):
        bootstrap_compute_optimal(law, n_resamples=1)
    with pytest.raises(InputError, match="labels"):
        bootstrap_compute_optimal(law, groups=np.arange(3), n_resamples=10)
    with pytest.raises(InputError, match="target FLOPs"):
        bootstrap_compute_optimal(law, n_resamples=10, target_flops=[-1.0])


def test_warm_started_resamples_agree_with_refits_from_every_start(fitted):
    _, law = fitted
    warm = bootstrap_compute_optimal(law, n_resamples=16, seed=4, n_jobs=1)
    full = bootstrap_compute_optimal(law, n_resamples=16, seed=4, n_jobs=1, warm_start=False)
    assert warm.choices["starts_per_resample"] == 1 and full.choices["starts_per_resample"] >= 1
    assert "warm start" in warm.choices["starts"] and "gradient tolerance" in warm.choices["stopping"]
    np.testing.assert_allclose(warm.draws["a"], full.draws["a"], atol=1e-3)


def test_progress_is_reported_up_to_the_total(fitted):
    _, law = fitted
    seen = []
    bootstrap_compute_optimal(
        law, n_resamples=30, seed=0, n_jobs=1, progress=lambda done, total: seen.append((done, total))
    )
    assert seen[0] == (0, 30) and seen[-1] == (30, 30) and all(b >= a for (a, _), (b, _) in itertools.pairwise(seen))


def test_predictive_draws_widen_the_interval_by_the_points_uncertainty():
    """Points known to ±3 % make a wider interval than the same points taken as observed."""
    sweep = isoflop_sweep(40, noise=0.004, seed=6)
    sd = 0.03 * sweep["loss"].to_numpy()
    law = ComputeOptimalLaw(n_best_starts=3).fit(sweep["params"], sweep["tokens"], sweep["loss"], loss_sd=sd)
    drawn = bootstrap_compute_optimal(law, n_resamples=60, seed=0, n_jobs=1)
    observed = bootstrap_compute_optimal(law, n_resamples=60, seed=0, n_jobs=1, draw_losses=False)
    assert drawn.se()["a"] > 1.5 * observed.se()["a"]
    assert drawn.choices["predictive_draws"].startswith("each resample") and observed.choices[
        "predictive_draws"
    ].startswith("none")
    again = bootstrap_compute_optimal(law, n_resamples=60, seed=0, n_jobs=1)
    pd.testing.assert_frame_equal(drawn.draws, again.draws)
