import numpy as np
import pytest

from scaling_callback.fitting.curve_fitter import CurveFitter
from scaling_callback.fitting.curve_interval import TRANSFER_PRIOR_SD_LOG, transfer_variance
from scaling_callback.fitting.curves import Curve
from tests.curve_factory import synthetic_curve

NOISE = 0.003


def test_interval_covers_the_true_final_loss_at_about_its_level():
    """Online case: a cosine run seen up to 60 %, a finished constant run beside it; 12 noise draws."""
    truth = synthetic_curve("cosine").loss[-1]
    covered, widths = [], []
    for seed in range(12):
        cosine = synthetic_curve("cosine", NOISE, seed=100 + seed)
        constant = synthetic_curve("constant", NOISE, seed=200 + seed)
        seen = Curve(cosine.schedule, cosine.steps[:57], cosine.loss[:57], "cosine-prefix")
        final = CurveFitter("mpl", level=0.9).fit([constant, seen]).predict_final(cosine.schedule)
        covered.append(final.low <= truth <= final.high)
        widths.append(final.high - final.low)
    coverage = np.mean(covered)
    assert 0.7 <= coverage <= 1.0, coverage
    assert np.median(widths) < 0.05 * truth  # informative, not a blanket interval


def test_residual_autocorrelation_is_measured_within_curves():
    fitter = CurveFitter("mpl").fit([synthetic_curve("cosine", NOISE), synthetic_curve("wsd", NOISE, seed=3)])
    assert 0.0 <= fitter.interval_.autocorrelation < 0.5  # independent noise: little autocorrelation
    assert fitter.interval_.sigma == pytest.approx(NOISE, rel=0.35)


def test_transfer_variance_is_the_prior_without_backtests_and_follows_large_errors():
    prior = TRANSFER_PRIOR_SD_LOG**2
    assert transfer_variance(np.zeros(0)) == pytest.approx(prior)
    assert transfer_variance(np.full(3, TRANSFER_PRIOR_SD_LOG)) == pytest.approx(prior)
    assert transfer_variance(np.full(3, 10 * TRANSFER_PRIOR_SD_LOG)) > 30 * prior  # the data outweigh the prior
    assert transfer_variance(np.zeros(8)) < 0.25 * prior  # an exact law on many curves shrinks it


def test_a_schedule_seen_to_its_end_gets_no_transfer_term_and_another_does():
    wsd = synthetic_curve("wsd", NOISE, seed=5)
    fitter = CurveFitter("mpl", level=0.9).fit([wsd])
    own = fitter.predict_final(wsd.schedule)
    other = fitter.predict_final(synthetic_curve("cosine").schedule)
    z = 1.6448536269514722  # the 90 % normal quantile
    assert np.log(other.high / other.loss) >= z * TRANSFER_PRIOR_SD_LOG * 0.999
    assert np.log(own.high / own.loss) < z * TRANSFER_PRIOR_SD_LOG  # only the fit's own spread and noise
    assert fitter.transfer_errors_.size == 0  # one curve: nothing to backtest


def test_leave_one_curve_out_errors_are_measured_on_every_fitted_curve():
    curves = [synthetic_curve(kind, NOISE, seed=i) for i, kind in enumerate(("cosine", "wsd", "constant"))]
    fitter = CurveFitter("mpl").fit(curves)
    assert fitter.transfer_errors_.shape == (3,)
    assert np.all(np.abs(fitter.transfer_errors_) < 0.02)  # the law is exact here: only noise and spread
    assert fitter.to_dict()["transfer_sd_log"] == pytest.approx(np.sqrt(fitter.interval_.transfer_variance))
