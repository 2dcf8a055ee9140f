"""Approaches 1 (envelope) and 2 (IsoFLOP parabolas)."""

from __future__ import annotations

import numpy as np
import pytest

from scaling_callback.errors import InputError
from scaling_callback.fitting.isoflop import EnvelopeFit, IsoFlopFit, group_budgets
from scaling_callback.fitting.synthetic_sweeps import isoflop_sweep, training_curves
from scaling_callback.laws.chinchilla import REPLICATION_PARAMS, frontier_exponents

TRUE_A = frontier_exponents(REPLICATION_PARAMS["alpha"], REPLICATION_PARAMS["beta"])[0]


def test_group_budgets_splits_on_gaps_and_tolerates_jitter():
    flops = np.array([1e20, 1.02e20, 0.99e20, 1e21, 1.01e21, 1e22])
    labels = group_budgets(flops)
    assert labels.tolist() == [0, 0, 0, 1, 1, 2]


def test_isoflop_recovers_a_on_narrow_parabolic_sweeps():
    sweep = isoflop_sweep(90, noise=0.001, seed=0, half_width=0.8)
    fit = IsoFlopFit().fit(sweep["params"], sweep["flops"], sweep["loss"])
    assert fit.status_ == "ok" and fit.points_["used"].all()
    assert fit.a_ == pytest.approx(TRUE_A, abs=0.03) and fit.b_ == pytest.approx(1 - fit.a_)
    row = fit.frontier([1e22]).iloc[0]
    assert 6 * row["n_opt"] * row["d_opt"] == pytest.approx(1e22)
    assert fit.to_dict()["approach"].startswith("approach 2") and len(fit.to_frame()) == 1


def test_isoflop_skips_budgets_it_cannot_use():
    sweep = isoflop_sweep(36, noise=0.001, seed=0, half_width=0.8, budgets=(1e19, 1e20, 1e21, 1e22))
    keep = ~((sweep["flops"] == 1e22) & (sweep.index % 9 > 1))  # leave two sizes at the last budget
    fit = IsoFlopFit().fit(sweep["params"][keep], sweep["flops"][keep], sweep["loss"][keep])
    assert fit.points_["used"].sum() == 3
    assert any("model sizes" in w for w in fit.warnings_)
    lone = IsoFlopFit().fit([1e8, 2e8, 4e8], [1e19] * 3, [3.0, 2.9, 3.1])
    assert lone.status_ == "insufficient_data" and np.isnan(lone.a_)


def test_envelope_recovers_a_from_training_curves():
    curves = training_curves(np.geomspace(4e7, 1.6e10, 14), max_tokens=6e11, n_checkpoints=40, noise=0.002)
    fit = EnvelopeFit().fit(curves["params"], curves["flops"], curves["loss"], curves["run"])
    assert fit.status_ == "ok"
    assert fit.a_ == pytest.approx(TRUE_A, abs=0.06)
    assert fit.to_dict()["choices"]["runs"] == 14


def test_bad_input_raises():
    with pytest.raises(InputError, match="flops"):
        IsoFlopFit().fit([1e8, 2e8, 3e8], [1e19, -1, 1e19], [3.0, 2.9, 3.1])
    with pytest.raises(InputError, match="differ in length"):
        EnvelopeFit().fit([1e8, 2e8], [1e19, 2e19], [3.0, 2.9], [0])
