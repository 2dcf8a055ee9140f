import numpy as np
import pytest

from scaling_callback.fitting.curve_fitter import CurveFitter
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
