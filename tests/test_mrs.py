import numpy as np
import pytest

from scaling_callback.fitting.power_law import PowerLawFit
from toy_models import mrs


def test_latent_spectrum_is_the_mrs_power_law_and_validates():
    np.testing.assert_allclose(mrs.latent_spectrum(1.0, 3), [1.0, 0.25, 1 / 9])
    with pytest.raises(ValueError, match="alpha"):
        mrs.latent_spectrum(0.0, 10)
    with pytest.raises(ValueError, match="latent_dim"):
        mrs.latent_spectrum(1.0, 0)


def test_finite_sample_identity_matches_monte_carlo():
    rng = np.random.default_rng(0)
    spectrum = mrs.latent_spectrum(1.0, 200)
    features = mrs.sample_features(10, 200, rng)
    for noise in (0.0, 0.01):
        exact = mrs.generalization_loss(features, spectrum, 40, noise=noise)
        mean, sem = mrs.monte_carlo_loss(features, spectrum, 40, rng, noise=noise, n_draws=300)
        assert abs(exact - mean) < 4 * sem + 1e-12


def test_duality_features_and_samples_give_the_same_exact_loss():
    rng = np.random.default_rng(1)
    spectrum = mrs.latent_spectrum(0.5, 300)
    gaussian = rng.standard_normal((20, 300))
    by_features = mrs.loss_infinite_data(gaussian, spectrum)
    by_samples = mrs.loss_infinite_features(gaussian * np.sqrt(spectrum), spectrum)
    assert by_features == pytest.approx(by_samples, rel=1e-10)


def test_infinite_features_matches_monte_carlo_with_many_features():
    rng = np.random.default_rng(2)
    spectrum = mrs.latent_spectrum(1.0, 100)
    wide = mrs.sample_features(3000, 100, rng)  # N >> M: the minimum-norm fit on x itself
    mean, _ = mrs.monte_carlo_loss(wide, spectrum, 15, rng, noise=0.01, n_draws=60)
    exact = np.mean(
        [mrs.loss_infinite_features(mrs.sample_latents(15, spectrum, rng), spectrum, 0.01) for _ in range(300)]
    )
    assert mean == pytest.approx(exact, rel=0.05)


def test_deterministic_equivalent_tracks_the_exact_loss():
    rng = np.random.default_rng(3)
    spectrum = mrs.latent_spectrum(1.0, 2000)
    exact = np.mean([mrs.loss_infinite_data(mrs.sample_features(64, 2000, rng), spectrum) for _ in range(4)])
    assert mrs.deterministic_equivalent(64, spectrum) == pytest.approx(exact, rel=0.05)


def test_exponent_in_features_lands_near_alpha():
    sizes = np.array([16, 23, 32, 45, 64, 91, 128])
    losses = np.concatenate([mrs.scaling_curve(1.0, sizes, 16, seed, "features") for seed in range(2)])
    fit = PowerLawFit(fit_offset=False, n_bootstrap=0).fit(np.tile(sizes, 2), losses)
    assert 0.9 < fit.alpha_ < 1.05


def test_double_descent_peaks_at_n_equals_p():
    rng = np.random.default_rng(4)
    spectrum = mrs.latent_spectrum(1.0, 400)
    loss = {
        n: mrs.generalization_loss(mrs.sample_features(n, 400, rng), spectrum, 32, rng, n_draws=6)
        for n in (8, 31, 33, 128)
    }
    assert loss[31] > 3 * loss[8] and loss[33] > 3 * loss[128]
    assert mrs.theory_curve(32, 32, spectrum) == np.inf


def test_power_law_stops_once_features_span_the_latent_space():
    rng = np.random.default_rng(5)
    spectrum = mrs.latent_spectrum(1.0, 64)
    assert mrs.loss_infinite_data(mrs.sample_features(64, 64, rng), spectrum, noise=1e-3) == 1e-3
    assert mrs.loss_infinite_data(mrs.sample_features(32, 64, rng), spectrum, noise=1e-3) > 1e-3


def test_monte_carlo_is_required_at_and_past_the_peak():
    spectrum = mrs.latent_spectrum(1.0, 50)
    features = mrs.sample_features(10, 50, np.random.default_rng(6))
    with pytest.raises(ValueError, match="needs Monte-Carlo"):
        mrs.generalization_loss(features, spectrum, 11)
    with pytest.raises(ValueError, match="P > N \\+ 1"):
        mrs.finite_sample_factor(10, 11)
    with pytest.raises(ValueError, match="direction"):
        mrs.scaling_curve(1.0, [8], 4, 0, "width")
