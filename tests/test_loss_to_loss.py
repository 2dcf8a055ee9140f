"""Loss-to-loss shifted power law: formula, gradient, fits, pairing by compute."""

from __future__ import annotations

import numpy as np
import pytest

from scaling_callback.errors import InputError
from scaling_callback.fitting.loss_to_loss import LossToLossLaw, fit_train_to_test, fit_train_to_train, pair_by_compute
from scaling_callback.laws.loss_to_loss import shifted_power_law, shifted_power_law_gradient

TRUE = {"K": 1.5, "kappa": 1.3, "E0": 1.7, "E1": 2.0}


def test_formula_and_gradient():
    l0 = np.array([2.0, 3.0, 4.0])
    np.testing.assert_allclose(shifted_power_law(l0, **TRUE), 1.5 * (l0 - 1.7) ** 1.3 + 2.0)
    assert np.isnan(shifted_power_law(np.array([1.0]), **TRUE)[0])
    gradient = shifted_power_law_gradient(l0, **TRUE)
    values = np.array(list(TRUE.values()))
    for i in range(4):
        shifted = values.copy()
        shifted[i] += 1e-7
        numeric = (shifted_power_law(l0, *shifted) - shifted_power_law(l0, *values)) / 1e-7
        np.testing.assert_allclose(gradient[:, i], numeric, rtol=1e-5)


def test_fit_predicts_held_out_losses():
    rng = np.random.default_rng(0)
    l0 = np.linspace(2.3, 4.0, 30)
    l1 = shifted_power_law(l0, **TRUE) * np.exp(rng.normal(0, 0.002, l0.size))
    law = LossToLossLaw().fit(l0, l1)
    assert law.converged_ and law.status_ == "converged"
    assert 0 < law.E0_ < l0.min() and 0 < law.E1_ < l1.min()
    lower = np.array([2.1, 2.2])  # extrapolate below the fitted range
    np.testing.assert_allclose(law.predict(lower), shifted_power_law(lower, **TRUE), rtol=0.02)
    out = law.to_dict()
    assert out["choices"]["form"].startswith("L1 = K*(L0 - E0)^kappa") and len(law.to_frame()) == 1


def test_train_to_test_fits_one_law_per_validation_set():
    l0 = np.linspace(2.3, 4.0, 20)
    tests = {"code": shifted_power_law(l0, 0.8, 1.1, 1.9, 1.2), "web": shifted_power_law(l0, 1.2, 0.9, 1.5, 2.5)}
    laws = fit_train_to_test(l0, tests)
    assert set(laws) == {"code", "web"}
    for name, law in laws.items():
        np.testing.assert_allclose(law.predict(l0), tests[name], rtol=2e-3)
        assert name in law.choices_["pairing"]


def test_pair_by_compute_and_train_to_train():
    flops = np.geomspace(1e18, 1e21, 25)
    loss0 = 1.8 + 40.0 * flops**-0.08
    loss1 = shifted_power_law(loss0, **TRUE)
    shuffled = np.random.default_rng(1).permutation(flops.size)
    budgets, paired0, paired1 = pair_by_compute(flops[shuffled], loss0[shuffled], flops[:20], loss1[:20], n_points=10)
    assert budgets.min() == pytest.approx(1e18) and budgets.max() == pytest.approx(flops[19])
    np.testing.assert_allclose(paired1, shifted_power_law(paired0, **TRUE), rtol=2e-3)
    law = fit_train_to_train(flops, loss0, flops, loss1, n_points=15)
    assert "paired by compute" in law.choices_["pairing"]
    np.testing.assert_allclose(law.predict(loss0), loss1, rtol=2e-3)


def test_bad_input_raises():
    with pytest.raises(InputError, match="loss1"):
        LossToLossLaw().fit([3.0, 2.9, 2.8, 2.7], [3.0, -2.9, 2.8, 2.7])
    with pytest.raises(InputError, match="cannot determine"):
        LossToLossLaw().fit([3.0, 2.9, 2.8], [3.0, 2.9, 2.8])
    with pytest.raises(InputError, match="no FLOP range"):
        pair_by_compute([1e18, 2e18], [3.0, 2.9], [1e20, 2e20], [3.0, 2.9])
