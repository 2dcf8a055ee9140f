"""Fit the loss-to-loss shifted power law L1 = K·(L0 − E0)^κ + E1 (Brandfonbrener et al. 2024).

Why: a sweep logs a training loss and several validation losses; once L1 is a known function of L0,
any forecast of the training loss (approach 3, a per-run law) carries over to every validation set
(train→test), and a sweep on one dataset predicts a sweep on another once models are paired by
compute (train→train).

The fit minimises a summed Huber loss of log residuals (as approach 3 does) over
(log K, log κ, u0, u1) with E0 = min(L0)·σ(u0) and E1 = min(L1)·σ(u1), which keeps K, κ > 0 and
both offsets below the lowest observed loss. Starts: a grid of (E0, κ), each completed by least
squares for (K, E1) — cheap, and close to the optimum — then the best few optimised tightly.

Example:
    >>> LossToLossLaw().fit(train_loss, test_loss).predict(forecast_train_loss)
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
import pandas as pd

from scaling_callback.errors import InputError
from scaling_callback.fitting.huber import DEFAULT_DELTA, huber
from scaling_callback.fitting.inputs import positive_pair
from scaling_callback.fitting.multistart import TIGHT_OPTIONS, minimize_from_starts, pick_best_starts
from scaling_callback.laws.loss_to_loss import shifted_power_law, shifted_power_law_gradient

FORM = "L1 = K*(L0 - E0)^kappa + E1 (Brandfonbrener et al. 2024)"
_E0_FRACTIONS = (0.05, 0.3, 0.6, 0.8, 0.9, 0.95, 0.98)
_KAPPAS = (0.5, 0.8, 1.0, 1.3, 1.7, 2.5)


def _sigmoid(u: float) -> float:
    return float(np.exp(-np.logaddexp(0.0, -u)))


def _logit(p: float) -> float:
    return float(np.log(p) - np.log1p(-p))


class LossToLossLaw:
    """Shifted power law between two losses of the same models.

    Args:
        E0, E1: the two irreducible losses, fixed (as the paper takes them: each from its own compute
            fit, see :mod:`scaling_callback.fitting.loss_to_loss_compute`); then only K and κ are
            fitted. None (both): all four are fitted, the offsets kept below the lowest losses.
    """

    def __init__(
        self,
        *,
        delta: float = DEFAULT_DELTA,
        n_best_starts: int = 4,
        optimizer: str = "L-BFGS-B",
        E0: float | None = None,
        E1: float | None = None,
    ) -> None:
        self.delta = delta
        self.n_best_starts = n_best_starts
        self.optimizer = optimizer
        self.E0 = E0
        self.E1 = E1

    def fit(self, loss0: Sequence[float], loss1: Sequence[float], *, pairing: str = "same models") -> LossToLossLaw:
        """Fit L1 as a function of L0 over paired points (same model, or models paired by compute)."""
        started = time.perf_counter()
        if self.optimizer not in TIGHT_OPTIONS:
            raise InputError(f"optimizer must be one of {sorted(TIGHT_OPTIONS)}, got {self.optimizer!r}")
        if (self.E0 is None) != (self.E1 is None):
            raise InputError(f"give both offsets E0 and E1 or neither, got E0={self.E0!r}, E1={self.E1!r}")
        if self.E0 is not None:
            return self._fit_fixed_offsets(loss0, loss1, pairing, started)
        l0, l1 = _positive_pair(loss0, loss1)
        self._l0, self._log_l1 = l0, np.log(l1)
        self._m0, self._m1 = float(l0.min()), float(l1.min())
        starts = self._starts(l0, l1)
        scores = np.array([self._objective(s)[0] for s in starts])
        chosen = starts[pick_best_starts(scores, starts, self.n_best_starts)]
        result = minimize_from_starts(self._objective, chosen, self.optimizer)
        best = result.best
        self.warnings_: list[str] = []
        if best is None or not np.isfinite(best.fun):
            self.K_ = self.kappa_ = self.E0_ = self.E1_ = self.objective_ = float("nan")
            self.converged_, self.status_ = False, "failed"
            self.warnings_.append("fit failed: no start reached a finite objective")
        else:
            self.K_, self.kappa_, self.E0_, self.E1_ = self._params(best.x)
            self.objective_ = best.fun
            tolerance = 1e-6 * self.delta * l0.size * max(1.0, float(np.abs(np.log(l0)).max()))
            self.converged_ = bool(best.grad_norm <= tolerance)
            self.status_ = "converged" if self.converged_ else "not_converged"
            if not self.converged_:
                self.warnings_.append(
                    f"optimizer did not converge: max |gradient| = {best.grad_norm:.3g} ({best.message})"
                )
            if self.E0_ > 0.999 * self._m0 or self.E1_ > 0.999 * self._m1:
                self.warnings_.append(
                    "an offset E0 or E1 sits at the lowest observed loss: the shift is not identified by these points"
                )
            if np.ptp(np.log(l0)) < 0.02:
                self.warnings_.append("L0 spans less than 2%: the law is barely constrained")
        self.n_points_ = int(l0.size)
        self.choices_ = {
            "form": FORM,
            "pairing": pairing,
            "loss": "Huber on log L1 residuals, summed",
            "delta": self.delta,
            "optimizer": self.optimizer,
            "tolerances": TIGHT_OPTIONS[self.optimizer],
            "gradients": "analytic",
            "constraints": "K, kappa > 0; 0 < E0 < min L0; 0 < E1 < min L1",
            "starts_scored": int(len(starts)),
            "starts_optimized": int(len(chosen)),
            "points_used": self.n_points_,
        }
        self.fit_seconds_ = time.perf_counter() - started
        return self

    def _fit_fixed_offsets(
        self, loss0: Sequence[float], loss1: Sequence[float], pairing: str, started: float
    ) -> LossToLossLaw:
        """K and κ with E0, E1 given: a log-log regression start, then the summed Huber on log L1, tightly."""
        l0, l1 = _positive_pair(loss0, loss1, min_points=2)
        E0, E1 = float(self.E0), float(self.E1)
        for name, offset, values in (("E0", E0, l0), ("E1", E1, l1)):
            if not (np.isfinite(offset) and 0 <= offset < values.min()):
                raise InputError(
                    f"{name} = {offset!r} must be finite, >= 0 and below the lowest loss it offsets ({values.min():.6g})"
                )
        log_gap0, log_l1 = np.log(l0 - E0), np.log(l1)
        slope, intercept = np.polyfit(log_gap0, np.log(l1 - E1), 1) if np.ptp(log_gap0) > 0 else (1.0, 0.0)
        start = np.array([intercept, np.log(max(slope, 1e-3))])

        def objective(free: np.ndarray) -> tuple[float, np.ndarray]:
            K, kappa = np.exp(free)
            power = np.exp(kappa * log_gap0)
            prediction = K * power + E1
            value, psi = huber(np.log(prediction) - log_l1, self.delta)
            d_log_k = K * power / prediction
            return value, np.array([psi @ d_log_k, psi @ (d_log_k * kappa * log_gap0)])

        result = minimize_from_starts(objective, start[None, :], self.optimizer)
        best = result.best
        self.warnings_ = []
        self.K_, self.kappa_ = (float(v) for v in np.exp(best.x))
        self.E0_, self.E1_, self.objective_ = E0, E1, float(best.fun)
        tolerance = 1e-6 * self.delta * l0.size
        self.converged_ = bool(best.grad_norm <= tolerance)
        self.status_ = "converged" if self.converged_ else "not_converged"
        if not self.converged_:
            self.warnings_.append(f"optimizer did not converge: max |gradient| = {best.grad_norm:.3g} ({best.message})")
        self._m0, self._m1 = float(l0.min()), float(l1.min())
        self.n_points_ = int(l0.size)
        self.choices_ = {
            "form": FORM,
            "pairing": pairing,
            "loss": "Huber on log L1 residuals, summed",
            "delta": self.delta,
            "optimizer": self.optimizer,
            "tolerances": TIGHT_OPTIONS[self.optimizer],
            "gradients": "analytic",
            "offsets": "E0, E1 given (fixed); K, kappa fitted",
            "constraints": "K, kappa > 0",
            "starts": "least squares of log(L1 - E1) on log(L0 - E0)",
            "points_used": self.n_points_,
        }
        self.fit_seconds_ = time.perf_counter() - started
        return self

    def _params(self, free: np.ndarray) -> tuple[float, float, float, float]:
        log_k, log_kappa, u0, u1 = (float(v) for v in free)
        return float(np.exp(log_k)), float(np.exp(log_kappa)), self._m0 * _sigmoid(u0), self._m1 * _sigmoid(u1)

    def _objective(self, free: np.ndarray) -> tuple[float, np.ndarray]:
        K, kappa, E0, E1 = self._params(free)
        with np.errstate(all="ignore"):
            prediction = shifted_power_law(self._l0, K, kappa, E0, E1)
            if not np.all(np.isfinite(prediction)) or np.any(prediction <= 0):
                return float("inf"), np.zeros(4)
            value, psi = huber(np.log(prediction) - self._log_l1, self.delta)
            jac = shifted_power_law_gradient(self._l0, K, kappa, E0, E1) / prediction[:, None]
        s0, s1 = E0 / self._m0, E1 / self._m1
        chain = np.array([K, kappa, E0 * (1.0 - s0), E1 * (1.0 - s1)])
        return value, (psi @ jac) * chain

    def _starts(self, l0: np.ndarray, l1: np.ndarray) -> np.ndarray:
        starts = []
        for fraction in _E0_FRACTIONS:
            E0 = fraction * self._m0
            for kappa in _KAPPAS:
                z = (l0 - E0) ** kappa
                slope, intercept = np.polyfit(z, l1, 1) if np.ptp(z) > 0 else (1.0, 0.5 * self._m1)
                E1 = float(np.clip(intercept, 0.02 * self._m1, 0.98 * self._m1))
                if not (slope > 0 and E1 == intercept):  # refit K with E1 held inside its bounds
                    slope = float(z @ (l1 - E1) / (z @ z))
                K = max(float(slope), 1e-12)
                starts.append([np.log(max(K, 1e-12)), np.log(kappa), _logit(fraction), _logit(E1 / self._m1)])
        return np.array(starts)

    def predict(self, loss0: Sequence[float]) -> np.ndarray:
        """L1 predicted from L0; where L0 ≤ E0 (see :meth:`below_E0`) the law's floor E1, its limit as L0 → E0."""
        values = np.asarray(loss0, dtype=float)
        return np.where(
            self.below_E0(values), self.E1_, shifted_power_law(values, self.K_, self.kappa_, self.E0_, self.E1_)
        )

    def below_E0(self, loss0: Sequence[float]) -> np.ndarray:
        """Where a loss to map lies at or below E0, outside the law's domain."""
        return np.asarray(loss0, dtype=float) <= self.E0_

    def to_dict(self) -> dict:
        """JSON-ready parameters, status, warnings and choices."""
        params = {"K": self.K_, "kappa": self.kappa_, "E0": self.E0_, "E1": self.E1_, "objective": self.objective_}
        return {
            **{k: (float(v) if np.isfinite(v) else None) for k, v in params.items()},
            "converged": self.converged_,
            "status": self.status_,
            "warnings": list(self.warnings_),
            "n_points": self.n_points_,
            "fit_seconds": self.fit_seconds_,
            "choices": self.choices_,
        }

    def to_frame(self) -> pd.DataFrame:
        """One row of parameters and status."""
        return pd.DataFrame(
            [
                {
                    "K": self.K_,
                    "kappa": self.kappa_,
                    "E0": self.E0_,
                    "E1": self.E1_,
                    "objective": self.objective_,
                    "converged": self.converged_,
                    "n_points": self.n_points_,
                    "pairing": self.choices_["pairing"],
                    "warnings": " | ".join(self.warnings_),
                }
            ]
        )


def fit_train_to_test(
    train_loss: Sequence[float], test_losses: dict[str, Sequence[float]], **options
) -> dict[str, LossToLossLaw]:
    """One law per validation set: its loss against the training loss of the same checkpoints or models."""
    return {
        name: LossToLossLaw(**options).fit(train_loss, values, pairing=f"train -> {name}, same models")
        for name, values in test_losses.items()
    }


def pair_by_compute(
    flops0: Sequence[float], loss0: Sequence[float], flops1: Sequence[float], loss1: Sequence[float], n_points: int = 20
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Best loss reached within each budget on both datasets, at log-spaced budgets in their common range.

    Returns (budgets, loss0 at them, loss1 at them): each sweep's compute frontier (running minimum
    of loss over increasing FLOPs) interpolated in log C.
    """
    fronts = []
    for name, flops, loss in (("flops0", flops0, loss0), ("flops1", flops1, loss1)):
        c, l = _positive_pair(flops, loss, names=(name, "loss" + name[-1]), min_points=2)
        order = np.argsort(c)
        fronts.append((np.log(c[order]), np.minimum.accumulate(l[order])))
    low = max(front[0][0] for front in fronts)
    high = min(front[0][-1] for front in fronts)
    if not high > low:
        raise InputError("the two sweeps share no FLOP range to pair models by compute")
    log_budgets = np.linspace(low, high, n_points)
    paired = [np.interp(log_budgets, log_c, best) for log_c, best in fronts]
    return np.exp(log_budgets), paired[0], paired[1]


def fit_train_to_train(
    flops0: Sequence[float],
    loss0: Sequence[float],
    flops1: Sequence[float],
    loss1: Sequence[float],
    n_points: int = 20,
    **options,
) -> LossToLossLaw:
    """Law between the training losses of two sweeps on different datasets, models paired by compute."""
    _, paired0, paired1 = pair_by_compute(flops0, loss0, flops1, loss1, n_points)
    return LossToLossLaw(**options).fit(
        paired0, paired1, pairing=f"train -> train, paired by compute at {n_points} budgets"
    )


def _positive_pair(
    first: Sequence[float], second: Sequence[float], names: tuple[str, str] = ("loss0", "loss1"), min_points: int = 4
) -> tuple[np.ndarray, np.ndarray]:
    first_array, second_array = positive_pair(first, second, names)
    if first_array.size < min_points:
        raise InputError(f"{first_array.size} points cannot determine the 4 parameters K, kappa, E0, E1")
    return first_array, second_array
