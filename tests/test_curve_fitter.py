import numpy as np
import pytest

from scaling_callback.errors import InputError
from scaling_callback.fitting.curve_fitter import CurveFitter
from scaling_callback.fitting.curves import Curve
from tests.curve_factory import TRUE_MPL, synthetic_curve

NOISE = 0.002  # log-normal noise on the loss, about the seed-to-seed spread of real curves


@pytest.fixture(scope="module")
def fitted():
    curves = [synthetic_curve(kind, NOISE, seed) for seed, kind in enumerate(("constant", "cosine", "wsd"))]
    return CurveFitter("mpl").fit(curves)


def test_fit_returns_self_and_records_choices(fitted):
    assert fitted.status_ == "ok" and fitted.drop_term_ == "fitted"
    record = fitted.to_dict()
    for key in ("law", "convention", "loss", "delta", "optimizer", "starts", "points_used", "warmup", "interval"):
        assert key in record["choices"]
    assert record["choices"]["points_used"] == fitted.n_points_ > 0


def test_recovers_the_power_part_and_the_asymptote(fitted):
    assert fitted.params_["L0"] == pytest.approx(TRUE_MPL["L0"], abs=0.15)
    assert fitted.params_["alpha"] == pytest.approx(TRUE_MPL["alpha"], abs=0.1)


def test_predicts_a_held_out_schedule_within_the_noise(fitted):
    held_out = synthetic_curve("two_stage")  # noiseless truth
    predicted = fitted.predict(held_out.schedule, held_out.steps)
    assert np.mean(np.abs(predicted - held_out.loss) / held_out.loss) < NOISE


def test_final_prediction_has_an_interval_around_the_truth(fitted):
    held_out = synthetic_curve("two_stage")
    final = fitted.predict_final(held_out.schedule)
    assert final.low < final.loss < final.high
    assert abs(final.loss - held_out.loss[-1]) / held_out.loss[-1] < 2 * NOISE


@pytest.mark.parametrize("law", ["opl", "lldl", "momentum"])
def test_baselines_fit_and_predict(law):
    curves = [synthetic_curve(kind, NOISE, seed) for seed, kind in enumerate(("constant", "cosine"))]
    fitter = CurveFitter(law).fit(curves)
    assert fitter.status_ == "ok"
    predicted = fitter.predict(curves[1].schedule, curves[1].steps)
    limit = 0.05 if law == "opl" else 0.01  # the one-power law cannot describe a decay
    assert np.mean(np.abs(predicted - curves[1].loss) / curves[1].loss) < limit


def test_momentum_lambda_can_be_fixed():
    fitter = CurveFitter("momentum", fixed={"lam": 0.999}).fit([synthetic_curve("cosine", NOISE)])
    assert fitter.params_["lam"] == 0.999 and fitter.choices_["fixed"] == {"lam": 0.999}


def test_no_decay_and_no_prior_leaves_future_decay_unconstrained():
    constant = synthetic_curve("constant", NOISE)
    fitter = CurveFitter("mpl").fit([constant])
    assert fitter.drop_term_ == "unconstrained" and fitter.drop_params_ is None
    final = fitter.predict_final(synthetic_curve("cosine").schedule)
    assert final.drop_term == "unconstrained" and np.isnan(final.loss) and np.isnan(final.low)
    assert final.high > synthetic_curve("cosine").loss[-1]  # the no-decay prediction bounds it from above
    # a future without decay is still predicted normally
    assert np.isfinite(fitter.predict_final(constant.schedule).loss)


def test_prior_makes_a_wsd_run_predictable_before_its_decay(fitted):
    wsd = synthetic_curve("wsd", NOISE, seed=7)
    before_decay = Curve(wsd.schedule, wsd.steps[:70], wsd.loss[:70], "wsd-prefix")  # decay starts at step 3240
    fitter = CurveFitter("mpl", prior=fitted.drop_params_).fit([before_decay])
    assert fitter.drop_term_ == "prior"
    final = fitter.predict_final(wsd.schedule)
    truth = synthetic_curve("wsd").loss[-1]
    assert abs(final.loss - truth) / truth < 0.01


def test_too_few_points_is_an_input_error():
    curve = synthetic_curve("cosine")
    with pytest.raises(InputError, match="fewer than 3"):
        CurveFitter().fit([Curve(curve.schedule, curve.steps[:2], curve.loss[:2])])


def test_unknown_law_and_fixed_parameter_are_named():
    curve = synthetic_curve("cosine")
    with pytest.raises(InputError, match="unknown law 'mpx'"):
        CurveFitter("mpx").fit([curve])
    with pytest.raises(InputError, match="lam"):
        CurveFitter("mpl", fixed={"lam": 0.9}).fit([curve])


def test_numerical_failure_returns_a_status_not_an_exception(monkeypatch):
    import scaling_callback.fitting.curve_fitter as module

    monkeypatch.setattr(module, "grid_starts", lambda *args, **kwargs: [])
    fitter = CurveFitter().fit([synthetic_curve("cosine")])
    assert fitter.status_.startswith("failed: ValueError") and fitter.params_ == {}
    with pytest.raises(RuntimeError, match="no parameters"):
        fitter.predict_final(synthetic_curve("cosine").schedule)
