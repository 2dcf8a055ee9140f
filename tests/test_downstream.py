"""FLP-style downstream prediction: sigmoid link recovery, the link choice, predictive intervals."""

from __future__ import annotations

import numpy as np
import pytest

from scaling_callback.errors import InputError
from scaling_callback.fitting.downstream import ComputeLossStage, DownstreamLaw, SigmoidLink, interior_extremum_p
from scaling_callback.laws.downstream import sigmoid_link, sigmoid_link_gradient

TRUE = {"floor": 0.25, "ceiling": 0.85, "mid": 2.7, "scale": 0.1}


def sweep(seed: int, n_questions: int = 2000, **link):
    rng = np.random.default_rng(seed)
    compute = np.geomspace(1e18, 1e22, 12)
    loss = (1.9 + 1.6 * (compute / 1e18) ** -0.15) * np.exp(rng.normal(0, 0.003, compute.size))
    accuracy = rng.binomial(n_questions, sigmoid_link(loss, **(TRUE | link))) / n_questions
    return compute, loss, accuracy


def test_link_formula_and_gradient():
    loss = np.array([2.0, 2.7, 3.5])
    values = sigmoid_link(loss, **TRUE)
    assert values[1] == pytest.approx(0.55) and values[0] > values[1] > values[2] > 0.25
    base = np.array(list(TRUE.values()))
    gradient = sigmoid_link_gradient(loss, *base)
    for i in range(4):
        step = np.zeros(4)
        step[i] = 1e-7
        numeric = (sigmoid_link(loss, *(base + step)) - sigmoid_link(loss, *base)) / 1e-7
        np.testing.assert_allclose(gradient[:, i], numeric, rtol=1e-4, atol=1e-9)


def test_sigmoid_recovers_its_parameters_and_direction():
    loss = np.linspace(2.2, 3.4, 40)
    fit = SigmoidLink(chance=0.25).fit(loss, sigmoid_link(loss, **TRUE))
    assert fit.params_ == pytest.approx(TRUE, rel=1e-5)
    error_rate = 1 - sigmoid_link(loss, **TRUE)  # rises with the loss
    falling = SigmoidLink(direction=-1).fit(loss, error_rate)
    np.testing.assert_allclose(falling.predict(loss), error_rate, atol=1e-6)


def test_turns_are_detected_and_monotone_curves_are_not():
    x = np.linspace(0, 1, 30)
    assert interior_extremum_p(x, 1 / (1 + np.exp(-(x - 0.3) / 0.05))) == 1.0  # a sigmoid: monotone
    bump = np.exp(-((x - 0.5) ** 2) / 0.02) + np.random.default_rng(0).normal(0, 0.05, x.size)
    assert interior_extremum_p(x, bump) < 1e-3


def test_largest_models_predicted_within_their_interval():
    inside = 0
    for seed in range(4):
        compute, loss, accuracy = sweep(seed)
        law = DownstreamLaw(chance=0.25, n_bootstrap=40).fit(compute[:10], loss[:10], accuracy[:10])
        assert law.link_ == "sigmoid" and law.status_ == "ok"
        low, high = law.interval(compute[10:]).T
        inside += int(np.sum((low <= accuracy[10:]) & (accuracy[10:] <= high)))
        np.testing.assert_allclose(law.predict(compute[10:]), accuracy[10:], atol=0.06)
    assert inside >= 6  # of 8 held-out evaluations (90 % nominal; the benchmark measures coverage over many tasks)


def test_shared_stage_one_and_bnsl_for_a_metric_that_turns():
    compute, loss, accuracy = sweep(0)
    stage1 = ComputeLossStage(n_bootstrap=0).fit(compute, loss)
    turning = 0.6 - 0.5 * (np.log(compute / 1e20)) ** 2 / 30  # rises then falls with compute
    law = DownstreamLaw(link="auto").fit(compute, loss, turning, stage1=stage1)
    assert law.link_ == "bnsl" and any("turns" in w for w in law.warnings_)
    predicted = law.predict(compute)
    assert 0 < int(np.argmax(predicted)) < compute.size - 1  # it turns, as the metric does
    np.testing.assert_allclose(predicted, turning, atol=0.05)
    plain = DownstreamLaw(chance=0.25).fit(compute, loss, accuracy, stage1=stage1)
    assert plain.compute_law_ is stage1.law_ and np.isnan(plain.interval([1e22])).all()  # no draws, no interval


def test_bad_inputs_raise_one_line_errors():
    compute, loss, accuracy = sweep(0)
    with pytest.raises(InputError, match="link must be"):
        DownstreamLaw(link="cubic").fit(compute, loss, accuracy)
    with pytest.raises(InputError, match="distinct compute"):
        DownstreamLaw().fit(compute[:3], loss[:3], accuracy[:3])
    with pytest.raises(InputError, match="chance"):
        DownstreamLaw(chance=0.99, n_bootstrap=0).fit(compute, loss, accuracy)
