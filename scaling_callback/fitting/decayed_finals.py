"""Finals of fully decayed runs, forecast from one WSD (or constant-LR) run per model size.

Chinchilla's approach 3 needs a fully decayed run for every (N, D). A run whose LR stays at its peak
(warmup-stable-decay, WSD, or constant) passes through every D on the way; the multi-power law
(Luo et al., ICLR 2025, eq. 1–2) says what it would have reached had its LR decayed there. So one
such run per size, with the sweep's pooled drop term, stands in for a grid (Hägele et al. 2024,
"Scaling Laws and Compute-Optimal Training Beyond Fixed Training Durations", §4: WSD runs with a
cooldown taken from the stable phase match cosine runs of the same length).

For each run and each target budget D (in tokens; T = D / tokens-per-step optimizer steps) the target
is the same model trained to T with a fully decayed schedule (:class:`DecayTarget`):

- ``wsd`` (default): the run's own LRs, then a linear decay over the last ``decay_fraction`` of the
  post-warmup steps to ``final_lr_fraction`` of the peak. Until its decay starts the target *is*
  the observed run, so its final is exactly what the one forecaster computes for a run's planned
  schedule (:class:`~scaling_callback.fitting.sweep_forecaster.SweepForecaster`): the run's points up
  to the last step the target shares with it, the target's plan, and as prior the run's own posterior
  from its whole curve (its decay identifies the drop term of the same model, data and LR: no
  between-run spread), or, for a run whose LR never decays, the prior pooled from every run's. The
  spread is calibrated by every run's backtests, each forecast with the other runs' prior. The target
  of the run's own length and decay shares every step: its point is ``observed``.
- ``cosine``: a cosine from the peak to ``final_lr_fraction`` after the run's warmup. Its history
  differs from the observed run's from the first post-warmup step, which a forecast of a run under
  its own plan cannot express; it is the per-run law fitted to the run's whole curve, predicting
  another schedule (:meth:`CurveFitter.predict_final`, what ``fit-curves --predict`` does), with the
  drop parameters of the nearest size whose LR decayed when this run's did not.

Each point carries its predictive SD, for the weighted fit and the bootstrap's predictive draws of
:mod:`compute_optimal` / :mod:`bootstrap`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import ndtri

from scaling_callback.errors import InputError
from scaling_callback.fitting.curve_fitter import DECAY_FRACTION_FOR_IDENTIFIABILITY, CurveFitter
from scaling_callback.fitting.curves import Curve
from scaling_callback.fitting.forecast_types import RunCurve
from scaling_callback.fitting.sweep_forecaster import SweepForecaster
from scaling_callback.fitting.sweep_prior import backtest
from scaling_callback.laws.schedule import Schedule

TARGET_KINDS = ("wsd", "cosine")
#: Hägele et al. 2024 (§3, Fig. 4): a cooldown over the last 20 % of training matches a cosine run of the same length.
DEFAULT_DECAY_FRACTION = 0.2
#: The cosine runs of Chinchilla (Hoffmann et al. 2022, §3) and of the MPL paper decay to 10 % of the peak.
DEFAULT_FINAL_LR_FRACTION = 0.1
#: Default budgets: this many, log-spaced over ``DEFAULT_SPAN`` below the longest run (the points of a 4-budget grid
#: at factors of 2 and a point between each pair).
DEFAULT_N_TARGETS = 7
DEFAULT_SPAN = 8.0
STABLE_TOLERANCE = 1e-6  # an LR within this fraction of the peak is still the stable phase
#: A target's LR and the run's agree at a step when they differ by less than this fraction of the peak. Trainers
#: round a decay's start differently (the tiny LM's WSD differs from :func:`wsd_plan`'s by 4.5e-4 of the peak at
#: every decay step); the drop term is linear in LR decreases (docs/reference.md §2), so a mismatch of 1e-3 of the
#: peak moves the final by at most 1e-3 of a full decay's drop (~1e-4 nats), far below an evaluation's noise.
MATCH_TOLERANCE = 1e-3
POINT_COLUMNS = ("run", "n", "d", "loss", "loss_sd", "source")


@dataclass(frozen=True)
class DecayTarget:
    """The fully decayed run each forecast point stands for (see the module docstring).

    ``final_lr_fraction=None``: the run's own final LR over its peak when its LR decays, else 0.1.
    """

    kind: str = "wsd"
    decay_fraction: float = DEFAULT_DECAY_FRACTION
    final_lr_fraction: float | None = None

    def __post_init__(self) -> None:
        if self.kind not in TARGET_KINDS:
            raise InputError(f"decay target must be one of {', '.join(TARGET_KINDS)}, got {self.kind!r}")
        if not 0.0 < self.decay_fraction <= 1.0:
            raise InputError(f"decay_fraction must be in (0, 1], got {self.decay_fraction!r}")
        if self.final_lr_fraction is not None and not 0.0 <= self.final_lr_fraction < 1.0:
            raise InputError(f"final_lr_fraction must be in [0, 1), got {self.final_lr_fraction!r}")

    def describe(self) -> str:
        if self.kind == "cosine":
            return "cosine from the peak LR to the final fraction after the run's warmup"
        return f"WSD: the run's LRs, then a linear decay over the last {self.decay_fraction:.0%} of post-warmup steps"


@dataclass(frozen=True)
class SizeRun:
    """One model size's run: its losses at absolute optimizer ``steps`` under ``schedule``, N, and tokens per step."""

    name: str
    n_params: float
    schedule: Schedule
    steps: np.ndarray
    loss: np.ndarray
    tokens_per_step: float

    def __post_init__(self) -> None:
        steps, loss = np.asarray(self.steps, dtype=float), np.asarray(self.loss, dtype=float)
        if steps.shape != loss.shape or steps.ndim != 1 or steps.size == 0:
            raise InputError(f"run {self.name!r}: steps and loss must be equally long, non-empty 1-D arrays")
        for label, value in (("n_params", self.n_params), ("tokens_per_step", self.tokens_per_step)):
            if not (math.isfinite(value) and value > 0):
                raise InputError(f"run {self.name!r}: {label} must be positive, got {value!r}")
        object.__setattr__(self, "steps", steps)
        object.__setattr__(self, "loss", loss)

    @property
    def tokens(self) -> float:
        """D at the run's last step."""
        return float(self.schedule.total_steps * self.tokens_per_step)

    @property
    def peak_lr(self) -> float:
        return self.schedule.peak_lr

    def stable_end(self) -> int:
        """Absolute step of the last LR at the peak (the run's end for a constant run)."""
        first_k, _, drops = self.schedule.change_runs()
        falling = first_k[drops > STABLE_TOLERANCE * self.peak_lr]
        return self.schedule.warmup_steps + (int(falling[0]) - 1 if falling.size else self.schedule.n_steps)

    def final_lr_fraction(self) -> float | None:
        """The run's last LR over its peak when the LR decays by at least the identifiable 5 %, else None."""
        last = float(self.schedule.lr_at(np.array([self.schedule.n_steps]))[0]) / self.peak_lr
        return last if 1.0 - last >= DECAY_FRACTION_FOR_IDENTIFIABILITY else None

    def per_step(self, schedule: Schedule) -> np.ndarray:
        """LRs of every absolute step 1..T of ``schedule`` (a linear warmup to the peak, then its LRs)."""
        warmup = self.peak_lr * np.arange(1, schedule.warmup_steps + 1) / max(schedule.warmup_steps, 1)
        return np.concatenate([warmup, schedule.lrs])


@dataclass
class DecayedFinals:
    """Forecast (N, D, loss, SD) points of fully decayed runs from one run per size: ``fit`` returns self.

    Args:
        target: the fully decayed run a point stands for.
        level: central coverage of each forecast's interval (the SD does not depend on it).
    """

    target: DecayTarget = field(default_factory=DecayTarget)
    level: float = 0.9

    def fit(self, runs: Sequence[SizeRun], target_tokens: Sequence[float] | None = None) -> DecayedFinals:
        """Forecast every run at the target budgets: the given ones, else ``default_targets(runs)``.

        Given budgets are forecast for every run, extrapolating past a run's end (``source`` =
        ``extrapolated``); default budgets only up to each run's own end. A run that ends before the
        smallest budget, or fewer than two sizes, is an :class:`InputError`.
        """
        runs = list(runs)
        _check_runs(runs)
        given = target_tokens is not None
        targets = np.sort(np.asarray(target_tokens if given else default_targets(runs), dtype=float))
        if targets.size == 0 or np.any(~np.isfinite(targets) | (targets <= 0)):
            raise InputError(f"target budgets must be positive token counts, got {list(targets)}")
        short = [r for r in runs if r.tokens < targets[0] * (1.0 - 1e-9)]
        if short:
            raise InputError(
                f"run {short[0].name!r} ends at D = {short[0].tokens:.4g} tokens, before the smallest target budget "
                f"D = {targets[0]:.4g}"
            )
        self.targets_ = targets
        self.failures_: dict[str, str] = {}
        if self.target.kind == "wsd":
            rows = self._wsd_points(runs, targets, given)
        else:
            rows = self._cosine_points(runs, targets, given)
        self.points_ = pd.DataFrame(rows, columns=[*POINT_COLUMNS, "forecast"])
        self.compute_used_ = float(sum(6.0 * r.n_params * r.tokens for r in runs))
        self.compute_grid_ = float((6.0 * self.points_["n"] * self.points_["d"]).sum()) if len(self.points_) else 0.0
        self.choices_ = self._choices(given)
        return self

    # ------------------------------------------------------------------ targets
    def _wsd_points(self, runs: list[SizeRun], targets: np.ndarray, given: bool) -> list[dict]:
        wholes = {run.name: _run_curve(run, run.name, run.schedule, run.schedule.total_steps) for run in runs}
        # the sweep: every run's whole curve is a donor, and each is backtested with the others' prior (what the
        # sweep knows without it), so the calibration measures forecasts from a prefix and a borrowed drop term
        sweep = SweepForecaster(level=self.level)
        for whole in wholes.values():
            sweep.add_ended(whole, finished=False)
        tests = {name: backtest(sweep.runs, whole, sweep.prior_for(whole)) for name, whole in wholes.items()}
        for name, found in tests.items():
            sweep.pool.add_backtests(name, found)
        own: dict[str, SweepForecaster] = {}
        for run in runs:  # a run whose LR decays lends its own drop term to its targets, under the sweep's calibration
            if run.final_lr_fraction() is not None:
                own[run.name] = SweepForecaster(level=self.level, same_run=True)
                own[run.name].add_ended(wholes[run.name], finished=False)
                for name, found in tests.items():
                    own[run.name].pool.add_backtests(name, found)
        self.calibration_ = sweep.pool.calibration().source
        rows = []
        for run in runs:
            forecaster = own.get(run.name, sweep)
            final = self._final_fraction(run)
            for d in _run_targets(run, targets, given):
                total = _steps_of(run, d)
                plan, shared = wsd_plan(run, total, self.target.decay_fraction, final)
                curve = _run_curve(run, f"{run.name}@{d:.6g}", plan, shared)
                if shared >= total:  # the target is the run: its own fit, no prior (its points would count twice)
                    fit = forecaster.runs.fit(curve, None)
                    forecast, status = fit.forecast_, fit.status_
                else:
                    forecast, status = forecaster.forecast(curve)
                if forecast is None:
                    self.failures_[f"{run.name}@{d:.6g}"] = status
                    continue
                # the frontier needs the expected final: its SD without the noise of one observed loss (floored
                # at the forecaster's own 1e-6 of the loss, grid_cells.MIN_SD, so that a weight stays finite)
                sd = math.sqrt(max(forecast.sd**2 - forecast.evidence["noise"] ** 2, (1e-6 * forecast.loss) ** 2))
                # a target that shares every step with the run is the run: its point is observed, not forecast
                rows.append(_row(run, d, forecast.loss, sd, forecast.to_dict(), observed=shared >= total))
        return rows

    def _cosine_points(self, runs: list[SizeRun], targets: np.ndarray, given: bool) -> list[dict]:
        fits = {
            r.name: CurveFitter(level=self.level).fit([_curve(r)]) for r in runs if r.final_lr_fraction() is not None
        }
        donors = [r for r in runs if r.name in fits and fits[r.name].drop_params_ is not None]
        z = float(ndtri(0.5 + self.level / 2.0))
        self.calibration_ = "the law fitter's interval (jackknife over chunks of the curve plus residual variance)"
        rows = []
        for run in runs:
            fitter = fits.get(run.name)
            if fitter is None or fitter.drop_params_ is None:
                if not donors:
                    raise InputError(
                        f"run {run.name!r}: its LR never decays and no run's does, so nothing identifies the drop "
                        "term a cosine target needs (use the wsd target, or give one run a decay)"
                    )
                donor = min(donors, key=lambda r: abs(math.log(r.n_params / run.n_params)))
                fitter = CurveFitter(level=self.level, prior=fits[donor.name].drop_params_).fit([_curve(run)])
            final = self._final_fraction(run)
            for d in _run_targets(run, targets, given):
                plan = cosine_plan(run, _steps_of(run, d), final)
                prediction = fitter.predict_final(plan)
                if not (math.isfinite(prediction.loss) and prediction.low > 0):
                    self.failures_[f"{run.name}@{d:.6g}"] = f"law fit {fitter.status_}: no finite prediction"
                    continue
                sd = prediction.loss * (math.log(prediction.high) - math.log(prediction.low)) / (2.0 * z)
                record = {"low": prediction.low, "high": prediction.high, "drop_term": prediction.drop_term}
                rows.append(_row(run, d, prediction.loss, sd, record))
        return rows

    def _final_fraction(self, run: SizeRun) -> float:
        if self.target.final_lr_fraction is not None:
            return self.target.final_lr_fraction
        own = run.final_lr_fraction()
        return DEFAULT_FINAL_LR_FRACTION if own is None else own

    def _choices(self, given: bool) -> dict[str, Any]:
        return {
            "target": self.target.describe(),
            "decay_fraction": self.target.decay_fraction if self.target.kind == "wsd" else None,
            "final_lr_fraction": self.target.final_lr_fraction
            if self.target.final_lr_fraction is not None
            else f"each run's own final LR fraction, {DEFAULT_FINAL_LR_FRACTION:g} for a run whose LR never decays",
            "forecaster": "SweepForecaster: the run's points up to the last step the target shares with it, under the "
            "target's plan; prior: the run's own posterior from its whole curve, no between-run spread (pooled from "
            "every run's when its LR never decays); calibration: every run's backtests with the other runs' prior"
            if self.target.kind == "wsd"
            else "CurveFitter (multi-power law) fitted to the run's whole curve, predict_final on the target schedule",
            "calibration": self.calibration_,
            "budgets": "given"
            if given
            else f"{DEFAULT_N_TARGETS} log-spaced over {DEFAULT_SPAN:g}x below the "
            "longest run, each run up to its own end",
            "loss_sd": "the forecast's predictive SD of the expected final: without the noise of one observed loss for "
            "the wsd target, the law fitter's interval half-width over the normal quantile for the cosine target",
            "compute": "6*N*D per run (used) and per point (the equivalent grid of fully decayed runs)",
        }

    def frame(self) -> pd.DataFrame:
        """The points as plain columns (run, n, d, loss, loss_sd, source)."""
        return self.points_[list(POINT_COLUMNS)].copy()


def default_targets(runs: Sequence[SizeRun], n: int = DEFAULT_N_TARGETS, span: float = DEFAULT_SPAN) -> np.ndarray:
    """``n`` budgets log-spaced from the longest run's D / ``span`` to its D."""
    longest = max(r.tokens for r in runs)
    return np.exp(np.linspace(math.log(longest / span), math.log(longest), n))


def wsd_plan(run: SizeRun, total: int, decay_fraction: float, final_fraction: float) -> tuple[Schedule, int]:
    """The WSD target of ``total`` steps and the last absolute step it shares with the run.

    Peak LR until decay start s = W + round((1 − f)·(T − W)), then linear to the final LR at T; the
    forecaster gets the run's points up to the last step the two share (:func:`shared_steps`).
    """
    warmup, peak = run.schedule.warmup_steps, run.peak_lr
    n = total - warmup
    if n < 2:
        raise InputError(f"run {run.name!r}: a target of {total} steps leaves no steps after the {warmup}-step warmup")
    stable = int(round((1.0 - decay_fraction) * n))
    stable = min(max(stable, 1), n - 1)
    decay = n - stable
    slope = -(peak - final_fraction * peak) / decay
    plan = Schedule.from_pieces(
        np.array([1, stable + 1]),
        np.array([peak, peak + slope]),
        np.array([0.0, slope]),
        n,
        peak,
        run.schedule.warmup_sum,
        warmup,
    )
    return plan, shared_steps(run, plan)


def shared_steps(run: SizeRun, plan: Schedule) -> int:
    """The last absolute step up to which ``plan``'s LRs are the run's: the part of the run the target shares.

    A target shorter than the run decays where the run still holds its peak, so it shares the run up to its
    decay start; the target of the run's own length and decay is the run, and shares every step.
    """
    ours, theirs = run.per_step(run.schedule), run.per_step(plan)
    n = min(ours.size, theirs.size)
    differ = np.flatnonzero(np.abs(ours[:n] - theirs[:n]) > MATCH_TOLERANCE * run.peak_lr)
    return int(differ[0]) if differ.size else n


def cosine_plan(run: SizeRun, total: int, final_fraction: float) -> Schedule:
    """The cosine target of ``total`` steps: η_t = f·η_0 + (1 − f)·η_0·(1 + cos(π(t − 1)/(T − 1)))/2 after the warmup."""
    warmup, peak = run.schedule.warmup_steps, run.peak_lr
    n = total - warmup
    if n < 2:
        raise InputError(f"run {run.name!r}: a target of {total} steps leaves no steps after the {warmup}-step warmup")
    progress = np.arange(n) / (n - 1)
    lrs = peak * (final_fraction + (1.0 - final_fraction) * 0.5 * (1.0 + np.cos(math.pi * progress)))
    return Schedule(lrs, peak, run.schedule.warmup_sum, warmup)


def equivalent_grid_ratio(points: pd.DataFrame, compute_used: float) -> float:
    """Compute the design used over that of the grid of fully decayed runs its points stand for (6·N·D each)."""
    grid = float((6.0 * points["n"] * points["d"]).sum())
    return compute_used / grid if grid > 0 else math.nan


def _check_runs(runs: list[SizeRun]) -> None:
    if not runs:
        raise InputError("no runs")
    names = [r.name for r in runs]
    if len(set(names)) != len(names):
        raise InputError(f"run names repeat: {sorted({n for n in names if names.count(n) > 1})}")
    if len({r.n_params for r in runs}) < 2:
        raise InputError(
            f"one model size only (N = {runs[0].n_params:.4g}): a frontier needs runs of at least two sizes"
        )


def _run_targets(run: SizeRun, targets: np.ndarray, given: bool) -> np.ndarray:
    return targets if given else targets[targets <= run.tokens * (1.0 + 1e-9)]


def _steps_of(run: SizeRun, tokens: float) -> int:
    return int(round(tokens / run.tokens_per_step))


def _row(run: SizeRun, d: float, loss: float, sd: float, forecast: dict, observed: bool = False) -> dict:
    source = "observed" if observed else "forecast" if d <= run.tokens * (1.0 + 1e-9) else "extrapolated"
    return {"run": run.name, "n": run.n_params, "d": float(d), "loss": loss, "loss_sd": sd, "source": source} | {
        "forecast": forecast
    }


def _run_curve(run: SizeRun, name: str, plan: Schedule, shared: int) -> RunCurve:
    """The run's points up to absolute step ``shared``, as a curve of the plan ``plan`` (x in steps)."""
    keep = (run.steps <= shared) & np.isfinite(run.loss)
    return RunCurve(name, run.steps[keep], run.loss[keep], float(plan.total_steps), run.per_step(plan), 1.0, plan)


def _curve(run: SizeRun) -> Curve:
    keep = (run.steps > run.schedule.warmup_steps) & np.isfinite(run.loss) & (run.loss > 0)
    return Curve(run.schedule, run.steps[keep].astype(np.int64), run.loss[keep], run.name)
