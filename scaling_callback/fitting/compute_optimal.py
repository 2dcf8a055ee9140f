"""Chinchilla approach 3 across the runs of a sweep: fit L(N, D), derive the compute-optimal frontier.

``ComputeOptimalLaw().fit(N, D, loss)`` fits log L ≈ LSE(a − α·log N, b − β·log D, e) (Hoffmann
et al. 2022, eq. 3) with a summed Huber loss (δ = 1e-3) and analytic gradients. The 4,500-start
grid of the paper is scored in one vectorised pass and only the best ``n_best_starts`` are optimised
to tight tolerances (Besiroglu et al. 2024: default L-BFGS-B tolerances stall near the start).
Variants: α = β (``tie_exponents``) and a fixed irreducible loss (``fixed_E``). Points with a known
uncertainty (``loss_sd``: an evaluated final's standard error, a forecast's predictive SD) count by
their precision: each log residual is divided by its point's relative SD before the Huber loss
(:func:`~scaling_callback.fitting.chinchilla_objective.standardising_weights`), an SD that also holds
the law's own misfit, estimated from a first weighted fit
(:func:`~scaling_callback.fitting.chinchilla_objective.misfit_variance`): precise points count more
only as far as the law can follow them.

Example:
    >>> law = ComputeOptimalLaw().fit(params, tokens, loss)
    >>> law.a_, law.frontier([1e21, 1e22])
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

import numpy as np
import pandas as pd

from scaling_callback.errors import InputError
from scaling_callback.fitting import compute_diagnostics as diag
from scaling_callback.fitting.chinchilla_objective import (
    Variant,
    huber_objective,
    misfit_variance,
    score_starts,
    standardising_weights,
    validate_points,
)
from scaling_callback.fitting.huber import DEFAULT_DELTA
from scaling_callback.fitting.multistart import (
    TIGHT_OPTIONS,
    TIME_BUDGET_SECONDS,
    minimize_from_starts,
    pick_best_starts,
)
from scaling_callback.laws.chinchilla import (
    CHINCHILLA_START_GRID,
    THETA_NAMES,
    chinchilla_loss,
    compute_optimal,
    frontier_exponents,
    theta_to_params,
)

FORM = (
    "L(N, D) = E + A/N^alpha + B/D^beta (Hoffmann et al. 2022, eq. 2), fitted as "
    "log L ~ LSE(a - alpha*log N, b - beta*log D, e) (eq. 3)"
)


class ComputeOptimalLaw:
    """Chinchilla approach 3: L(N, D) = E + A/N^α + B/D^β and its compute-optimal frontier."""

    def __init__(
        self,
        *,
        delta: float = DEFAULT_DELTA,
        tie_exponents: bool = False,
        fixed_E: float | None = None,
        n_best_starts: int = 8,
        start_grid: dict[str, Sequence[float]] | None = None,
        optimizer: str = "L-BFGS-B",
        optimizer_options: dict | None = None,
        flops_per_param_token: float = 6.0,
        n_convention: str = "total",
        compare_tied: bool = True,
    ) -> None:
        self.delta = delta
        self.tie_exponents = tie_exponents
        self.fixed_E = fixed_E
        self.n_best_starts = n_best_starts
        self.start_grid = start_grid
        self.optimizer = optimizer
        self.optimizer_options = optimizer_options
        self.flops_per_param_token = flops_per_param_token
        self.n_convention = n_convention
        self.compare_tied = compare_tied

    # ------------------------------------------------------------------ fitting
    def fit(
        self,
        params: Sequence[float],
        tokens: Sequence[float] | None = None,
        loss: Sequence[float] | None = None,
        *,
        flops: Sequence[float] | None = None,
        loss_sd: Sequence[float] | None = None,
    ) -> ComputeOptimalLaw:
        """Fit on one point per (N, D, loss); D may instead be derived from FLOPs as D = C/(k·N).

        ``loss_sd`` (one positive SD per point, optional) weights each point by its precision and is kept
        (``loss_sd_``) for the bootstrap's predictive draws.
        """
        started = time.perf_counter()
        self._check_settings()
        if loss is None:
            raise InputError("loss is required")
        n, d, l, c, sd = validate_points(params, tokens, loss, flops, loss_sd)
        self.loss_sd_ = sd
        self._weights, self._deltas, reference_sd = standardising_weights(l, sd, self.delta)
        n_free = Variant.build(self.tie_exponents, self.fixed_E).n_free
        if n.size < n_free:
            raise InputError(f"{n.size} points cannot determine {n_free} parameters")
        d, k, flop_convention, tokens_source = self._flop_convention(n, d, c)
        self._deadline = started + TIME_BUDGET_SECONDS  # shared with the alpha = beta comparison below
        n_scored = self._fit_logs(np.log(n), np.log(d), np.log(l), k)
        self.misfit_sd_ = None
        if sd is not None and self.status_ not in ("failed", "degenerate"):
            residuals = np.log(l) - np.log(self.predict(n, d))
            extra = misfit_variance(residuals, sd / l, n_free)
            self.misfit_sd_ = math.sqrt(extra)
            if extra > 0:  # refit with each point's variance plus the law's misfit (its own time budget)
                self._weights, self._deltas, reference_sd = standardising_weights(
                    l, l * np.sqrt((sd / l) ** 2 + extra), self.delta
                )
                self._deadline = time.perf_counter() + TIME_BUDGET_SECONDS
                n_scored = self._fit_logs(np.log(n), np.log(d), np.log(l), k)
        self.choices_ = self._choices(n_scored, len(self.top_grid_starts_), flop_convention, tokens_source)
        misfit = "not estimated (the first fit failed)" if self.misfit_sd_ is None else f"{self.misfit_sd_:.3g}"
        self.choices_["weights"] = (
            "none: every point counts alike"
            if sd is None
            else "each log residual divided by its point's relative SD, sqrt((loss_sd/loss)^2 + misfit^2) with the "
            f"law's misfit {misfit} (DerSimonian-Laird, from a first fit weighted by loss_sd alone), "
            f"relative to the median {reference_sd:.3g}: Huber of standardised residuals (weights s^2, thresholds "
            "delta/s, s = median/SD)"
        )
        self.fit_seconds_ = time.perf_counter() - started
        return self

    def _objective(self, free: np.ndarray) -> tuple[float, np.ndarray]:
        return huber_objective(
            free, self._log_n, self._log_d, self._log_loss, self.variant_, self._deltas, self._weights
        )

    def _check_settings(self) -> None:
        if not self.delta > 0:
            raise InputError(f"delta must be positive, got {self.delta!r}")
        if self.fixed_E is not None and not (np.isfinite(self.fixed_E) and self.fixed_E > 0):
            raise InputError(f"fixed_E must be positive, got {self.fixed_E!r}")
        if self.optimizer not in TIGHT_OPTIONS:
            raise InputError(f"optimizer must be one of {sorted(TIGHT_OPTIONS)}, got {self.optimizer!r}")
        if self.n_best_starts < 1:
            raise InputError(f"n_best_starts must be at least 1, got {self.n_best_starts!r}")
        if not self.flops_per_param_token > 0:
            raise InputError(f"flops_per_param_token must be positive, got {self.flops_per_param_token!r}")
        if self.n_convention not in ("total", "non-embedding"):
            raise InputError(f"n_convention must be 'total' or 'non-embedding', got {self.n_convention!r}")

    def _flop_convention(
        self, n: np.ndarray, d: np.ndarray | None, c: np.ndarray | None
    ) -> tuple[np.ndarray, float, str, str]:
        k = float(self.flops_per_param_token)
        if d is None:
            convention = f"C = {k:g}*N*D; tokens derived from the flops column as D = C/({k:g}*N)"
            return c / (k * n), k, convention, f"derived: D = C/({k:g}*N)"
        if c is None:
            return d, k, f"C = {k:g}*N*D (Kaplan/Chinchilla estimate; no FLOPs measured)", "given"
        ratio = c / (n * d)
        k = float(np.median(ratio))
        spread = float(np.max(np.abs(ratio / k - 1.0)))
        convention = (
            f"measured FLOPs: C = k*N*D with k = {k:.4g} (median of C/(N*D) over the points, spread +-{spread:.1%}); "
            "frontier budgets are in measured FLOPs"
        )
        return d, k, convention, "given"

    def _free_grid(self) -> np.ndarray:
        grid_spec = {
            name: np.asarray(values, dtype=float) for name, values in (self.start_grid or CHINCHILLA_START_GRID).items()
        }
        missing = set(THETA_NAMES) - set(grid_spec)
        if missing:
            raise InputError(f"start_grid lacks {sorted(missing)} (needs {list(THETA_NAMES)})")
        full = np.stack(np.meshgrid(*(grid_spec[name] for name in THETA_NAMES), indexing="ij"), axis=-1).reshape(-1, 5)
        self._grid_box = np.array([[v.min(), v.max()] for v in (grid_spec[name] for name in THETA_NAMES)])
        columns = list(self.variant_.source_columns)
        thetas = np.zeros((0, 5))
        if len(full):
            selected = np.unique(full[:, columns], axis=0)
            thetas = np.zeros((len(selected), 5))
            thetas[:, columns] = selected
        return self.variant_.free_from_theta(thetas)

    def _set_solution(self, result) -> None:
        best = result.best
        self.warnings_: list[str] = []
        if best is None or not np.isfinite(best.fun):
            self._set_params(np.full(5, np.nan))
            self.objective_, self.converged_, self.status_ = float("nan"), False, "failed"
            self.diagnostics_ = {"n_optimized_starts": len(result.outcomes)}
            self.warnings_.append("fit failed: no start reached a finite objective")
            return
        theta = self.variant_.theta(best.x)
        self._set_params(theta)
        self.objective_ = best.fun
        grad_tolerance = diag.RELATIVE_GRADIENT_TOLERANCE * diag.gradient_scale(self._log_n, self._log_d, self.delta)
        self.converged_ = bool(best.grad_norm <= grad_tolerance)
        self.status_ = "converged" if self.converged_ else "not_converged"
        front = self.frontier([self.max_flops_])[["n_opt", "d_opt"]].to_numpy()
        if not all(np.isfinite(v) for v in self.params_.values()) or not np.all(np.isfinite(front) & (front > 0)):
            # e.g. A = exp(a) overflowing, or α or β at 0 (no frontier): the points do not determine it
            self.converged_, self.status_ = False, "degenerate"
            self.warnings_.append(
                "degenerate fit: "
                + ", ".join(f"{k} = {v:.3g}" for k, v in self.params_.items())
                + " - these points do not determine L(N, D) and its compute-optimal frontier"
            )
        boundary, outside = self._grid_position(best.start, theta)
        names = self._free_names()
        correlation, condition = diag.parameter_correlations(theta, self._log_n, self._log_d, self.variant_.matrix)
        pairs = diag.collinear_pairs(correlation, names)
        tokens_per_param = self._tokens_per_param_at(self.max_flops_)
        self.diagnostics_ = {
            "grad_norm": best.grad_norm,
            "grad_tolerance": grad_tolerance,
            "iterations": best.iterations,
            "optimizer_message": best.message,
            "best_start": dict(zip(self._free_names(), self._uncentered(best.start).tolist())),
            "best_start_on_grid_boundary": boundary,
            "optimum_outside_grid": outside,
            "n_optimized_starts": len(result.outcomes),
            "n_starts_reaching_best": result.n_reaching_best(),
            "correlations": {
                f"{names[i]}~{names[j]}": float(correlation[i, j])
                for i in range(len(names))
                for j in range(i + 1, len(names))
            },
            "condition_number": condition,
            "tokens_per_param_at_max_flops": tokens_per_param,
            "max_flops": self.max_flops_,
        }
        self.warnings_ += diag.convergence_warnings(
            self.converged_,
            best.grad_norm,
            grad_tolerance,
            best.message,
            result.n_reaching_best(),
            len(result.outcomes),
            boundary,
            outside,
        )
        min_loss = float(np.exp(self._log_loss.min()))
        exponents_free = not self.tie_exponents
        tied_note = None
        if exponents_free and self.compare_tied and self._looks_pathological(tokens_per_param):
            tied_note = self._tied_comparison()
        self.warnings_ += diag.identifiability_warnings(
            self.params_, pairs, condition, tokens_per_param, self.max_flops_, min_loss, exponents_free, tied_note
        )

    def _set_params(self, theta: np.ndarray) -> None:
        self.theta_ = np.asarray(theta, dtype=float)
        with np.errstate(over="ignore"):  # a fit that ran off to A or B = inf says so in its warnings, not on stderr
            values = theta_to_params(self.theta_)
        self.E_, self.A_, self.B_, self.alpha_, self.beta_ = (values[k] for k in ("E", "A", "B", "alpha", "beta"))
        with np.errstate(all="ignore"):
            self.a_, self.b_ = (float(v) for v in frontier_exponents(self.alpha_, self.beta_))

    def _free_names(self) -> list[str]:
        return [
            THETA_NAMES[c] if not (self.tie_exponents and THETA_NAMES[c] == "alpha") else "alpha=beta"
            for c in self.variant_.source_columns
        ]

    def _uncentered(self, free: np.ndarray) -> np.ndarray:
        """The free entries of θ (a, b, e, α, β as fitted) for a centred free vector."""
        return self.variant_.theta(free)[list(self.variant_.source_columns)]

    def _grid_position(self, start: np.ndarray, theta: np.ndarray) -> tuple[list[str], list[str]]:
        names = self._free_names()
        box = self._grid_box[list(self.variant_.source_columns)]
        start = self._uncentered(start)
        boundary = [
            f"{name} = {value:g}"
            for name, value, (low, high) in zip(names, start, box)
            if np.isclose(value, low) or np.isclose(value, high)
        ]
        free_theta = theta[list(self.variant_.source_columns)]
        outside = [
            f"{name} = {value:.3g} not in [{low:g}, {high:g}]"
            for name, value, (low, high) in zip(names, free_theta, box)
            if not low <= value <= high
        ]
        return boundary, outside

    def _tokens_per_param_at(self, flops: float) -> float:
        front = self.frontier([flops])
        return float(front["tokens_per_param"].iloc[0])

    def _looks_pathological(self, tokens_per_param: float) -> bool:
        ratio = max(self.alpha_, self.beta_) / max(min(self.alpha_, self.beta_), 1e-12)
        low, high = diag.PLAUSIBLE_TOKENS_PER_PARAM
        return ratio > diag.EXPONENT_RATIO_LIMIT or not low <= tokens_per_param <= high

    def _tied_comparison(self) -> str:
        tied = ComputeOptimalLaw(**{**self.get_params(), "tie_exponents": True, "compare_tied": False})
        tied._deadline = getattr(self, "_deadline", None)
        tied._weights, tied._deltas = self._weights, self._deltas
        tied._fit_logs(self._log_n, self._log_d, self._log_loss, self.flops_per_param_token_)
        at = self.max_flops_
        increase = tied.objective_ / self.objective_ - 1.0 if self.objective_ > 0 else float("nan")
        return (
            f"alpha = beta gives alpha = {tied.alpha_:.3f}, {tied._tokens_per_param_at(at):.3g} tokens per parameter at "
            f"C = {at:.3g}, objective {increase:+.1%}"
        )

    def _fit_logs(self, log_n: np.ndarray, log_d: np.ndarray, log_loss: np.ndarray, k: float) -> int:
        """Score the grid, optimise the best starts, set the solution; returns the number of starts scored."""
        self.variant_ = Variant.build(self.tie_exponents, self.fixed_E, (float(np.mean(log_n)), float(np.mean(log_d))))
        self._log_n, self._log_d, self._log_loss = log_n, log_d, log_loss
        self.flops_per_param_token_, self.n_points_ = k, int(log_n.size)
        self.max_flops_ = float(k * np.exp(np.max(log_n + log_d)))  # largest budget in the data, fit's FLOP units
        grid = self._free_grid()
        scores = score_starts(grid, log_n, log_d, log_loss, self.variant_, self._deltas, self._weights)
        self.top_grid_starts_ = grid[pick_best_starts(scores, grid, self.n_best_starts)]
        deadline = getattr(self, "_deadline", None)
        budget = TIME_BUDGET_SECONDS if deadline is None else max(deadline - time.perf_counter(), 0.0)
        result = minimize_from_starts(
            self._objective,
            self.top_grid_starts_,
            self.optimizer,
            self.optimizer_options,
            self.variant_.bounds(),
            time_budget=budget,
        )
        self.local_optima_ = _distinct_optima(result)
        self._set_solution(result)
        return len(grid)

    # ------------------------------------------------------------------ results
    @property
    def params_(self) -> dict[str, float]:
        return {"E": self.E_, "A": self.A_, "B": self.B_, "alpha": self.alpha_, "beta": self.beta_}

    def get_params(self) -> dict:
        """Constructor arguments (sklearn convention)."""
        names = (
            "delta",
            "tie_exponents",
            "fixed_E",
            "n_best_starts",
            "start_grid",
            "optimizer",
            "optimizer_options",
            "flops_per_param_token",
            "n_convention",
            "compare_tied",
        )
        return {name: getattr(self, name) for name in names}

    def predict(self, params: Sequence[float], tokens: Sequence[float]) -> np.ndarray:
        """Predicted loss L(N, D)."""
        return chinchilla_loss(params, tokens, **self.params_)

    def frontier(self, flops: Sequence[float]) -> pd.DataFrame:
        """N_opt, D_opt, tokens per parameter and loss at budgets C (same FLOP convention as the fit)."""
        flops = np.atleast_1d(np.asarray(flops, dtype=float))
        if np.any(~np.isfinite(flops) | (flops <= 0)):
            raise InputError(f"target FLOPs must be positive, got {flops.tolist()}")
        with np.errstate(all="ignore"):
            front = compute_optimal(flops, **self.params_, flops_per_param_token=self.flops_per_param_token_)
        return pd.DataFrame(
            {
                "flops": flops,
                "n_opt": front.n_opt,
                "d_opt": front.d_opt,
                "tokens_per_param": front.d_opt / front.n_opt,
                "loss": front.loss,
            }
        )

    def _choices(self, n_grid: int, n_optimized: int, flop_convention: str, tokens_source: str) -> dict:
        grid_spec = self.start_grid or CHINCHILLA_START_GRID
        return {
            "form": FORM,
            "variant": self.variant_.label,
            "loss": "Huber on log-loss residuals, summed over points",
            "delta": self.delta,
            "optimizer": self.optimizer,
            "tolerances": {**TIGHT_OPTIONS[self.optimizer], **(self.optimizer_options or {})},
            "gradients": "analytic",
            "start_grid": {
                name: [float(np.min(v)), float(np.max(v)), int(np.size(v))] for name, v in grid_spec.items()
            },
            "starts_scored": n_grid,
            "starts_optimized": n_optimized,
            "points_used": self.n_points_,
            "n_convention": f"{self.n_convention} parameters",
            "flop_convention": flop_convention,
            "flops_per_param_token": self.flops_per_param_token_,
            "tokens": tokens_source,
        }

    def to_dict(self, target_flops: Sequence[float] | None = None) -> dict:
        """Plain-Python result (JSON-ready): parameters, exponents, status, warnings, choices, diagnostics."""
        out = {
            **{k: _plain(v) for k, v in self.params_.items()},
            "a": _plain(self.a_),
            "b": _plain(self.b_),
            "objective": _plain(self.objective_),
            "fit_seconds": self.fit_seconds_,
            "converged": self.converged_,
            "status": self.status_,
            "warnings": list(self.warnings_),
            "n_points": self.n_points_,
            "misfit_sd": _plain(getattr(self, "misfit_sd_", None)),
            "choices": self.choices_,
            "diagnostics": _plain_tree(self.diagnostics_),
        }
        if target_flops is not None:
            out["frontier"] = [
                {k: _plain(v) for k, v in row.items()} for row in self.frontier(target_flops).to_dict("records")
            ]
        return out

    def to_frame(self) -> pd.DataFrame:
        """One row: parameters, exponents, objective, status and the main choices (rows of variants concatenate)."""
        row = {
            **self.params_,
            "a": self.a_,
            "b": self.b_,
            "objective": self.objective_,
            "converged": self.converged_,
            "status": self.status_,
            "n_points": self.n_points_,
            "fit_seconds": self.fit_seconds_,
            "variant": self.choices_["variant"],
            "delta": self.delta,
            "optimizer": self.optimizer,
            "flop_convention": self.choices_["flop_convention"],
            "n_convention": self.n_convention,
            "warnings": " | ".join(self.warnings_),
        }
        return pd.DataFrame([row])


def _distinct_optima(result, limit: int = 3) -> np.ndarray:
    """Up to `limit` optima with distinct objectives (best first): good starts for resample refits."""
    kept: list = []
    for outcome in result.outcomes:
        if np.isfinite(outcome.fun) and all(abs(outcome.fun - other.fun) > 1e-7 * abs(other.fun) for other in kept):
            kept.append(outcome)
        if len(kept) == limit:
            break
    return np.array([o.x for o in kept]) if kept else np.empty((0, 0))


def _plain(value):
    if isinstance(value, (np.floating, float)):
        return float(value) if np.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def _plain_tree(value):
    if isinstance(value, dict):
        return {k: _plain_tree(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain_tree(v) for v in value]
    return _plain(value)
