import pytest

from toy_models import theory


def test_mrs_exponent_and_region():
    exponent = theory.mrs_exponent(0.5, "samples")
    assert exponent.value == 0.5 and "Maloney" in exponent.citation and "M" in exponent.validity
    with pytest.raises(ValueError, match="alpha > 0"):
        theory.mrs_exponent(-1.0)


def test_bordelon_frontier_matches_plrf_phase_ia():
    alpha, beta = 1.0, 0.25
    bordelon = theory.gradient_flow_frontier(*theory.bordelon_parameters(alpha, beta))
    paquette = theory.plrf_frontier(alpha, beta)
    assert bordelon["loss"].value == pytest.approx(paquette["loss"].value) == pytest.approx(0.5)
    assert bordelon["size"].value == pytest.approx(paquette["size"].value) == pytest.approx(1 / 3)
    assert bordelon["time"].value == pytest.approx(2 / 3)


def test_gradient_flow_exponents_refuse_outside_their_region():
    assert theory.gradient_flow_time_exponent(3.0, 2.0).value == pytest.approx(1.0)
    with pytest.raises(ValueError, match="1 < a < 1 \\+ b"):
        theory.gradient_flow_frontier(3.5, 2.0)
    with pytest.raises(ValueError, match="b > 1"):
        theory.gradient_flow_time_exponent(3.0, 0.5)


@pytest.mark.parametrize(
    "alpha, beta, phase, eta, xi",
    [
        (1.0, 0.25, "Ia", 0.5, 1 / 3),
        (1.0, 0.75, "II", 2.5 / 3.5, 0.75 / 1.75),
        (1.0, 1.5, "III", 0.75, 0.5),
    ],
)
def test_plrf_phases_and_exponents(alpha, beta, phase, eta, xi):
    assert theory.plrf_phase(alpha, beta) == phase
    exponents = theory.plrf_frontier(alpha, beta)
    assert exponents["loss"].value == pytest.approx(eta)
    assert exponents["size"].value == pytest.approx(xi)
    assert "Paquette" in exponents["loss"].citation


@pytest.mark.parametrize(
    "alpha, beta, message",
    [
        (0.4, 1.0, "high-dimensional line"),
        (1.0, 0.5, "boundary"),
        (1.0, 1.0, "boundary"),
        (1.0, -0.1, "beta > 0"),
    ],
)
def test_plrf_refuses_regions_it_does_not_cover(alpha, beta, message):
    with pytest.raises(ValueError, match=message):
        theory.plrf_frontier(alpha, beta)


def test_gradient_flow_has_no_phase_iii_formula():
    assert theory.plrf_gradient_flow_frontier(1.0, 0.75)["loss"].value == pytest.approx(2.5 / 3.5)
    with pytest.raises(ValueError, match="SGD noise"):
        theory.plrf_gradient_flow_frontier(1.0, 1.5)


def test_hutter_exponent():
    assert theory.hutter_exponent(1.0).value == pytest.approx(0.5)
    with pytest.raises(ValueError, match="alpha > 0"):
        theory.hutter_exponent(0.0)
