"""Loss-to-loss with offsets from compute laws (Brandfonbrener et al. 2024): recovery, no NaN, below-E0 flags."""

from __future__ import annotations

import numpy as np
import pytest

from scaling_callback.errors import InputError
from scaling_callback.fitting.loss_to_loss import LossToLossLaw
from scaling_callback.fitting.loss_to_loss_compute import LossToLossFromCompute, frontier
from scaling_callback.laws.loss_to_loss import shifted_power_law

E0 = 1.82  # Besiroglu et al. 2024's replication of Chinchilla: E, A, B, alpha, beta
CHINCHILLA = dict(A=482.0, B=2085.0, alpha=0.348, beta=0.366)


def train_loss(n: np.ndarray, d: np.ndarray) -> np.ndarray:
    return E0 + CHINCHILLA["A"] / n ** CHINCHILLA["alpha"] + CHINCHILLA["B"] / d ** CHINCHILLA["beta"]


def sweep(seed: int, noise: float, K: float = 1.1, kappa: float = 1.2, E1: float = 2.0):
    """6 sizes x 5 tokens-per-parameter; test loss by the shifted power law; held-out model at 20x the compute."""
    rng = np.random.default_rng(seed)
    n, tpp = np.meshgrid(np.geomspace(2e7, 4e8, 6), [5, 10, 20, 40, 80])
    n, d = n.ravel(), (n * tpp).ravel()
    compute = 6 * n * d
    l0 = train_loss(n, d)
    l1 = shifted_power_law(l0, K, kappa, E0, E1)
    noisy = [v * np.exp(rng.normal(0, noise, v.size)) for v in (l0, l1)]
    target_n = np.sqrt(20 * compute.max() / (6 * 20))
    x = float(train_loss(target_n, 20 * target_n))
    return compute, noisy[0], noisy[1], x, float(shifted_power_law(x, K, kappa, E0, E1)), 20 * compute.max()


def test_frontier_keeps_the_lowest_loss_so_far():
    compute = np.array([1.0, 2.0, 2.0, 3.0, 4.0])
    loss = np.array([5.0, 4.0, 4.5, 4.2, 3.0])
    assert frontier(compute, loss).tolist() == [0, 1, 4]


def test_fixed_offsets_fit_only_K_and_kappa():
    l0 = np.linspace(2.3, 3.5, 12)
    law = LossToLossLaw(E0=1.7, E1=2.0).fit(l0, shifted_power_law(l0, 1.5, 1.3, 1.7, 2.0))
    assert (law.K_, law.kappa_, law.E0_, law.E1_) == pytest.approx((1.5, 1.3, 1.7, 2.0), rel=1e-6)
    with pytest.raises(InputError, match="E0 = 2.5"):
        LossToLossLaw(E0=2.5, E1=0.0).fit(l0, l0)
    with pytest.raises(InputError, match="both offsets"):
        LossToLossLaw(E0=1.0).fit(l0, l0)


def test_twenty_times_compute_has_no_nan_and_is_accurate():
    errors = []
    for seed in range(8):
        compute, l0, l1, x, truth, _ = sweep(seed, noise=0.002)
        fit = LossToLossFromCompute().fit(l0, l1, compute)
        assert not fit.below_E0([x])[0] and np.isfinite(fit.predict([x])[0])
        assert fit.E0_ < l0.min() and fit.E1_ < l1.min()
        errors.append(abs(fit.predict([x])[0] / truth - 1))
    assert np.mean(errors) < 0.01


def test_below_E0_is_flagged_with_the_floor_and_intervals_cover():
    compute, l0, l1, x, truth, target = sweep(0, noise=0.002)
    fit = LossToLossFromCompute(n_bootstrap=40, level=0.9).fit(l0, l1, compute)
    assert fit.below_E0([fit.E0_ * 0.9]).tolist() == [True]
    assert fit.predict([fit.E0_ * 0.9])[0] == fit.E1_
    low, high = fit.interval(loss0=[x])[0]
    assert low < fit.predict([x])[0] < high and high - low < 0.1
    at = fit.predict_at_compute([target])
    assert at["loss1"][0] == pytest.approx(truth, rel=0.02)
    record = fit.to_dict()
    assert record["n_draws"] >= 30 and "compute frontier" in record["choices"]["compute_law"]


def test_bad_inputs_are_one_line_errors():
    with pytest.raises(InputError, match="distinct compute"):
        LossToLossFromCompute().fit([3, 2.9, 2.8], [3, 2.9, 2.8], [1, 2, 3])
    with pytest.raises(InputError, match="compute must be finite and positive"):
        LossToLossFromCompute().fit([3, 2.9, 2.8, 2.7], [3, 2.9, 2.8, 2.7], [1, 2, -3, 4])
