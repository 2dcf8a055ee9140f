"""Forecasts of a run's final loss: the numbers the law policy compares, and what feeds them.

A :class:`Forecast` is a log-normal predictive distribution of the loss at the run's planned
end: a median ``loss`` and ``sd_log``, the SD of log loss. Sources: the schedule-aware law
(:mod:`~scaling_callback.stopping.mpl_forecast`), a saturating power law in x when no LR is known
(:mod:`~scaling_callback.stopping.power_forecast`), and :func:`observed_final` for a finished run.

A :class:`DropMember` is what one finished run's LR decay bought, with the schedule it was
bought on: the sweep's shared knowledge of what a decay buys (docs/reference.md §2: a run that has not
decayed yet cannot identify its own drop term).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
from scipy.special import ndtr  # the normal CDF, without importing scipy.stats

from scaling_callback.stopping.policy import RunView

MAD_TO_SIGMA = 1.4826
MIN_SD_LOG = 1e-4
TAIL_POINTS = 12  # points at the end of a finished curve that estimate its noise
SHAPE_GRID = 64  # fractions of a run at which schedules are compared
MIN_DECAY = 0.05  # LR decreases smaller than this fraction of the peak tell nothing of what a decay buys
NOW_POINTS = 5  # recent points whose median is a run's loss now (on a falling curve it lags above the truth)


@dataclass(frozen=True)
class Forecast:
    """Log-normal prediction of a run's loss at its planned end.

    ``upper_bound`` marks a forecast that only bounds the final loss from above (a decay is
    planned but nothing tells how much it will buy: no decay seen and no finished run to borrow
    from); ``loss`` and ``sd_log`` are then those of the bound (the pre-decay law continued on the
    plan without drop term, less the drop already realised). ``at(x)`` gives (loss, sd_log) at an earlier x of the same plan, when the source can.
    ``decay_ahead``: the LR decreases still planned, summed, as a fraction of the peak LR (what
    bounds a decay's gain: the multi-power law's drop is at most B × that decrease).
    """

    loss: float
    sd_log: float
    source: str
    upper_bound: bool = False
    at: Callable[[float], tuple[float, float]] | None = None
    decay_ahead: float = 1.0


def probability_below(first: tuple[float, float], second: tuple[float, float]) -> float:
    """P(L1 < L2) for independent log-normal (median, sd_log) pairs."""
    spread = math.hypot(first[1], second[1])
    gap = math.log(second[0]) - math.log(first[0])
    if spread <= 0 or not math.isfinite(spread):
        return 0.5 if not math.isfinite(spread) else (1.0 if gap > 0 else 0.0)
    return float(ndtr(gap / spread))


def noise_sd_log(loss: np.ndarray) -> float:
    """Point-to-point noise of a curve's log loss from its second differences (a smooth trend cancels)."""
    log_loss = np.log(np.asarray(loss, dtype=float))
    if log_loss.size < 4:
        return MIN_SD_LOG
    second = np.diff(log_loss, 2)  # white noise of SD σ gives second differences of SD σ·√6
    return max(MAD_TO_SIGMA * float(np.median(np.abs(second - np.median(second)))) / math.sqrt(6.0), MIN_SD_LOG)


def observed_final(run: RunView) -> Forecast:
    """A finished run's last logged loss, uncertain only by its measurement noise."""
    return Forecast(float(run.loss[-1]), noise_sd_log(run.loss[-TAIL_POINTS:]), "observed")


@dataclass(frozen=True)
class DropMember:
    """What one finished run's LR decay bought, and the schedule it was bought on.

    ``profile[i]`` is log(no-decay extrapolation) − log(fitted loss) at fraction ``i/(SHAPE_GRID−1)``
    of the run's post-warmup steps: how far below the continuation of its pre-decay curve the run
    ended up. An empirical quantity on purpose: a single curve identifies the MPL drop
    *parameters* poorly (they trade off against L0, A and α), so transplanting parameters from
    one run into another run's fit gives nonsense, while the size of the drop itself transfers
    between runs on alike schedules.
    """

    run: str
    profile: np.ndarray
    shape: np.ndarray  # LR / peak LR at SHAPE_GRID evenly spaced fractions of the run
    log_peak: float

    @classmethod
    def from_lrs(cls, run: str, profile: np.ndarray, lrs: np.ndarray) -> "DropMember":
        shape, log_peak = schedule_signature(lrs)
        return cls(run, np.asarray(profile, dtype=float), shape, log_peak)

    def to_dict(self) -> dict:
        """Plain values, for the store."""
        return {"run": self.run, "profile": self.profile.tolist(), "shape": self.shape.tolist(), "log_peak": self.log_peak}

    @classmethod
    def from_dict(cls, values: dict) -> "DropMember":
        return cls(str(values["run"]), np.asarray(values["profile"], dtype=float), np.asarray(values["shape"], dtype=float),
                   float(values["log_peak"]))

    def drop_at(self, fraction: float) -> float:
        """The log-loss drop at ``fraction`` of the run (linear between grid points)."""
        return float(np.interp(fraction, np.linspace(0.0, 1.0, self.profile.size), self.profile))

    @property
    def gain_per_decay(self) -> float:
        """The drop at the run's end per unit of LR decrease (as a fraction of its peak LR); 0 without a decay."""
        decay = float(np.sum(np.maximum(self.shape[:-1] - self.shape[1:], 0.0)))
        return max(float(self.profile[-1]), 0.0) / decay if decay > MIN_DECAY else 0.0

    def distance(self, shape: np.ndarray, log_peak: float) -> float:
        """Mean |difference| of the normalised schedules plus |log ratio| of the peak LRs.

        A decay buys more at a higher LR (on the benchmark sweep, width 1024: WSD ends 9.5 % below
        the constant-LR run at peak LR 4, 1.9 % at 1.5), so drops are only borrowed between runs of
        similar peak LR.
        """
        return schedule_distance((self.shape, self.log_peak), (shape, log_peak))


def schedule_distance(first: tuple[np.ndarray, float], second: tuple[np.ndarray, float]) -> float:
    """Distance of two :func:`schedule_signature` values: mean |shape difference| + |log peak ratio|."""
    return float(np.mean(np.abs(first[0] - second[0])) + abs(first[1] - second[1]))


def loss_now(loss: np.ndarray) -> float:
    """A curve's loss now: the median of its last ``NOW_POINTS`` points (one noisy point never sets it)."""
    return float(np.median(np.asarray(loss, dtype=float)[-NOW_POINTS:]))


def schedule_signature(lrs: np.ndarray) -> tuple[np.ndarray, float]:
    """(LR/peak at SHAPE_GRID fractions of the plan, log peak LR): what makes two decays alike."""
    lrs = np.asarray(lrs, dtype=float)
    peak = float(lrs.max()) if lrs.size else 1.0
    peak = peak if peak > 0 else 1.0
    grid = np.linspace(0.0, 1.0, SHAPE_GRID) * (lrs.size - 1)
    return np.interp(grid, np.arange(lrs.size), lrs / peak), math.log(peak)


def nearest_members(members: list[DropMember], lrs: np.ndarray, k: int, max_distance: float = math.inf,
                    slack: float = math.inf) -> list[DropMember]:
    """The ``k`` members (all when k ≤ 0) most like the schedule ``lrs``.

    None farther than ``max_distance``, nor farther than the nearest one plus ``slack`` (so that
    runs on the very same schedule, when there are some, are not mixed with less similar ones).
    """
    shape, log_peak = schedule_signature(lrs)
    ranked = sorted((m.distance(shape, log_peak), i, m) for i, m in enumerate(members))
    if not ranked:
        return []
    limit = min(max_distance, ranked[0][0] + slack)
    close = [m for distance, _, m in ranked if distance <= limit]
    return close if k <= 0 else close[:k]
