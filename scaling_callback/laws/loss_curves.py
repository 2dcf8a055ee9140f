"""Schedule-aware loss-curve laws of one training run, with their exact Jacobians.

All four share the power-law decay in the LR sum of Luo et al. 2025 (MPL, eq. 1),
L0 + A·(S1(t) + S_W)^(−α), and differ in the loss-drop term that LR decreases buy:

- ``mpl``: multi-power law, Luo et al., ICLR 2025, eq. (1)–(2).
- ``opl``: one-power law, the same paper's baseline (eq. 1 with B = 0).
- ``lldl``: linear loss-drop law, the same paper's §3 baseline: −B·(η_0 − η_t).
- ``momentum``: Tissue et al. 2024, "Scaling Law with Learning Rate Annealing", eq. (5):
  −C·S2 with S2 = Σ_i m_i, m_i = λ·m_{i−1} + (η_{i−1} − η_i). Unrolled,
  S2(t) = Σ_k (η_{k−1} − η_k)·(1 − λ^(t−k+1))/(1 − λ), the MPL sum with an exponential kernel.
  Its S1 counts warmup steps at η_max (the paper's convention), not S_W.

Each law maps a parameter vector (in ``param_names`` order) and :class:`LRTerms` to the loss at
every point, and to the Jacobian d loss / d parameter (shape: parameters × points).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from scaling_callback.laws.lr_terms import LRTerms


@dataclass(frozen=True)
class CurveLaw:
    """A per-run loss-curve law: its name, parameters and which of them only LR decreases identify."""

    name: str
    param_names: tuple[str, ...]
    drop_param_names: tuple[str, ...]
    citation: str

    def loss(self, params: np.ndarray, terms: LRTerms) -> np.ndarray:
        """Predicted loss at every point of ``terms``."""
        return self.loss_and_jacobian(params, terms, jacobian=False)[0]

    def loss_and_jacobian(
        self, params: np.ndarray, terms: LRTerms, jacobian: bool = True
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Predicted loss and (optionally) its Jacobian, parameters × points."""
        p = dict(zip(self.param_names, np.asarray(params, dtype=float)))
        warmup_as_peak = self.name == "momentum"
        s = terms.s1 + (terms.warmup_steps * terms.peak_lr if warmup_as_peak else terms.warmup_sum)
        decay, d_decay = _power_decay(p["A"], p["alpha"], s)
        drop, d_drop = _DROPS[self.name](p, terms, jacobian)
        loss = p["L0"] + decay - drop
        if not jacobian:
            return loss, None
        rows = [np.ones_like(loss), d_decay[0], d_decay[1]] + [-row for row in d_drop]
        return loss, np.stack(rows)


def _power_decay(a: float, alpha: float, s: np.ndarray) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """A·s^(−α) and its derivatives in A and α (MPL eq. 1, first term)."""
    log_s = np.log(np.maximum(s, 1e-300))
    power = np.exp(-alpha * log_s)
    return a * power, (power, -a * power * log_s)


def _no_drop(p: dict, terms: LRTerms, jacobian: bool) -> tuple[np.ndarray, list[np.ndarray]]:
    return np.zeros(terms.n_points), []


def _linear_drop(p: dict, terms: LRTerms, jacobian: bool) -> tuple[np.ndarray, list[np.ndarray]]:
    """B·(η_0 − η_t): Luo et al. 2025, §3 (linear loss-drop baseline)."""
    gap = terms.peak_lr - terms.lr
    return p["B"] * gap, [gap]


def _multi_power_drop(p: dict, terms: LRTerms, jacobian: bool) -> tuple[np.ndarray, list[np.ndarray]]:
    """LD(t) = B·Σ_k (η_{k−1} − η_k)·G(η_k^(−γ)·S_k(t)), G(x) = 1 − (C·x + 1)^(−β): Luo et al. 2025, eq. (2)."""
    b, c, beta, gamma = p["B"], p["C"], p["beta"], p["gamma"]
    x = np.exp(-gamma * terms.block_log_lr)[terms.pair_block] * terms.pair_sum
    cx = c * x
    log_u = np.log1p(cx)
    u_pow = np.exp(-beta * log_u)  # (1 + Cx)^(−β)
    weighted = terms.pair_dlr
    if not jacobian:
        return b * terms.point_sums(weighted * (1.0 - u_pow)), []
    slope_x = weighted * beta * u_pow * (x / (1.0 + cx))  # Δη·β(1+Cx)^(−β−1)·x
    rows = np.stack(
        [weighted - weighted * u_pow, slope_x, weighted * u_pow * log_u, slope_x * terms.block_log_lr[terms.pair_block]]
    )
    inner, d_c, d_beta, d_gamma = terms.point_sums(rows)
    return b * inner, [inner, b * d_c, b * d_beta, -b * c * d_gamma]


def _momentum_drop(p: dict, terms: LRTerms, jacobian: bool) -> tuple[np.ndarray, list[np.ndarray]]:
    """C·S2(t), S2 = Σ_k (η_{k−1} − η_k)·(1 − λ^(t−k+1))/(1 − λ): Tissue et al. 2024, eq. (5)."""
    c, lam = p["C"], p["lam"]
    n = terms.pair_lag + 1.0
    lam_n = np.exp(n * np.log(lam))
    kernel = (1.0 - lam_n) / (1.0 - lam)
    s2 = terms.point_sums(terms.pair_dlr * kernel)
    if not jacobian:
        return c * s2, []
    d_kernel = (kernel - n * lam_n / lam) / (1.0 - lam)
    return c * s2, [s2, c * terms.point_sums(terms.pair_dlr * d_kernel)]


_DROPS = {"opl": _no_drop, "lldl": _linear_drop, "mpl": _multi_power_drop, "momentum": _momentum_drop}

MULTI_POWER = CurveLaw(
    "mpl",
    ("L0", "A", "alpha", "B", "C", "beta", "gamma"),
    ("B", "C", "beta", "gamma"),
    "Luo et al., A Multi-Power Law for Loss Curve Prediction Across LR Schedules, ICLR 2025, eq. (1)-(2)",
)
ONE_POWER = CurveLaw("opl", ("L0", "A", "alpha"), (), "Luo et al., ICLR 2025, eq. (1) with B = 0 (one-power baseline)")
LINEAR_DROP = CurveLaw(
    "lldl", ("L0", "A", "alpha", "B"), ("B",), "Luo et al., ICLR 2025, section 3 (linear loss-drop baseline)"
)
MOMENTUM = CurveLaw(
    "momentum",
    ("L0", "A", "alpha", "C", "lam"),
    ("C", "lam"),
    "Tissue et al., Scaling Law with Learning Rate Annealing, 2024, eq. (5)",
)
CURVE_LAWS: dict[str, CurveLaw] = {law.name: law for law in (MULTI_POWER, ONE_POWER, LINEAR_DROP, MOMENTUM)}
