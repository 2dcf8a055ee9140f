"""Fit a per-run loss-curve law (MPL or a baseline) to one or more curves with shared parameters.

The objective is the published one (Luo et al. 2025, §4; Hoffmann et al. 2022): Huber loss
(δ = 1e-3) on log-loss residuals, summed over every point of every curve. It is minimised by
L-BFGS-B with exact gradients in bounded, rescaled coordinates (:mod:`curve_space`) from the best
few starts of a cheaply scored grid.

Identifiability: the drop-term parameters are constrained only by points observed after an LR
decrease. Without one, they come from ``prior`` (e.g. the fits of finished runs of the same
sweep) or stay unknown, and predictions of a future decay say so instead of inventing them.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
from threadpoolctl import threadpool_limits

from scaling_callback.errors import InputError
from scaling_callback.fitting.curve_interval import (
    TRANSFER_PRIOR_SD_LOG,
    TRANSFER_PRIOR_WEIGHT,
    FinalPrediction,
    PredictiveInterval,
    transfer_variance,
)
from scaling_callback.fitting.curve_space import grid_starts, internal_bounds, to_internal, to_natural
from scaling_callback.fitting.curves import Curve, bin_curve
from scaling_callback.fitting.huber import DEFAULT_DELTA, huber
from scaling_callback.fitting.multistart import BUDGET_STATUS, TIME_BUDGET_SECONDS, minimize_until
from scaling_callback.laws.loss_curves import CURVE_LAWS
from scaling_callback.laws.lr_terms import LRTerms, lr_terms
from scaling_callback.laws.schedule import Schedule

MIN_POINTS = 3
COARSE_FACTOR = 4  # starts are refined on max_blocks / 4 blocks per curve, then polished
START_ITERATIONS = 120  # every start gets this budget; only the best continues
MAX_ITERATIONS = 600
JACKKNIFE_CHUNKS = 4  # groups per curve when fewer than three curves are fitted
JACKKNIFE_ITERATIONS = 80
# Longer curves are fitted as this many equal-width bin means: a fit's (point, LR block) pairs stay
# under 2048 x 512 = 1M (~120 MB through an MPL pass, see lr_terms) whatever the log's length; the
# MPL paper fits ~170 logged points per curve (Luo et al. 2025, §4).
MAX_POINTS_PER_CURVE = 2048
DECAY_FRACTION_FOR_IDENTIFIABILITY = 0.05  # an LR decrease of ≥ 5 % of the peak seen before a fitted point


class CurveFitter:
    """Per-run law fitter: ``fit(curves)`` returns self; ``params_``, ``predict``, ``predict_final``.

    Args:
        law: one of ``mpl``, ``opl``, ``lldl``, ``momentum``.
        prior: drop-term parameters to use when the data contain no LR decrease.
        fixed: parameters held at given values (e.g. ``{"lam": 0.999}`` for the momentum law).
        delta: Huber threshold on log-loss residuals.
        n_starts: grid starts refined by L-BFGS-B.
        max_blocks: change blocks per curve while fitting (see :mod:`lr_terms`); None is exact.
        level: coverage of the predictive interval.
        jackknife: add the delete-one-group jackknife to the interval (one extra refit per group).
        time_budget: wall-clock seconds for the whole fit (None: unbounded); spent, the best point so
            far is kept, ``converged_`` is False and the jackknife falls back to the Laplace interval.
    """

    def __init__(
        self,
        law: str = "mpl",
        prior: dict[str, float] | None = None,
        fixed: dict[str, float] | None = None,
        delta: float = DEFAULT_DELTA,
        n_starts: int = 3,
        max_blocks: int | None = 512,
        level: float = 0.9,
        jackknife: bool = True,
        time_budget: float | None = TIME_BUDGET_SECONDS,
    ) -> None:
        self.law = law
        self.prior = prior
        self.fixed = fixed
        self.delta = delta
        self.n_starts = n_starts
        self.max_blocks = max_blocks
        self.level = level
        self.jackknife = jackknife
        self.time_budget = time_budget

    # ------------------------------------------------------------------ fit
    def fit(self, curves: Sequence[Curve]) -> CurveFitter:
        """Fit the law jointly to ``curves``. Numerical failure sets ``status_``; bad input raises InputError."""
        self._law()  # an unknown law is an InputError before any work
        curves = [_thinned(c) for c in curves if len(c)]
        n_points = sum(len(c) for c in curves)
        if n_points < MIN_POINTS:
            raise InputError(f"fewer than {MIN_POINTS} usable points ({n_points}) to fit the {self.law} law")
        started = time.perf_counter()
        self._deadline = None if self.time_budget is None else started + self.time_budget
        self.budget_spent_ = False
        terms = lr_terms([c.schedule for c in curves], [c.steps for c in curves], self.max_blocks)
        loss = np.concatenate([c.loss for c in curves])
        self._curve_sizes = [len(c) for c in curves]
        self._fitted_schedules = [(c.schedule, int(c.steps.max())) for c in curves]
        self.transfer_errors_ = np.zeros(0)
        fixed, self.drop_term_ = self._resolve_fixed(curves)
        self.status_, self.converged_ = "ok", False
        self.params_: dict[str, float] = {}
        try:
            with np.errstate(
                all="ignore"
            ):  # pathological curves overflow on the way; the objective copes, training logs stay quiet
                self._optimise(curves, terms, loss, fixed)
        except (ArithmeticError, ValueError, np.linalg.LinAlgError) as error:
            self.status_ = f"failed: {type(error).__name__}: {error}"
        self.fit_seconds_ = time.perf_counter() - started
        self.n_points_ = n_points
        self.curve_names_ = [c.name for c in curves]
        self.choices_ = self._choices(fixed, n_points, len(curves))
        return self

    def _law(self):
        if self.law not in CURVE_LAWS:
            raise InputError(f"unknown law {self.law!r}; choose one of {', '.join(CURVE_LAWS)}")
        return CURVE_LAWS[self.law]

    def _resolve_fixed(self, curves: Sequence[Curve]) -> tuple[dict[str, float], str]:
        law = self._law()
        fixed = dict(self.fixed or {})
        unknown = set(fixed) - set(law.param_names)
        if unknown:
            raise InputError(f"cannot fix {sorted(unknown)}: the {law.name} law has {list(law.param_names)}")
        if not law.drop_param_names:
            return fixed, "none"
        if any(c.schedule.decrease_until(int(c.steps.max())) >= DECAY_FRACTION_FOR_IDENTIFIABILITY for c in curves):
            return fixed, "fitted"
        prior = {k: float(v) for k, v in (self.prior or {}).items() if k in law.drop_param_names}
        missing = [n for n in law.drop_param_names if n not in prior and n not in fixed]
        if not missing:
            return prior | fixed, "prior"
        return fixed | {
            n: 0.0 if n in ("B", "C") else prior.get(n, 0.5) for n in law.drop_param_names if n not in fixed
        }, "unconstrained"

    def _optimise(self, curves: Sequence[Curve], terms: LRTerms, loss: np.ndarray, fixed: dict[str, float]) -> None:
        """Refine the best grid starts on coarse LR blocks, then polish the best one on ``terms``."""
        law = self._law()
        free = [n for n in law.param_names if n not in fixed]
        coarse_blocks = None if self.max_blocks is None else max(self.max_blocks // COARSE_FACTOR, 1)
        coarse = lr_terms([c.schedule for c in curves], [c.steps for c in curves], coarse_blocks)
        starts = grid_starts(law, coarse, loss, fixed, self.delta, keep=self.n_starts)
        if not starts:
            raise ValueError("no start of the grid gives a positive predicted loss")
        bounds = [internal_bounds(n) for n in free]
        coarse_objective = _Objective(law, coarse, loss, fixed, free, self.delta)
        best = None
        for start in starts:
            theta0 = np.array([np.clip(to_internal(n, start.params[n]), *b) for n, b in zip(free, bounds)])
            result = self._minimise(coarse_objective, theta0, bounds, START_ITERATIONS)
            if best is None or result.fun < best.fun:
                best = result
        iterations = int(best.nit)
        if best.status == 1:  # the iteration budget ran out: continue the most promising start
            best = self._minimise(coarse_objective, best.x, bounds, MAX_ITERATIONS)
            iterations += int(best.nit)
        objective = _Objective(law, terms, loss, fixed, free, self.delta)
        polished = self._minimise(objective, best.x, bounds, MAX_ITERATIONS)
        self.params_ = objective.natural(polished.x)
        self.converged_ = bool(polished.success)
        self.objective_ = float(polished.fun) * self.delta
        self.n_iterations_ = iterations + int(polished.nit)
        self.starts_ = [s.params for s in starts]
        curve_of_point = np.repeat(np.arange(len(self._curve_sizes)), self._curve_sizes)
        jackknife = self._jackknife(coarse, loss, fixed, free, bounds, polished.x, curve_of_point)
        errors = self._transfer_errors(
            objective, coarse, loss, fixed, free, bounds, polished.x, curves, jackknife, curve_of_point
        )
        self.transfer_errors_ = errors
        self.interval_ = PredictiveInterval.from_fit(
            objective,
            polished.x,
            loss,
            self._curve_sizes,
            self.level,
            tuple(jackknife.values()),
            transfer_variance(errors),
        )

    def _jackknife(
        self, terms: LRTerms, loss: np.ndarray, fixed: dict, free: list[str], bounds, theta: np.ndarray, curve_of_point
    ) -> dict[int, np.ndarray]:
        """Warm-started refits with one group left out (whole curves if ≥ 3, else chunks of each curve), by group."""
        if not self.jackknife or self._past_deadline():
            return {}
        owner = curve_of_point
        if len(self._curve_sizes) < 3:
            position = np.concatenate([np.arange(n) * JACKKNIFE_CHUNKS // max(n, 1) for n in self._curve_sizes])
            owner = owner * JACKKNIFE_CHUNKS + position
        return self._leave_out(terms, loss, fixed, free, bounds, theta, owner)

    def _leave_out(self, terms, loss, fixed, free, bounds, theta, owner: np.ndarray) -> dict[int, np.ndarray]:
        """One warm-started refit per group of ``owner`` with that group's points left out."""
        thetas = {}
        for group in np.unique(owner):
            keep = owner != group
            if keep.sum() < len(free) + 1:
                continue
            objective = _Objective(self._law(), terms.subset(keep), loss[keep], fixed, free, self.delta)
            thetas[int(group)] = self._minimise(objective, theta, bounds, JACKKNIFE_ITERATIONS).x
        return thetas

    def _transfer_errors(
        self,
        objective,
        terms,
        loss,
        fixed,
        free,
        bounds,
        theta,
        curves,
        jackknife: dict[int, np.ndarray],
        curve_of_point,
    ) -> np.ndarray:
        """Log error at each fitted curve's last point when that curve is left out of the fit.

        These are the fit's own transfer backtests (each schedule predicted from the others); with
        three or more curves the jackknife's refits are exactly these, else they are refitted here.
        """
        if len(curves) < 2 or self._past_deadline():
            return np.zeros(0)
        refits = jackknife if len(curves) >= 3 and jackknife else None
        if refits is None:
            refits = self._leave_out(terms, loss, fixed, free, bounds, theta, curve_of_point)
        ends = np.cumsum(self._curve_sizes)
        lasts = [
            int(end - len(c) + np.argmax(c.steps)) for end, c in zip(ends, curves)
        ]  # a curve's last logged step, whatever its row order
        errors = []
        for index, theta_out in refits.items():
            log_pred, _ = objective.log_prediction(theta_out)
            errors.append(float(np.log(loss[lasts[index]]) - log_pred[lasts[index]]))
        return np.array(errors)

    def _past_deadline(self) -> bool:
        return self._deadline is not None and time.perf_counter() > self._deadline

    def _minimise(
        self, objective: _Objective, theta0: np.ndarray, bounds: list[tuple[float, float]], max_iterations: int
    ):
        with threadpool_limits(1):  # tiny BLAS calls: threads only add synchronisation cost
            result = minimize_until(
                objective,
                theta0,
                self._deadline,
                method="L-BFGS-B",
                bounds=bounds,
                options={"maxiter": max_iterations, "ftol": 1e-13, "gtol": 1e-9, "maxcor": 20},
            )
        if result.status == BUDGET_STATUS:
            self.budget_spent_ = True
            if not np.isfinite(result.fun):
                raise ValueError(f"time budget of {self.time_budget:g} s spent before a finite objective")
        return result

    # -------------------------------------------------------------- predict
    @property
    def drop_params_(self) -> dict[str, float] | None:
        """Fitted drop-term parameters, to serve as another run's ``prior``; None if not fitted."""
        if self.drop_term_ != "fitted" or not self.params_:
            return None
        return {n: self.params_[n] for n in self._law().drop_param_names}

    def predict(self, schedule: Schedule, steps: np.ndarray) -> np.ndarray:
        """Predicted loss at absolute ``steps`` under ``schedule`` (exact sums)."""
        self._check_fitted()
        law = self._law()
        terms = lr_terms([schedule], [np.asarray(steps)], None)
        return law.loss(np.array([self.params_[n] for n in law.param_names]), terms)

    def predict_final(self, schedule: Schedule) -> FinalPrediction:
        """Predicted loss at the last step of ``schedule`` with its predictive interval."""
        self._check_fitted()
        terms = lr_terms([schedule], [np.array([schedule.total_steps])], None)
        future_decay = bool(np.any(terms.pair_dlr > 0))
        if self.drop_term_ == "unconstrained" and future_decay:
            upper = float(self.predict(schedule, np.array([schedule.total_steps]))[0])
            return FinalPrediction(float("nan"), float("nan"), upper, "unconstrained")
        return self.interval_.final(terms, self.drop_term_, transferred=not self._seen_to_end(schedule))

    def _seen_to_end(self, schedule: Schedule) -> bool:
        """Whether a fitted curve followed ``schedule`` up to its last step (no transfer to predict its end)."""
        end = schedule.total_steps
        for fitted, last_step in self._fitted_schedules:
            if last_step < end or fitted.total_steps < end or fitted.warmup_steps != schedule.warmup_steps:
                continue
            n = schedule.n_steps
            if fitted.peak_lr == schedule.peak_lr and np.allclose(fitted.lrs[:n], schedule.lrs, rtol=1e-9, atol=0.0):
                return True
        return False

    def _check_fitted(self) -> None:
        if not getattr(self, "params_", None):
            raise RuntimeError(f"the fitter has no parameters (status: {getattr(self, 'status_', 'not fitted')})")

    # --------------------------------------------------------------- record
    def _choices(self, fixed: dict[str, float], n_points: int, n_curves: int) -> dict:
        law = self._law()
        return {
            "law": law.name,
            "citation": law.citation,
            "convention": "Luo et al. 2025: t=1 is the first post-warmup step; warmup enters only as S_W"
            + (" (momentum law: warmup steps counted at peak LR in S1)" if law.name == "momentum" else ""),
            "loss": "huber on log(loss) residuals, summed over all points of all curves",
            "delta": self.delta,
            "optimizer": "L-BFGS-B, exact gradients, log/log(1-lam) coordinates for scales, ftol=1e-13, gtol=1e-9",
            "starts": f"variable-projection grid (NNLS for L0, A, drop scale), best {self.n_starts} refined "
            f"{START_ITERATIONS} iterations on {COARSE_FACTOR}x coarser LR blocks, the best continued and polished "
            f"on the full blocks (max {MAX_ITERATIONS} iterations each)",
            "points_used": n_points,
            "curves": n_curves,
            "fixed": fixed if self.drop_term_ != "unconstrained" else {k: v for k, v in (self.fixed or {}).items()},
            "drop_term": self.drop_term_,
            "lr_sum_blocks_per_curve": self.max_blocks,
            "points_per_curve": f"at most {MAX_POINTS_PER_CURVE}; longer curves as equal-width bin means",
            "time_budget_s": self.time_budget,
            "time_budget_spent": self.budget_spent_,
            "warmup": "S_W = sum of warmup LRs (linear 0 -> peak rebuilt when only logged)",
            "interval": f"level {self.level}; parameter variance from "
            + (
                "a delete-one-group jackknife (curves if >= 3, else 4 chunks per curve)"
                if self.jackknife
                else "Laplace with AR(1)-inflated residual variance"
            )
            + " plus the residual variance, plus (for a schedule no fitted curve followed to its end) a "
            f"schedule-transfer variance: prior SD {TRANSFER_PRIOR_SD_LOG} in log loss worth "
            f"{TRANSFER_PRIOR_WEIGHT:g} curves, updated by the fitted curves' leave-one-curve-out errors "
            "at their last points; Gaussian in log loss",
        }

    def to_dict(self) -> dict:
        """JSON-able record of the fit: law, parameters, status and every choice."""
        return {
            "law": self.law,
            "params": dict(self.params_),
            "status": self.status_,
            "converged": self.converged_,
            "drop_term": self.drop_term_,
            "transfer_sd_log": float(np.sqrt(self.interval_.transfer_variance)) if self.params_ else None,
            "transfer_errors_log": [float(e) for e in self.transfer_errors_],
            "fit_seconds": self.fit_seconds_,
            "n_points": self.n_points_,
            "choices": self.choices_,
        }


class _Objective:
    """Summed Huber loss of log residuals (divided by δ) and its gradient in optimizer coordinates."""

    def __init__(self, law, terms: LRTerms, loss: np.ndarray, fixed: dict, free: list[str], delta: float) -> None:
        self.law, self.terms, self.log_loss = law, terms, np.log(loss)
        self.fixed, self.free, self.delta = fixed, free, delta
        self.free_rows = [law.param_names.index(n) for n in free]

    def natural(self, theta: np.ndarray) -> dict[str, float]:
        return {n: to_natural(n, t)[0] for n, t in zip(self.free, theta)} | dict(self.fixed)

    def log_prediction(self, theta: np.ndarray, terms: LRTerms | None = None) -> tuple[np.ndarray, np.ndarray]:
        """log predicted loss and its Jacobian (free coordinates × points), on the fitted or other points."""
        params = self.natural(theta)
        vector = np.array([params[n] for n in self.law.param_names])
        predicted, jacobian = self.law.loss_and_jacobian(vector, self.terms if terms is None else terms)
        chain = np.array([to_natural(n, t)[1] for n, t in zip(self.free, theta)])
        safe = np.maximum(predicted, 1e-12)
        log_jacobian = jacobian[self.free_rows] * chain[:, None] / safe
        log_jacobian[:, predicted <= 1e-12] = 0.0
        return np.log(safe), log_jacobian

    def __call__(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        log_pred, log_jacobian = self.log_prediction(theta)
        value, slope = huber(self.log_loss - log_pred, self.delta)
        return value / self.delta, -(log_jacobian @ slope) / self.delta


def _thinned(curve: Curve) -> Curve:
    """The curve itself, or its :data:`MAX_POINTS_PER_CURVE` equal-width bin means when it is longer."""
    if len(curve) <= MAX_POINTS_PER_CURVE:
        return curve
    order = np.argsort(curve.steps, kind="stable")
    steps, loss = bin_curve(curve.steps[order], curve.loss[order], float(curve.steps.min()) - 1.0, MAX_POINTS_PER_CURVE)
    return Curve(curve.schedule, steps, loss, curve.name)
