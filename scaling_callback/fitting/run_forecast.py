"""The one forecast of a run's final loss: a grid posterior over the multi-power law, pooled across the sweep.

Model (Luo et al., ICLR 2025, eq. 1–2, with t = 1 the first post-warmup step):

    L(t) = L0 + A·(s(t)/s_ref)^(−α) − B̃·D_θ(t),   s(t) = S1(t) + S_W,
    D_θ(t) = Σ_k ((η_{k−1} − η_k)/η_0) · G(η_k^(−γ)·S_k(t)),   G(x) = 1 − (C·x + 1)^(−β),  θ = (C, β, γ)

(B̃ = B·η_0, the drop in loss units of a full decay at saturated G). A curve without an LR column is
the same law on a constant schedule in its own resource x: L0 + A·(x/x_ref)^(−α), no drop term
(the saturating power law of Kaplan et al. 2020 / Hoffmann et al. 2022).

For fixed nonlinear parameters (α, θ) the law is linear in (L0, A, B̃), so the forecaster is a
Bayesian grid posterior (docs/forecasting.md):

- on a grid of α (:data:`ALPHAS`) and drop shapes θ (:data:`SHAPES`), the linear parameters have a
  Gaussian posterior in closed form, with known noise σ and a Gaussian prior on B̃ from the sweep;
- each grid cell is weighted by its prior (from the sweep: :class:`SweepPrior`) times its marginal
  likelihood, so what a run cannot yet know about itself — the drop term before its decay, the
  curve's far end on four points — comes from the sweep and widens the forecast instead of being
  guessed;
- the predictive distribution at the planned end is the mixture over the grid, plus the
  observation noise, plus transfer errors τ·|the power law's change still ahead| and
  τ_drop·|the drop term's change still ahead| whose τs the sweep estimates from backtests of its
  finished runs (:mod:`sweep_prior`);
- the part of the drop prior every run of the sweep shares (the unknown mean gain of a decay,
  μ below) is one unknown for all of them: the forecast reports its ``shared`` loading (the change
  of the forecast per SD of μ), so two runs that both await their decay are compared with the
  correlation it implies, and not as if each could gain independently.

Everything is vectorised over the grid; a run's design columns (its schedule's sums at every logged
step and at the targets) are cached, so a check costs a few milliseconds and does not grow with the
sweep.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.special import ndtri

from scaling_callback.errors import InputError
from scaling_callback.fitting.curve_fitter import DECAY_FRACTION_FOR_IDENTIFIABILITY
from scaling_callback.fitting.forecast_types import Calibration, Forecast, Posterior, RunCurve, SweepPrior
from scaling_callback.fitting.grid_cells import MIN_SD, grid_posterior, likelihood_variance, mixture, shared_loading
from scaling_callback.laws.lr_terms import lr_terms
from scaling_callback.laws.schedule import Schedule

ALPHAS = np.linspace(0.04, 1.5, 30)  # α of LM curves lies in 0.3–0.7 (MPL paper); toy and eval curves reach ~1.2
C_GRID = (0.3, 1.0, 3.0, 10.0)
BETA_GRID = (0.3, 0.5, 0.7, 0.9)  # β, γ ∈ (0, 1) as in Luo et al. 2025
GAMMA_GRID = (0.3, 0.5, 0.7, 0.9)
SHAPES = np.array([(c, b, g) for c in C_GRID for b in BETA_GRID for g in GAMMA_GRID])
MIN_POINTS = 3  # (L0, A) with α on the grid leave a residual from three points; the sweep prior carries the rest
MIN_POINTS_WITH_DONORS = 2  # with ended runs, α and the noise come from them: two points fix (L0, A)
MAX_POINTS = 96  # evenly spaced points fitted (a curve's shape needs no more; cost is linear in it)
PATH_POINTS = 16  # points of the plan at which the forecast is kept, for comparisons at equal compute
LEVEL = 0.9
MAX_BLOCKS = 96  # LR change blocks per curve for the drop sums (lr_terms): 0.1 % of the drop at most (docs)
BROAD_DROP_FRACTION = 0.05  # without donors: a full decay buys 5 % ± 10 % of the loss (docs/forecasting.md)
BROAD_DROP_SD = 0.10
DROP_PSEUDO_DONORS = 2.0  # the between-run spread of B̃ is pooled with two pseudo-donors of relative spread ...
DROP_SPREAD = 0.5  # ... 50 % (docs/forecasting.md: the spread the sweeps measured)


class _Design:
    """A run's design columns at every point it may be asked about, cached per (run, plan)."""

    def __init__(self, curve: RunCurve) -> None:
        self.has_schedule = curve.lrs is not None
        self.schedule = (curve.schedule or Schedule.from_per_step(curve.lrs)) if self.has_schedule else None
        self.x = np.zeros(0)
        self.decay = np.zeros((ALPHAS.size, 0))
        self.drop = np.zeros((SHAPES.shape[0], 0))
        self.budget = curve.budget
        self.step_per_x = curve.step_per_x
        if self.has_schedule:
            ref = float(self.schedule.final_lr_sum + self.schedule.warmup_sum)
        else:
            ref = float(curve.budget)
        self.ref = ref if ref > 0 else 1.0

    def steps_of(self, x: np.ndarray) -> np.ndarray:
        return np.rint(np.asarray(x) * self.step_per_x).astype(np.int64)

    def usable(self, x: np.ndarray) -> np.ndarray:
        """Points the law can be fitted at: after the warmup and inside the plan."""
        if not self.has_schedule:
            return x > 0
        steps = self.steps_of(x)
        return (steps > self.schedule.warmup_steps) & (steps <= self.schedule.total_steps)

    def columns(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(decay columns (α, n), drop columns (θ, n)) at resources ``x``, computing only the new ones."""
        x = np.asarray(x, dtype=float)
        missing = np.setdiff1d(x, self.x)
        if missing.size:
            decay, drop = self._compute(missing)
            self.x = np.concatenate([self.x, missing])
            order = np.argsort(self.x, kind="stable")
            self.x = self.x[order]
            self.decay = np.concatenate([self.decay, decay], axis=1)[:, order]
            self.drop = np.concatenate([self.drop, drop], axis=1)[:, order]
        index = np.searchsorted(self.x, x)
        return self.decay[:, index], self.drop[:, index]

    def _compute(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if not self.has_schedule:
            s = np.maximum(x, 1e-300) / self.ref
            return np.exp(-np.outer(ALPHAS, np.log(s))), np.zeros((SHAPES.shape[0], x.size))
        schedule = self.schedule
        steps = np.clip(self.steps_of(x), schedule.warmup_steps, schedule.total_steps)
        terms = lr_terms([schedule], [steps], MAX_BLOCKS)
        s = (terms.s1 + terms.warmup_sum) / self.ref
        decay = np.exp(-np.outer(ALPHAS, np.log(np.maximum(s, 1e-300))))
        drop = np.zeros((SHAPES.shape[0], x.size))
        if terms.pair_point.size:
            c, beta, gamma = SHAPES[:, 0:1], SHAPES[:, 1:2], SHAPES[:, 2:3]
            lr_k = terms.block_log_lr[terms.pair_block]
            arg = np.exp(-gamma * lr_k[None, :]) * terms.pair_sum[None, :]
            g = 1.0 - np.exp(-beta * np.log1p(c * arg))
            drop = terms.point_sums(g * (terms.pair_dlr / schedule.peak_lr)[None, :])
        return decay, drop


class RunForecaster:
    """Forecast a run's final loss from its curve so far, its plan and the sweep's prior.

    ``fit(curve, prior)`` returns self with ``forecast_`` (a :class:`Forecast`, or None),
    ``status_`` (``ok`` or why there is none) and ``posterior_`` (what the run would lend the sweep).
    Never raises on a curve: a curve it cannot use gives a status.

    Args:
        level: coverage of the reported interval.
        max_points: at most this many evenly spaced points are fitted.
    """

    def __init__(self, level: float = LEVEL, max_points: int = MAX_POINTS) -> None:
        if not 0.0 < level < 1.0:
            raise InputError(f"level must lie in (0, 1), got {level!r}")
        if int(max_points) != max_points or max_points < MIN_POINTS:
            raise InputError(f"max_points must be an integer >= {MIN_POINTS}, got {max_points!r}")
        self.level = float(level)
        self.max_points = int(max_points)
        self._designs: dict[tuple, _Design] = {}

    def fit(self, curve: RunCurve, prior: SweepPrior | None = None, targets: Sequence[float] = ()) -> RunForecaster:
        """Forecast ``curve``'s loss at its budget (and at ``targets``); sets ``forecast_``, ``status_``, ``posterior_``."""
        self.forecast_, self.posterior_, self.status_ = None, None, "ok"
        try:
            self._fit(curve, prior, np.asarray(targets, dtype=float))
        except (ArithmeticError, ValueError, np.linalg.LinAlgError, InputError) as error:
            self.forecast_, self.posterior_ = None, None
            self.status_ = f"failed: {type(error).__name__}: {error}"
        return self

    # ------------------------------------------------------------------ core
    def _design(self, curve: RunCurve) -> _Design:
        plan = None if curve.lrs is None else _plan_key(curve.lrs)
        key = (curve.name, plan, float(curve.budget), float(curve.step_per_x))
        design = self._designs.get(key)
        if design is None:
            if len(self._designs) > 4096:  # a bound on memory for very long sweeps: forget the oldest runs
                self._designs.pop(next(iter(self._designs)))
            design = self._designs[key] = _Design(curve)
        return design

    def _fit(self, curve: RunCurve, prior: SweepPrior | None, extra: np.ndarray) -> None:
        design = self._design(curve)
        finite = np.isfinite(curve.x) & np.isfinite(curve.loss) & (curve.loss > 0) & (curve.x <= curve.budget)
        keep = finite & design.usable(curve.x)
        x, y = curve.x[keep], curve.loss[keep]
        if x.size and np.any(np.diff(x) <= 0):
            x, first = np.unique(x, return_index=True)
            y = y[first]
        needed = MIN_POINTS_WITH_DONORS if prior is not None and prior.donors and prior.noise_rel > 0 else MIN_POINTS
        if x.size < needed:
            self.status_ = f"{x.size} usable points, need {needed}"
            return
        if x.size > self.max_points:
            index = np.unique(np.rint(np.linspace(0, x.size - 1, self.max_points)).astype(int))
            x, y = x[index], y[index]
        now = float(x[-1])
        plan = np.linspace(0.0, curve.budget, PATH_POINTS + 1)[1:]  # one grid per run: its columns are computed once
        path = np.unique(np.concatenate([[now], plan[plan > now], extra[(extra >= now) & (extra <= curve.budget)]]))
        decay, drop = design.columns(np.concatenate([x, path]))
        n = x.size
        with_drop = design.has_schedule and bool(np.any(drop[:, n:] != 0) or np.any(drop[:, :n] != 0))
        scale = float(np.median(y))
        noise = _noise(y, scale, prior)
        # its own points identify its drop once they saw half of its planned decay (and ≥ 5 % of the peak LR)
        drop_seen = False
        if with_drop:
            seen, planned = design.schedule.decrease_until(design.steps_of(np.array([x[-1], curve.budget])))
            drop_seen = bool(seen >= DECAY_FRACTION_FOR_IDENTIFIABILITY and seen >= 0.5 * planned)
        b_mean, b_var, b_shared, shape_log_prior, alpha_log_prior, source = self._priors(
            design, drop, n, scale, prior, with_drop
        )
        drops = drop if with_drop else None
        grid = (scale, b_mean, b_var, alpha_log_prior, shape_log_prior)
        cells = grid_posterior(y, decay, drops, max(noise, MIN_SD * scale) ** 2, *grid)
        cells = grid_posterior(y, decay, drops, likelihood_variance(y, cells, decay, drops, noise, scale), *grid)
        mean, var, fitted_now, drop_path, drop_now = mixture(cells, decay, drop if with_drop else None, n)
        shared = shared_loading(cells, decay, drop, n, b_var, b_shared) if with_drop else np.zeros(mean.size)
        calibration = prior.calibration if prior is not None else Calibration()
        kappa, tau, tau_drop = calibration.kappa, calibration.tau, calibration.tau_drop
        # what is still ahead, split into the power law's part and the drop term's: a forecast across a decay
        # transfers a borrowed drop, one without extrapolates the power law (the calibration scores each apart)
        drop_ahead = np.abs(drop_path - drop_now)
        ahead = _change_ahead(x, y, path, mean - drop_path, fitted_now - drop_now)
        transfer_var = (tau * ahead) ** 2 + (tau_drop * drop_ahead) ** 2
        total_var = kappa**2 * var + noise**2 + transfer_var
        sd = np.sqrt(np.maximum(total_var, MIN_SD**2))
        shared = np.clip(kappa * shared, -sd, sd)  # a loading never exceeds the SD it is part of
        z = float(ndtri(0.5 + self.level / 2.0))
        end = float(mean[-1])
        if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(sd))):
            self.status_ = "failed: the forecast is not finite (a degenerate curve or plan)"
            return
        evidence = {
            "points": int(n),
            "x_now": now,
            "drop_term": source if with_drop else "none",
            "donors": list(prior.donors) if prior is not None else [],
            "noise": noise,
            "grid_sd": float(math.sqrt(max(var[-1], 0.0))),
            "ahead": float(ahead[-1]),
            "drop_ahead": float(drop_ahead[-1]),
            "kappa": kappa,
            "tau": tau,
            "tau_drop": tau_drop,
            "calibration": calibration.source,
            "transfer_sd": float(math.sqrt(transfer_var[-1])),
            "shared_drop_sd": float(abs(shared[-1])),
            "alpha_mean": float(cells.alpha_weights @ ALPHAS),
        }
        self.forecast_ = Forecast(
            loss=end,
            sd=float(sd[-1]),
            low=end - z * float(sd[-1]),
            high=end + z * float(sd[-1]),
            level=self.level,
            x=now,
            budget=float(curve.budget),
            law="mpl" if design.has_schedule else "power",
            evidence=evidence,
            choices=self._choices(design, with_drop),
            path_x=tuple(float(v) for v in path),
            path_loss=tuple(float(v) for v in mean),
            path_sd=tuple(float(v) for v in sd),
            shared=float(shared[-1]),
            path_shared=tuple(float(v) for v in shared),
        )
        self.posterior_ = Posterior(
            curve.name,
            cells.alpha_weights,
            cells.shape_weights if with_drop else None,
            cells.drop_mean if with_drop else None,
            cells.drop_var if with_drop else None,
            drop_seen,
            noise / scale,
            math.log(design.schedule.peak_lr) if design.has_schedule else None,
        )

    def _priors(
        self, design: _Design, drop: np.ndarray, n: int, scale: float, prior: SweepPrior | None, with_drop: bool
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, str]:
        """Prior mean and variance of B̃ per shape, the shared part of that variance, log prior weights of
        shapes and α, and where the drop prior came from."""
        n_shapes = SHAPES.shape[0]
        alpha_log_prior = np.zeros(ALPHAS.size) if prior is None else prior.alpha_log_prior
        if not with_drop:
            zeros = np.zeros(n_shapes)
            return zeros, np.ones(n_shapes), zeros, zeros, alpha_log_prior, "none"
        full = np.maximum(np.abs(drop[:, -1]), 1e-3)  # the run's planned end: its whole decay, per shape
        broad_mean, broad_var = BROAD_DROP_FRACTION * scale / full, (BROAD_DROP_SD * scale / full) ** 2
        if prior is None or prior.drop_mean is None:
            # μ ~ N(broad_mean, broad_var) is the sweep's, the run's own gain spreads around it by DROP_SPREAD
            own = (DROP_SPREAD * broad_mean) ** 2
            return broad_mean, broad_var + own, broad_var, np.zeros(n_shapes), alpha_log_prior, "broad prior"
        # hierarchical normal: runs' B̃ ~ N(μ, s²); s² pooled from the donors with DROP_PSEUDO_DONORS pseudo-donors of
        # relative spread DROP_SPREAD; μ's posterior from the donors' mean and the broad prior; the new run's B̃ is then
        # N(E μ, s² + Var μ) plus the donors' own posterior variance
        n = prior.drop_donors
        if math.isinf(n):  # the donor is this run (sweep_prior.SweepPool same_run): its B̃ posterior is the prior
            zeros = np.zeros(n_shapes)
            return (
                prior.drop_mean,
                np.maximum(prior.drop_within, 1e-12),
                zeros,
                prior.shape_log_prior,
                alpha_log_prior,
                ("the run's own posterior"),
            )
        spread = (n * prior.drop_between + DROP_PSEUDO_DONORS * (DROP_SPREAD * prior.drop_mean) ** 2) / (
            n + DROP_PSEUDO_DONORS
        )
        spread = np.maximum(spread, 1e-12)
        precision = n / spread + 1.0 / broad_var
        mean = (n / spread * prior.drop_mean + broad_mean / broad_var) / precision
        variance = spread + 1.0 / precision + prior.drop_within
        return mean, variance, 1.0 / precision, prior.shape_log_prior, alpha_log_prior, "sweep prior"

    def _choices(self, design: _Design, with_drop: bool) -> dict[str, Any]:
        return {
            "law": (
                "multi-power law, Luo et al. ICLR 2025 eq. (1)-(2), B scaled by the peak LR"
                if design.has_schedule
                else "saturating power law L0 + A*(x/x_ref)^-alpha (constant schedule in x)"
            ),
            "method": "Bayesian grid posterior: alpha x drop-shape grid, linear (L0, A, B) in closed form",
            "alpha_grid": [float(ALPHAS[0]), float(ALPHAS[-1]), int(ALPHAS.size)],
            "shape_grid": {"C": list(C_GRID), "beta": list(BETA_GRID), "gamma": list(GAMMA_GRID)}
            if with_drop
            else None,
            "max_points": self.max_points,
            "lr_blocks": MAX_BLOCKS,
            "level": self.level,
            "residuals": "Gaussian in loss, noise from second differences (AR(1)-inflated for the likelihood)",
            "uncertainty": "kappa^2 * grid-mixture variance + observation noise^2 + (tau * |power-law change ahead|)^2 "
            "+ (tau_drop * |drop-term change ahead|)^2, kappa, tau and tau_drop from the sweep's backtests",
        }


def _plan_key(lrs: np.ndarray) -> tuple:
    """A cheap key of a plan: its length and a hash of 4096 of its LRs (hashing 10⁷ LRs each check would dominate)."""
    stride = max(lrs.size // 4096, 1)
    return lrs.size, hash(lrs[::stride].tobytes()), float(lrs[-1]) if lrs.size else 0.0


def _noise(y: np.ndarray, scale: float, prior: SweepPrior | None) -> float:
    """Observation noise from second differences, shrunk toward the sweep's relative noise on short curves."""
    own = _second_difference_sd(y)
    dof = max(y.size - 2, 0)
    if prior is not None and prior.noise_rel > 0:
        pooled = prior.noise_rel * scale
        prior_dof = 4.0  # the pooled estimate counts as four points' worth of evidence
        variance = (dof * own**2 + prior_dof * pooled**2) / (dof + prior_dof)
        return max(math.sqrt(variance), MIN_SD * scale)
    return max(own, 1e-4 * scale)


def _change_ahead(x: np.ndarray, y: np.ndarray, path: np.ndarray, mean: np.ndarray, fitted_now: float) -> np.ndarray:
    """How far the curve may still move: the forecast change, or half the change if its recent log-log slope held.

    A saturating law fitted early flattens too soon on a slow starter; the slope of its last
    quarter continued to the target is how far it may still fall. Half of it is used because a
    power law with a floor always falls less than its tangent in log-log.
    """
    forecast = np.abs(mean - fitted_now)
    tail = slice(max(x.size - max(x.size // 4, 3), 0), None)
    log_x, log_y = np.log(np.maximum(x[tail], 1e-300)), np.log(y[tail])
    spread = float(np.var(log_x))
    if spread <= 0:
        return forecast
    slope = min(float(np.cov(log_x, log_y, bias=True)[0, 1]) / spread, 0.0)
    held = fitted_now * (1.0 - np.exp(slope * np.log(np.maximum(path, x[-1]) / x[-1])))
    return np.maximum(forecast, 0.5 * held)


def _second_difference_sd(y: np.ndarray) -> float:
    """White noise of SD σ gives second differences of SD σ·√6; a smooth trend cancels (MAD, robust)."""
    if y.size < 4:
        return 0.0
    second = np.diff(y, 2)
    return 1.4826 * float(np.median(np.abs(second - np.median(second)))) / math.sqrt(6.0)
