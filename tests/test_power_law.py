import numpy as np
import pytest

from scaling_callback.errors import InputError
from scaling_callback.fitting.power_law import PowerLawFit


def test_recovers_saturating_law_exactly():
    x = np.logspace(1, 5, 40)
    fit = PowerLawFit(n_bootstrap=0).fit(x, 0.3 + 5.0 * x**-0.6)
    assert fit.status_ == "ok"
    assert fit.alpha_ == pytest.approx(0.6, abs=1e-6)
    assert fit.E_ == pytest.approx(0.3, rel=1e-5)
    assert fit.A_ == pytest.approx(5.0, rel=1e-5)
    np.testing.assert_allclose(fit.predict(x), 0.3 + 5.0 * x**-0.6, rtol=1e-6)


def test_pure_power_law_has_zero_offset_and_interval_covers_truth():
    rng = np.random.default_rng(0)
    x = np.logspace(1, 4, 60)
    y = 2.0 * x**-0.8 * np.exp(0.03 * rng.standard_normal(x.size))
    fit = PowerLawFit(fit_offset=False, n_bootstrap=200).fit(x, y)
    assert fit.E_ == 0.0
    assert fit.alpha_ == pytest.approx(0.8, abs=0.02)
    low, high = fit.alpha_ci_
    assert low < 0.8 < high and high - low < 0.05
    assert fit.choices_["form"].startswith("A*x^(-alpha)")


def test_noisy_saturating_fit_interval_covers_truth():
    rng = np.random.default_rng(1)
    x = np.logspace(1, 5, 50)
    y = (1.0 + 10.0 * x**-0.5) * np.exp(0.01 * rng.standard_normal(x.size))
    fit = PowerLawFit(n_bootstrap=40).fit(x, y)
    assert fit.alpha_ci_[0] < 0.5 < fit.alpha_ci_[1]
    assert fit.E_ci_[0] < 1.0 < fit.E_ci_[1]


def test_groups_resample_whole_groups_and_are_recorded():
    rng = np.random.default_rng(2)
    x = np.tile(np.logspace(1, 3, 10), 4)
    groups = np.repeat(["a", "b", "c", "d"], 10)
    y = 3.0 * x**-1.0 * np.exp(0.05 * np.repeat(rng.standard_normal(4), 10))
    fit = PowerLawFit(fit_offset=False, n_bootstrap=50).fit(x, y, groups=groups)
    assert fit.choices_["bootstrap"]["unit"] == "4 groups"
    assert fit.alpha_ == pytest.approx(1.0, abs=1e-3)  # group offsets barely move the slope


def test_choices_record_every_fitting_decision():
    fit = PowerLawFit(n_bootstrap=0).fit([1, 2, 4, 8, 16], [2.0, 1.5, 1.25, 1.12, 1.06])
    for key in ("form", "loss", "delta", "optimizer", "starts", "points_used", "bootstrap"):
        assert key in fit.choices_
    assert fit.choices_["points_used"] == 5


@pytest.mark.parametrize(
    "x, y, message",
    [
        ([1, 2, 3, 4], [1, 2, 3], "differ in length"),
        ([1, 2, 3, 4], [1, -2, 3, 4], "y must be finite and positive"),
        ([0, 2, 3, 4], [1, 2, 3, 4], "x must be finite and positive"),
        ([1, 1, 2, 2], [1, 2, 3, 4], "distinct x"),
    ],
)
def test_bad_input_raises_one_line_input_error(x, y, message):
    with pytest.raises(InputError, match=message):
        PowerLawFit().fit(x, y)


def test_bad_hyperparameters_and_groups_raise():
    with pytest.raises(InputError, match="ci_level"):
        PowerLawFit(ci_level=1.5).fit([1, 2, 3, 4], [4, 3, 2, 1])
    with pytest.raises(InputError, match="groups"):
        PowerLawFit().fit([1, 2, 3, 4], [4, 3, 2, 1], groups=[0, 1])


def test_predict_before_fit_raises():
    with pytest.raises(InputError, match="before a successful fit"):
        PowerLawFit().predict([1.0])


def test_a_failed_optimisation_sets_a_status_instead_of_raising(monkeypatch):
    monkeypatch.setattr(PowerLawFit, "_minimise", lambda self, start, log_x, log_y: None)
    fit = PowerLawFit().fit([1, 2, 4, 8], [4.0, 2.0, 1.0, 0.5])
    assert fit.status_.startswith("failed:")
    assert np.isnan(fit.alpha_) and np.isnan(fit.alpha_ci_[0])


def test_a_line_search_that_gives_up_at_the_optimum_is_converged():
    """L-BFGS-B ends 'ABNORMAL' at a stationary point on this noisy curve; the fit is still ok."""
    x = np.linspace(300, 14000, 120)
    y = (2.7 + 40 * x**-0.5) * np.exp(np.random.default_rng(4).normal(0, 0.002, x.size))
    fit = PowerLawFit(n_bootstrap=0).fit(x, y)
    assert fit.status_ == "ok" and fit.E_ == pytest.approx(2.7, rel=0.05)
