"""Forecast a run's final loss from its points so far and its planned LR schedule (multi-power law).

The run's post-warmup points are fitted with :class:`CurveFitter` (Luo et al., ICLR 2025,
eq. 1–2) and the loss is predicted at the planned end. The fitter's central ``level`` interval
is Gaussian in log space, so its SD is ``(log high − log low) / (2·z)``. Three additions make the
forecast honest enough to stop runs on (all measured on the benchmark sweep,
benchmarks/bench_stopping.py, and checked on the MPL paper's curves):

- **What a decay buys, borrowed from alike runs** (finished, or far enough into their decay).
  Before its first LR decrease a run's
  points say nothing about its drop term. The forecast is then the continuation of its
  pre-decay curve (the law without drop term) minus the drop that finished runs on alike
  schedules obtained (:class:`DropMember`: their final loss below the continuation of *their*
  pre-decay curves — the same extrapolation, so its bias largely cancels). The spread of those
  drops and ``drop_transfer_sd`` × the drop are added to the variance. Only runs whose schedule
  is within ``max_member_distance`` lend (see :meth:`DropMember.distance`).
- **Partly seen decays.** A run's own fitted drop term is poor until much of the decay has been
  seen (mean final-loss error 4.3 % at 8 % of a cosine decay seen, 1.6 % at 33 %, 0.7 % at
  48 %). The forecast is a mixture of the own fit (weight ramping from 0 at 25 % of the planned
  decay seen to 1 at 75 %) and the borrowed forecast. With nothing to borrow, it is only an
  upper bound (the pre-decay law continued on the plan without drop term, less the drop the run
  has already realised) until the own fit is trusted; ``Forecast.decay_ahead`` says how much
  decay that bound leaves out.
- **Extrapolation error.** The fit's interval assumes the law is right; ``extrapolation_error``
  × |log L̂(end) − log L̂(now)| of the extrapolated curve is added as an SD.

With the defaults, forecasts of the 35 benchmark runs from their first 10–85 % (every other run
finished) put the true final loss inside the 90 % interval 89–97 % of the time, above it (an
optimistic forecast) ≤ 11 % and below it (pessimistic, the kind that stops a good run) ≤ 3 %;
mean |log error| 1.4 % at 10 %, 0.5 % at 50 %.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
from scipy.special import ndtri  # the normal quantile, without importing scipy.stats

from scaling_callback.errors import InputError
from scaling_callback.fitting.curve_fitter import DECAY_FRACTION_FOR_IDENTIFIABILITY, CurveFitter
from scaling_callback.fitting.curves import Curve
from scaling_callback.laws.loss_curves import CURVE_LAWS
from scaling_callback.laws.lr_terms import lr_terms
from scaling_callback.laws.schedule import Schedule
from scaling_callback.stopping.forecast import SHAPE_GRID, MIN_SD_LOG, DropMember, Forecast, loss_now, nearest_members
from scaling_callback.stopping.policy import RunView

MIN_POINTS = 4  # post-warmup points before a first forecast (3 parameters before a decay)
MIN_POINTS_AFTER_DECAY = 4
TRUST_FROM, TRUST_FULL = 0.25, 0.75  # fractions of the planned decay seen (see _trust)
MEMBER_SLACK = 0.2  # members at most this much farther than the nearest one are pooled


class MPLForecaster:
    """Fit a schedule-aware law to a run's points so far and forecast its final loss.

    Args:
        law: per-run law (``mpl`` by default; see :data:`CURVE_LAWS`).
        n_starts: grid starts refined by the fitter (a replay makes hundreds of fits).
        max_blocks: LR change blocks per curve while fitting.
        jackknife: add the fitter's delete-one-chunk jackknife to its interval (4 more refits).
        max_points: at most this many evenly spaced points are fitted.
        level: coverage of the fitter's interval (converted to an SD).
        neighbours: at most this many finished runs lend their drop.
        extrapolation_error: SD added per unit of predicted remaining log-loss change.
        drop_transfer_sd: SD of a borrowed drop, as a fraction of its size.
        max_member_distance: finished runs whose schedules differ more than this lend no drop.
    """

    def __init__(self, law: str = "mpl", n_starts: int = 2, max_blocks: int | None = 128, jackknife: bool = False,
                 max_points: int = 96, level: float = 0.9, neighbours: int = 3, extrapolation_error: float = 0.25,
                 drop_transfer_sd: float = 0.25, max_member_distance: float = 0.75) -> None:
        if law not in CURVE_LAWS or not CURVE_LAWS[law].drop_param_names:
            raise InputError(f"law {law!r} is not a per-run law with a drop term; choose mpl, lldl or momentum")
        if max_points < MIN_POINTS:
            raise InputError(f"max_points must be >= {MIN_POINTS}, got {max_points!r}")
        if not 0 < level < 1:
            raise InputError(f"level must lie in (0, 1), got {level!r}")
        if min(extrapolation_error, drop_transfer_sd, max_member_distance) < 0:
            raise InputError("extrapolation_error, drop_transfer_sd and max_member_distance must be >= 0")
        self.law, self.n_starts, self.max_blocks, self.jackknife = law, n_starts, max_blocks, jackknife
        self.max_points, self.level, self.neighbours = max_points, level, neighbours
        self.extrapolation_error, self.drop_transfer_sd = extrapolation_error, drop_transfer_sd
        self.max_member_distance = max_member_distance
        self._early_fits: dict[tuple, CurveFitter | None] = {}

    # ------------------------------------------------------------------ fits
    def fit(self, run: RunView, before_decay: bool = False) -> tuple[CurveFitter | None, Schedule, str]:
        """The fitter on the run's usable points (only those before its first decay with ``before_decay``).

        Returns None with a reason when there are too few points or the fit fails.
        """
        if run.lrs is None:
            raise InputError(f"run {run.name!r} has no planned LR schedule")
        schedule = Schedule.from_per_step(run.lrs)
        steps = _steps(run)
        keep = (steps > schedule.warmup_steps) & (steps <= schedule.total_steps) & np.isfinite(run.loss) & (run.loss > 0)
        steps, loss = steps[keep], run.loss[keep]
        after_decay = steps > _decay_step(schedule)
        if before_decay or after_decay.sum() < MIN_POINTS_AFTER_DECAY:
            steps, loss = steps[~after_decay], loss[~after_decay]  # never fit a drop term to one or two points
        if steps.size < MIN_POINTS:
            return None, schedule, f"{steps.size} usable post-warmup points, need {MIN_POINTS}"
        if steps.size > self.max_points:
            index = np.unique(np.rint(np.linspace(0, steps.size - 1, self.max_points)).astype(int))
            steps, loss = steps[index], loss[index]
        fitter = CurveFitter(law=self.law, n_starts=self.n_starts, max_blocks=self.max_blocks,
                             level=self.level, jackknife=self.jackknife)
        fitter.fit([Curve(schedule, steps, loss, run.name)])
        if fitter.status_ != "ok" or not fitter.params_:
            return None, schedule, f"fit {fitter.status_}"
        return fitter, schedule, "ok"

    def drop_member(self, run: RunView) -> DropMember | None:
        """What a (finished) run's decay bought; None when it never decayed or a fit failed."""
        full, schedule, _ = self.fit(run)
        early = self._before_decay_fit(run)
        if full is None or early is None or full.drop_term_ != "fitted":
            return None
        grid = _grid_steps(schedule)
        no_decay = early.predict(schedule, grid)
        fitted = full.predict(schedule, grid)
        if np.any(no_decay <= 0) or np.any(fitted <= 0):
            return None
        return DropMember.from_lrs(run.name, np.log(no_decay) - np.log(fitted), run.lrs)

    def decay_seen(self, run: RunView) -> float:
        """Fraction of the run's planned LR decrease that lies behind its last point (1 when none is planned)."""
        schedule = Schedule.from_per_step(run.lrs)
        return _decay_seen_fraction(schedule, int(_steps(run)[-1]) if run.x.size else 0, schedule.total_steps)

    def _before_decay_fit(self, run: RunView) -> CurveFitter | None:
        """The fit of the run's points before its decay (they no longer change once it began: cached)."""
        schedule = Schedule.from_per_step(run.lrs)
        before = run.loss[_steps(run) <= _decay_step(schedule)]
        key = (run.name, float(run.budget), before.tobytes())
        if key not in self._early_fits:
            self._early_fits[key] = self.fit(run, before_decay=True)[0]
        return self._early_fits[key]

    # -------------------------------------------------------------- forecast
    def forecast(self, run: RunView, members: Sequence[DropMember] = ()) -> tuple[Forecast | None, str]:
        """Forecast of the loss at the run's planned end (None with the reason when there is none)."""
        fitter, schedule, why = self.fit(run)
        if fitter is None:
            return None, why
        chosen = nearest_members(list(members), run.lrs, self.neighbours, self.max_member_distance, MEMBER_SLACK)
        now_step = int(np.clip(np.rint(_steps(run)[-1]), schedule.warmup_steps + 1, schedule.total_steps))
        own = _OwnFit(self, fitter, schedule, now_step)
        seen = _decay_seen_fraction(schedule, now_step, schedule.total_steps)
        continuation = None
        if _trust(seen) < 1.0:  # some of the planned decay is not yet in the run's own fit
            early = fitter if fitter.drop_term_ != "fitted" else self._before_decay_fit(run)
            if early is None:
                return None, "the points before its decay could not be fitted"
            continuation = _Continuation(self, early, schedule, now_step, chosen, loss_now(run.loss))

        def at_step(step: int) -> tuple[float, float, bool]:
            weight = _trust(_decay_seen_fraction(schedule, now_step, step))
            if weight >= 1.0 or continuation is None:  # no decay ahead, or enough of it seen
                return own.predict(step)
            other, other_variance = continuation.predict(step)
            if not chosen:  # nothing tells what the decay buys: the law without its drop bounds the loss
                return other, other_variance, True
            if weight <= 0.0:
                return other, other_variance, False
            centre, variance, _ = own.predict(step)
            mean = weight * centre + (1 - weight) * other
            variance = weight * (variance + (centre - mean) ** 2) + (1 - weight) * (other_variance + (other - mean) ** 2)
            return mean, variance, False

        def at(x: float) -> tuple[float, float]:
            step = float(run.step_of_x(np.array([x]))[0]) if run.step_of_x is not None else x
            centre, variance, upper = at_step(int(np.clip(round(step), schedule.warmup_steps + 1, schedule.total_steps)))
            return math.exp(centre), (math.inf if upper else max(math.sqrt(variance), MIN_SD_LOG))

        centre, variance, upper = at_step(schedule.total_steps)
        source = f"{self.law}, {seen:.0%} of the planned decay seen"
        if continuation is not None and chosen:
            source += f", drop borrowed from {', '.join(m.run for m in chosen)}"
        elif upper:
            source += ", no run on an alike schedule to borrow a drop from: upper bound"
        # decay whose drop the forecast does not hold yet: all that is ahead, and the part seen but not trusted
        fitted_to = now_step if fitter.drop_term_ == "fitted" else min(now_step, _decay_step(schedule))
        decay_ahead = (_fallen(schedule, schedule.total_steps) - _trust(seen) * _fallen(schedule, fitted_to)) / schedule.peak_lr
        return Forecast(math.exp(centre), max(math.sqrt(variance), MIN_SD_LOG), source, upper, at, decay_ahead), "ok"


class _OwnFit:
    """The run's own fit: log-loss prediction and variance at any step of its plan."""

    def __init__(self, owner: MPLForecaster, fitter: CurveFitter, schedule: Schedule, now_step: int) -> None:
        self.owner, self.fitter, self.schedule, self.now_step = owner, fitter, schedule, now_step
        self.z = ndtri(0.5 + owner.level / 2.0)
        self.log_now = _log(float(fitter.predict(schedule, np.array([now_step]))[0]))

    def predict(self, step: int) -> tuple[float, float, bool]:
        """(log loss, variance, only an upper bound) at absolute ``step``."""
        final = self.fitter.predict_final(self.schedule.truncated(int(step)))
        if not math.isfinite(final.loss):  # a decay is planned and nothing tells what it buys
            bound = _log(final.high)
            return bound, (self.owner.extrapolation_error * (bound - self.log_now)) ** 2, True
        centre = math.log(final.loss)
        variance = ((math.log(final.high) - math.log(final.low)) / (2.0 * self.z)) ** 2
        return centre, variance + (self.owner.extrapolation_error * (centre - self.log_now)) ** 2, False


class _Continuation:
    """The law fitted to the run's points before its decay, continued on its planned schedule without drop term.

    Minus the drop already realised (the continuation at the run's last step less its loss now),
    an upper bound of the loss: the multi-power law's drop term only lowers the loss and, on a
    schedule that only falls, only grows (Luo et al. 2025, eq. 1–2). Minus instead the drops that
    ``members`` (alike runs) obtained below their own such continuations, the borrowed forecast.
    Not the loss with the LR held where it is now: at a low LR a decay can cost more progress
    than it buys (the benchmark's crossing sweep: cosine ends 4–5 % above constant).
    """

    def __init__(self, owner: MPLForecaster, early: CurveFitter, schedule: Schedule, now_step: int,
                 members: list[DropMember], loss_now: float) -> None:
        self.owner, self.early, self.schedule, self.members = owner, early, schedule, members
        self.z = ndtri(0.5 + owner.level / 2.0)
        self.now_step = now_step
        self.log_now = _log(float(early.predict(schedule, np.array([now_step]))[0]))
        self.realised = max(math.exp(self.log_now) - loss_now, 0.0) if math.isfinite(loss_now) else 0.0

    def predict(self, step: int) -> tuple[float, float]:
        """(log loss, variance) at absolute ``step``."""
        plan = self.schedule.truncated(int(step))
        terms = lr_terms([plan], [np.array([plan.total_steps])], None)
        continuation = self.early.interval_.final(terms, self.early.drop_term_)  # the law without drop term
        extrapolated = math.log(continuation.loss)
        variance = ((math.log(continuation.high) - math.log(continuation.low)) / (2.0 * self.z)) ** 2
        variance += (self.owner.extrapolation_error * (extrapolated - self.log_now)) ** 2
        if not self.members:
            if step <= self.now_step or self.realised <= 0.0 or self.realised >= 0.5 * continuation.loss:
                return extrapolated, variance  # (a drop of half the loss is no drop the law explains)
            shifted = continuation.loss - self.realised
            return math.log(shifted), variance * (continuation.loss / shifted) ** 2
        fraction = (step - self.schedule.warmup_steps) / max(len(self.schedule.lrs), 1)
        drops = np.array([m.drop_at(fraction) for m in self.members])
        drop = float(np.median(drops))
        variance += float(np.var(drops, ddof=1)) if drops.size > 1 else 0.0
        variance += (self.owner.drop_transfer_sd * drop) ** 2
        return extrapolated - drop, variance


def _steps(run: RunView) -> np.ndarray:
    """The run's points as absolute optimizer steps."""
    return np.rint(run.step_of_x(run.x) if run.step_of_x is not None else run.x).astype(np.int64)


def _grid_steps(schedule: Schedule) -> np.ndarray:
    """Absolute steps at SHAPE_GRID evenly spaced fractions of the post-warmup plan."""
    span = len(schedule.lrs)
    return schedule.warmup_steps + np.clip(np.rint(np.linspace(0.0, 1.0, SHAPE_GRID) * span), 1, span).astype(np.int64)


def _trust(seen: float) -> float:
    """Weight of the run's own fitted drop term given the fraction of its planned decay seen."""
    return float(np.clip((seen - TRUST_FROM) / (TRUST_FULL - TRUST_FROM), 0.0, 1.0))


def _fallen(schedule: Schedule, step: int) -> float:
    """Sum of the plan's LR decreases up to absolute ``step`` (rises do not count)."""
    previous = np.concatenate([[schedule.peak_lr], schedule.lrs[:-1]])
    fallen = np.concatenate([[0.0], np.cumsum(np.maximum(previous - schedule.lrs, 0.0))])
    return float(fallen[max(min(step, schedule.total_steps) - schedule.warmup_steps, 0)])


def _decay_seen_fraction(schedule: Schedule, now_step: int, end_step: int) -> float:
    """LR decrease up to ``now_step`` over the decrease planned up to ``end_step`` (1 when none is planned)."""
    planned = _fallen(schedule, end_step)
    return 1.0 if planned <= 0 else _fallen(schedule, min(now_step, end_step)) / planned


def _decay_step(schedule: Schedule) -> int:
    """Last absolute step before the LR has fallen by the fitter's identifiability threshold."""
    previous = np.concatenate([[schedule.peak_lr], schedule.lrs[:-1]])
    fallen = np.cumsum(np.maximum(previous - schedule.lrs, 0.0))
    index = np.flatnonzero(fallen >= DECAY_FRACTION_FOR_IDENTIFIABILITY * schedule.peak_lr)
    return schedule.warmup_steps + int(index[0]) if index.size else schedule.total_steps


def _log(value: float) -> float:
    return math.log(max(value, 1e-300))
