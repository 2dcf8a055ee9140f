"""Closed-form scaling exponents of the toy models, each with its source and where it holds.

Every function returns an :class:`Exponent` (value, citation, validity) and raises ``ValueError``
naming the violated condition when asked outside the region where the formula is established —
it never extrapolates a number there. All exponents are asymptotic: finite sizes bias measured
values (see docs/reference.md §5 and the ``reproduce`` command's notes).
"""

from __future__ import annotations

from dataclasses import dataclass

MRS = "Maloney, Roberts & Sully 2022, 'A Solvable Model of Neural Scaling Laws', arXiv:2210.16859"
BAP = "Bordelon, Atanasov & Pehlevan 2024, 'A Dynamical Model of Neural Scaling Laws', ICML 2024"
PQXP = "Paquette, Paquette, Xiao & Pennington 2024, '4+3 Phases of Compute-Optimal Neural Scaling Laws', arXiv:2405.15074"
HUTTER = "Hutter 2021, 'Learning Curve Theory', arXiv:2102.04074"


@dataclass(frozen=True)
class Exponent:
    """A closed-form exponent: ``value`` with the paper it comes from and the region it holds in."""

    name: str
    value: float
    citation: str
    validity: str


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


def mrs_exponent(alpha: float, direction: str = "features") -> Exponent:
    """Loss ∝ N^(−α) (direction "features", P = ∞) or P^(−α) ("samples", N = ∞) for λ_I ∝ I^(−(1+α))."""
    _require(direction in ("features", "samples"), f"direction must be 'features' or 'samples'; got {direction!r}")
    _require(alpha > 0, f"MRS exponent needs alpha > 0; got alpha={alpha!r}")
    symbol = "N" if direction == "features" else "P"
    return Exponent(f"loss ∝ {symbol}^(−α)", float(alpha), MRS,
                    "alpha > 0, ridgeless, 1 << N, P << M (latent dimension); |N − P| large")


def bordelon_parameters(alpha: float, beta: float) -> tuple[float, float]:
    """(a, b) of Bordelon et al. for the power-law random-feature model: b = 2α, a = 2α + 2β.

    λ_k ∝ k^(−2α) and (w*_k)²λ_k = k^(−2β)·k^(−2α) give b = 2α and a = 2α + 2β.
    """
    return 2.0 * alpha + 2.0 * beta, 2.0 * alpha


def gradient_flow_time_exponent(a: float, b: float) -> Exponent:
    """Loss ∝ t^(−(a−1)/b) under gradient flow at infinite width (Bordelon et al. 2024)."""
    _require(b > 1, f"gradient-flow time exponent needs b > 1 (trace-class spectrum); got b={b!r}")
    _require(a > 1, f"gradient-flow time exponent needs a > 1 (finite target power); got a={a!r}")
    return Exponent("loss ∝ t^(−(a−1)/b)", (a - 1.0) / b, BAP, "a > 1, b > 1, N → ∞")


def gradient_flow_frontier(a: float, b: float) -> dict[str, Exponent]:
    """Compute-optimal exponents with C = N·t (Bordelon et al. 2024): loss, N* and t* versus C.

    L* ∝ C^(−(a−1)/(1+b)), N* ∝ C^(1/(1+b)), t* ∝ C^(b/(1+b)); valid for 1 < a < 1 + b.
    """
    _require(b > 1, f"gradient-flow frontier needs b > 1; got b={b!r}")
    _require(1 < a < 1 + b, f"gradient-flow frontier (Bordelon et al.) needs 1 < a < 1 + b; got a={a!r}, b={b!r}")
    validity = "b > 1 and 1 < a < 1 + b"
    return {
        "loss": Exponent("L* ∝ C^(−(a−1)/(1+b))", (a - 1.0) / (1.0 + b), BAP, validity),
        "size": Exponent("N* ∝ C^(1/(1+b))", 1.0 / (1.0 + b), BAP, validity),
        "time": Exponent("t* ∝ C^(b/(1+b))", b / (1.0 + b), BAP, validity),
    }


def plrf_phase(alpha: float, beta: float) -> str:
    """Phase of the power-law random-feature model above the high-dimensional line 2α = 1: Ia, II or III."""
    _require(alpha > 0 and beta > 0, f"PLRF needs alpha > 0 and beta > 0; got alpha={alpha!r}, beta={beta!r}")
    _require(alpha > 0.5, f"alpha={alpha!r} <= 1/2 lies below the high-dimensional line (Phases Ib, Ic, IV): "
                          "their exponents depend on how v grows with d and are not covered here")
    _require(beta != 0.5, "2*beta = 1 is the boundary between Phase Ia and Phases II/III; no single exponent there")
    if beta < 0.5:
        return "Ia"
    _require(beta != alpha, "beta = alpha is the boundary between Phases II and III; no single exponent there")
    return "II" if beta < alpha else "III"


def plrf_frontier(alpha: float, beta: float) -> dict[str, Exponent]:
    """One-pass SGD compute-optimal exponents (Paquette et al. 2024): P* ∝ f^(−η), d* ∝ f^ξ, f = r·d."""
    phase = plrf_phase(alpha, beta)
    if phase == "Ia":
        eta, xi = (2 * alpha + 2 * beta - 1) / (2 * alpha + 1), 1 / (2 * alpha + 1)
        region = "2β < 1, α > 1/2"
    elif phase == "II":
        eta, xi = (2 * alpha + 2 * beta - 1) / (2 * (alpha + beta)), beta / (alpha + beta)
        region = "2β > 1, 1/2 < α, β < α"
    else:
        eta, xi = 1 - 1 / (4 * alpha), 0.5
        region = "2β > 1, 1/2 < α < β"
    return {
        "loss": Exponent(f"P* ∝ f^(−η), Phase {phase}", float(eta), PQXP, region),
        "size": Exponent(f"d* ∝ f^ξ, Phase {phase}", float(xi), PQXP, region),
    }


def plrf_gradient_flow_frontier(alpha: float, beta: float) -> dict[str, Exponent]:
    """Frontier of the PLRF model trained by gradient flow (no SGD noise), f = d·t.

    Phase Ia is Bordelon et al.'s 1 < a < 1 + b with a = 2α + 2β, b = 2α; Phase II balances two
    noise-free terms of Paquette et al. (their F_pp and F_ac), so gradient flow shares its exponents.
    In Phase III the SGD-noise term sets the frontier, which gradient flow lacks: no formula here.
    """
    phase = plrf_phase(alpha, beta)
    if phase == "III":
        raise ValueError(f"alpha={alpha!r}, beta={beta!r} is Phase III, whose frontier is set by SGD noise; "
                         "gradient flow has no established exponent there")
    if phase == "Ia":
        exponents = gradient_flow_frontier(*bordelon_parameters(alpha, beta))
        return {"loss": exponents["loss"], "size": exponents["size"]}
    return plrf_frontier(alpha, beta)


def hutter_exponent(alpha: float) -> Exponent:
    """Error ∝ n^(−α/(1+α)) of a memoriser on features with Zipf frequencies ∝ i^(−(1+α)) (Hutter 2021)."""
    _require(alpha > 0, f"Hutter's exponent needs alpha > 0 (Zipf exponent > 1); got alpha={alpha!r}")
    return Exponent("error ∝ n^(−α/(1+α))", alpha / (1.0 + alpha), HUTTER, "alpha > 0, noiseless memoriser")
