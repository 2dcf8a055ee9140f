"""Fit a broken neural scaling law (Caballero et al. 2023, eq. 1) with one or two breaks.

Why: downstream metrics, double descent and emergent abilities are not one power law; a smoothly
broken power law describes them and extrapolates past a break once its position has been seen.

Parameters are fitted in the log domain — (log a, log b, c0, c_i, log d_i, log f_i) — which keeps a,
b, d, f positive; residuals are log y − log ŷ under a summed Huber loss (as every fit here). Starts
come from a grid of (a, break positions at quantiles of log x, sharpness f), each completed by
linear least squares: with a fixed, log(y − a) is linear in (log b, c0, c_i). The best few are
optimised with tight tolerances and analytic gradients.

Example:
    >>> law = BrokenPowerLaw(n_breaks=1).fit(x, y)
    >>> law.predict(x_future), law.breaks_
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Sequence

import numpy as np
import pandas as pd

from scaling_callback.errors import InputError
from scaling_callback.fitting.huber import DEFAULT_DELTA, huber
from scaling_callback.fitting.inputs import positive_pair
from scaling_callback.fitting.multistart import TIGHT_OPTIONS, minimize_from_starts, pick_best_starts
from scaling_callback.laws.broken_power import bnsl, bnsl_power_term

FORM = "y = a + b*x^(-c0) * prod_i (1 + (x/d_i)^(1/f_i))^(-c_i*f_i) (Caballero et al. 2023, eq. 1)"
_A_FRACTIONS = (0.01, 0.5, 0.9)
_SHARPNESS = (0.1, 0.5)


class BrokenPowerLaw:
    """BNSL with `n_breaks` (1 or 2) breaks, fitted to positive y."""

    def __init__(
        self, n_breaks: int = 1, *, delta: float = DEFAULT_DELTA, n_best_starts: int = 6, optimizer: str = "L-BFGS-B"
    ) -> None:
        self.n_breaks = n_breaks
        self.delta = delta
        self.n_best_starts = n_best_starts
        self.optimizer = optimizer

    def fit(self, x: Sequence[float], y: Sequence[float]) -> BrokenPowerLaw:
        """Fit y(x); both must be positive (y is fitted in the log domain)."""
        started = time.perf_counter()
        x, y = self._validate(x, y)
        self._log_x, self._log_y = np.log(x), np.log(y)
        self._x = x
        starts = self._starts(x, y)
        scores = np.array([self._objective(s)[0] for s in starts])
        chosen = starts[pick_best_starts(scores, starts, self.n_best_starts)]
        best = minimize_from_starts(self._objective, chosen, self.optimizer).best
        self.warnings_: list[str] = []
        if best is None or not np.isfinite(best.fun):
            self._set(np.full(2 + 3 * self.n_breaks + 1, np.nan))
            self.objective_, self.converged_, self.status_ = float("nan"), False, "failed"
            self.warnings_.append("fit failed: no start reached a finite objective")
        else:
            self._set(best.x)
            self.objective_ = best.fun
            tolerance = 1e-6 * self.delta * x.size * max(1.0, float(np.abs(self._log_x).max()))
            self.converged_ = bool(best.grad_norm <= tolerance)
            self.status_ = "converged" if self.converged_ else "not_converged"
            if not self.converged_:
                self.warnings_.append(
                    f"optimizer did not converge: max |gradient| = {best.grad_norm:.3g} ({best.message})"
                )
            for position in self.d_:
                if not x.min() <= position <= x.max():
                    self.warnings_.append(
                        f"break at x = {position:.3g} lies outside the data [{x.min():.3g}, {x.max():.3g}]: it is not located by these points"
                    )
        self.n_points_ = int(x.size)
        self.choices_ = {
            "form": FORM,
            "n_breaks": self.n_breaks,
            "loss": "Huber on log y residuals, summed",
            "delta": self.delta,
            "optimizer": self.optimizer,
            "tolerances": TIGHT_OPTIONS[self.optimizer],
            "gradients": "analytic",
            "parameterisation": "log a, log b, c0, c_i, log d_i, log f_i",
            "starts_scored": int(len(starts)),
            "starts_optimized": int(len(chosen)),
            "points_used": self.n_points_,
        }
        self.fit_seconds_ = time.perf_counter() - started
        return self

    def _validate(self, x: Sequence[float], y: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
        if self.n_breaks not in (1, 2):
            raise InputError(f"n_breaks must be 1 or 2, got {self.n_breaks!r}")
        if self.optimizer not in TIGHT_OPTIONS:
            raise InputError(f"optimizer must be one of {sorted(TIGHT_OPTIONS)}, got {self.optimizer!r}")
        x_array, y_array = positive_pair(x, y, ("x", "y"))
        n_params = 3 + 3 * self.n_breaks
        if x_array.size < n_params:
            raise InputError(
                f"{x_array.size} points cannot determine the {n_params} parameters of a {self.n_breaks}-break law"
            )
        return x_array, y_array

    def _unpack(self, free: np.ndarray) -> tuple[float, float, float, np.ndarray, np.ndarray, np.ndarray]:
        n = self.n_breaks
        log_a, log_b, c0 = free[0], free[1], free[2]
        return (
            float(np.exp(log_a)),
            float(np.exp(log_b)),
            float(c0),
            free[3 : 3 + n],
            np.exp(free[3 + n : 3 + 2 * n]),
            np.exp(free[3 + 2 * n :]),
        )

    def _objective(self, free: np.ndarray) -> tuple[float, np.ndarray]:
        a, b, c0, c, d, f = self._unpack(np.asarray(free, dtype=float))
        with np.errstate(all="ignore"):
            term, dlog_term = bnsl_power_term(self._x, b, c0, c, d, f)
            prediction = a + term
            if not np.all(np.isfinite(prediction)) or np.any(prediction <= 0) or not np.all(np.isfinite(dlog_term)):
                return float("inf"), np.zeros(len(free))
            value, psi = huber(np.log(prediction) - self._log_y, self.delta)
            # ∂log ŷ/∂log a = a/ŷ; ∂log ŷ/∂θ = (T/ŷ)·∂log T/∂θ for every other θ
            jac = np.column_stack([a / prediction, (term / prediction)[:, None] * dlog_term])
        return value, psi @ jac

    def _starts(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        n = self.n_breaks
        quantiles = (0.2, 0.35, 0.5, 0.65, 0.8) if n == 1 else (0.2, 0.4, 0.6, 0.8)
        positions = np.quantile(self._log_x, quantiles)
        starts = []
        for fraction, sharpness, breaks in itertools.product(
            _A_FRACTIONS, _SHARPNESS, itertools.combinations(positions, n)
        ):
            a = fraction * float(y.min())
            log_d = np.array(breaks)
            f = np.full(n, sharpness)
            z = (self._log_x[:, None] - log_d[None, :]) / f[None, :]
            design = np.column_stack([np.ones_like(self._log_x), -self._log_x, -(f * np.logaddexp(0.0, z))])
            coef, *_ = np.linalg.lstsq(design, np.log(y - a), rcond=None)
            starts.append(np.concatenate([[np.log(a), coef[0], coef[1]], coef[2:], log_d, np.log(f)]))
        return np.array(starts)

    def _set(self, free: np.ndarray) -> None:
        self.a_, self.b_, self.c0_, c, d, f = self._unpack(np.asarray(free, dtype=float))
        self.c_, self.d_, self.f_ = np.asarray(c, dtype=float), np.asarray(d, dtype=float), np.asarray(f, dtype=float)

    @property
    def breaks_(self) -> np.ndarray:
        """Break positions d_i in x units."""
        return self.d_

    def predict(self, x: Sequence[float]) -> np.ndarray:
        """ŷ(x) from the fitted law."""
        return bnsl(np.asarray(x, dtype=float), self.a_, self.b_, self.c0_, self.c_, self.d_, self.f_)

    def to_dict(self) -> dict:
        """JSON-ready parameters, status, warnings and choices."""

        def plain(v: float):
            return float(v) if np.isfinite(v) else None

        return {
            "a": plain(self.a_),
            "b": plain(self.b_),
            "c0": plain(self.c0_),
            "c": [plain(v) for v in self.c_],
            "d": [plain(v) for v in self.d_],
            "f": [plain(v) for v in self.f_],
            "objective": plain(self.objective_),
            "converged": self.converged_,
            "status": self.status_,
            "warnings": list(self.warnings_),
            "n_points": self.n_points_,
            "fit_seconds": self.fit_seconds_,
            "choices": self.choices_,
        }

    def to_frame(self) -> pd.DataFrame:
        """One row of parameters (c_i, d_i, f_i numbered from 1) and status."""
        row = {"n_breaks": self.n_breaks, "a": self.a_, "b": self.b_, "c0": self.c0_}
        for i in range(self.n_breaks):
            row.update({f"c{i + 1}": self.c_[i], f"d{i + 1}": self.d_[i], f"f{i + 1}": self.f_[i]})
        row.update(
            {
                "objective": self.objective_,
                "converged": self.converged_,
                "n_points": self.n_points_,
                "warnings": " | ".join(self.warnings_),
            }
        )
        return pd.DataFrame([row])
