"""The law policy: stop a run when its forecast final loss is unlikely to beat the sweep's best.

At each check the run's loss at its *planned end*, under its *planned schedule*, is forecast
(:mod:`mpl_forecast` with an LR schedule, :mod:`power_forecast` without), and compared with the
best final loss the sweep has observed (finished runs) or forecast (running runs, from their own
latest check). The run is unpromising when P(its final < the best's) < ``threshold`` — Domhan et
al. (2015) stop at P(beats best) < 0.05 — and stopped after ``confirmations`` consecutive
unpromising checks. The run with the best predicted-or-observed final is the leader and is never
stopped.

With uncertain rivals "the best" is itself uncertain: the policy uses the minimum over rivals of
P(final < that rival's final), an upper bound on P(final < all of them) that, unlike the product
over rivals, does not shrink just because many rivals are uncertain, and that a finished rival's
precise final binds even when a running rival's forecast looks better. A running rival whose
planned LR never rises again ends at or below its loss now (the median of its last points), so
that loss binds too, however uncertain its forecast still is (a late starter that is already
ahead).

A run whose forecast is only an upper bound (a decay ahead whose size no finished run on an
alike schedule tells) is stopped only if even the most its decays ahead can buy would leave it
unlikely to win. That most is ``max_decay_gain`` per whole decay, scaled by the decay still
ahead (the multi-power law's drop is at most B × the LR decrease; Luo et al. 2025, eq. 2), or,
once the sweep has seen decays at a peak LR at least this run's, ``GAIN_SAFETY`` × the largest
drop per unit of decay they bought. Against a rival on an alike schedule whose decay is also
still ahead, the two decays buy alike, and only the difference of what they buy matters.
Runs that are running or were stopped lend what their decay bought once their curve shows
most of it, so a sweep need not wait for a run to finish to learn it.

Objectives:
- ``final``: compare losses at each run's planned end (best final loss of the sweep).
- ``frontier``: compare at equal planned compute — the best loss any other run reaches (or is
  forecast to reach) with at most this run's planned compute, i.e. the lower envelope of loss
  against compute (Hoffmann et al. 2022, approach 1) at this run's budget. A run is worth
  finishing if it would lie on that frontier.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import ndtr

from scaling_callback.errors import InputError
from scaling_callback.stopping.forecast import (NOW_POINTS, TAIL_POINTS, DropMember, Forecast, loss_now, noise_sd_log,
                                                observed_final, probability_below, schedule_distance, schedule_signature)
from scaling_callback.stopping.mpl_forecast import TRUST_FULL, MPLForecaster
from scaling_callback.stopping.policy import Decision, RunView, StoppingPolicy, SweepView, Verdict
from scaling_callback.stopping.power_forecast import PowerLawForecaster

OBJECTIVES = ("final", "frontier")


ALIKE_DISTANCE = 0.1  # schedules this close (schedule_distance) decay alike
ALIKE_GAIN_SPREAD = 0.2  # on alike schedules, one run's decay gain exceeds another's by at most this × the gain bound
GAIN_SAFETY = 2.0  # a decay ahead buys at most this × the largest drop per unit of decay the sweep has seen


@dataclass(frozen=True)
class _Rival:
    name: str
    loss: float
    sd_log: float
    how: str
    bound: "Forecast | None" = None  # its forecast, when that is only an upper bound
    lrs: np.ndarray | None = None


class LawPolicy(StoppingPolicy):
    """Stop runs whose law forecast is unlikely to beat the sweep's best; see the module docstring.

    Args:
        threshold: stop when P(final beats the best) is below this.
        objective: ``final`` or ``frontier``.
        mpl: forecaster for runs with a planned LR schedule.
        power_law: forecaster for runs without one.
        max_decay_gain: the most a whole LR decay (to zero) can lower the final loss (a fraction),
            while the sweep has seen no decay to calibrate it. Used only when the forecast is an
            upper bound (a decay ahead of unknown size): a run is stopped if even that gain cannot
            make it win. Measured (final loss, decayed vs constant LR): 1.3–2.7 % on the MPL
            paper's curves, up to 12 % on the benchmark's high-LR toy runs.
        n_startup_runs, n_warmup_steps, warmup_fraction, interval_steps, interval_fraction,
        confirmations: the gating of :class:`StoppingPolicy` (defaults: no finished run needed —
        a forecast that cannot be made without one is an upper bound —, a first check at 5 % of
        the budget, then every 0.5 %, and 2 consecutive confirmations).
    """

    name = "law"

    def __init__(
        self,
        threshold: float = 0.05,
        objective: str = "final",
        mpl: MPLForecaster | None = None,
        power_law: PowerLawForecaster | None = None,
        n_startup_runs: int = 0,
        n_warmup_steps: float = 0.0,
        warmup_fraction: float = 0.05,
        interval_steps: float = 0.0,
        interval_fraction: float = 0.005,
        confirmations: int = 2,
        max_decay_gain: float = 0.15,
    ) -> None:
        if not 0.0 < threshold < 1.0:
            raise InputError(f"threshold must lie in (0, 1), got {threshold!r}")
        if not 0.0 <= max_decay_gain < 1.0:
            raise InputError(f"max_decay_gain must lie in [0, 1), got {max_decay_gain!r}")
        self.max_decay_gain = float(max_decay_gain)
        if objective not in OBJECTIVES:
            raise InputError(f"objective must be one of {', '.join(OBJECTIVES)}, got {objective!r}")
        self.threshold, self.objective = float(threshold), objective
        self.mpl = mpl or MPLForecaster()
        self.power_law = power_law or PowerLawForecaster()
        super().__init__(n_startup_runs, n_warmup_steps, warmup_fraction, interval_steps, interval_fraction, confirmations)

    @property
    def needs_sweep_curves(self) -> bool:  # type: ignore[override]
        return self.objective == "frontier"  # the final objective needs only forecasts and finished runs' ends

    def reset(self) -> None:
        super().reset()
        self._members: dict[str, DropMember | None] = {}
        self._forecasts: dict[tuple, tuple[Forecast | None, str]] = {}
        self._latest: dict[str, Forecast] = {}
        self._unsaved: set[str] = set()  # drop members fitted here and not yet in the store
        self._provisional: set[str] = set()  # drop members of runs that had not finished when fitted

    def should_stop(self, **context: Any) -> Decision:
        """As :meth:`StoppingPolicy.should_stop`; the finished runs' drop members fitted meanwhile go to the store."""
        decision = super().should_stop(**context)
        store = context.get("store")
        if store is not None and self._unsaved:
            from scaling_callback.store.drop_members import save_drop_member

            for name in sorted(self._unsaved):
                member = self._members.get(name)
                save_drop_member(store, name, member.to_dict() if member is not None else None)
            self._unsaved.clear()
        return decision

    # ------------------------------------------------------------------ rule
    def judge(self, run: RunView, sweep: SweepView) -> Verdict:
        members = self.drop_members(sweep)
        forecast, why = self.forecast(run, members)
        if forecast is None:
            return Verdict(False, None, f"no forecast: {why}")
        rivals = self._rivals(run, sweep)
        if forecast.upper_bound:
            return self._judge_bound(run, forecast, rivals, members)
        if not rivals:
            return Verdict(False, None, f"no rival with a final loss or forecast yet (own forecast {forecast.loss:.4g})")
        best = min(rivals, key=lambda r: r.loss)
        if forecast.loss <= best.loss:
            probability = probability_below((forecast.loss, forecast.sd_log), (best.loss, best.sd_log))
            return Verdict(False, probability, f"leader: forecast {forecast.loss:.4g} (sd_log {forecast.sd_log:.2g}, "
                                               f"{forecast.source}) vs {best.name} {best.how} {best.loss:.4g}")
        # P(beats the best) <= P(beats each rival): the binding rival is the one it is least likely to beat
        chances = [(probability_below((forecast.loss, forecast.sd_log), (r.loss, r.sd_log)), r) for r in rivals]
        probability, best = min(chances, key=lambda pair: pair[0])
        versus = (f"forecast {forecast.loss:.4g} (sd_log {forecast.sd_log:.2g}, {forecast.source}) vs {best.name} "
                  f"{best.how} {best.loss:.4g} (sd_log {best.sd_log:.2g})")
        if probability < self.threshold:
            return Verdict(True, probability, f"P(beats best) = {probability:.3g} < {self.threshold:g}: {versus}")
        return Verdict(False, probability, f"P(beats best) = {probability:.3g}: {versus}")

    def _judge_bound(self, run: RunView, forecast: Forecast, rivals: list[_Rival], members: list[DropMember]) -> Verdict:
        """Only an upper bound is known: stop only if even the most its decays ahead may buy cannot win.

        Against a rival on an alike schedule whose forecast is an upper bound too, both decays are
        still ahead and alike: the run wins only if its decay buys at least the gap between the two
        bounds more than the rival's, and it buys at most ``ALIKE_GAIN_SPREAD`` × that most more.
        """
        gain, source = self._gain_bound(run, forecast, members)
        floor = forecast.loss * (1.0 - gain)
        cannot = (f"cannot judge: an LR decay is ahead that no finished run on an alike schedule tells the size of "
                  f"(no decay: {forecast.loss:.4g}; with a {gain:.1%} gain ({source}): {floor:.4g})")
        if not rivals:
            return Verdict(False, None, cannot)
        chances = []
        for rival in rivals:
            chance = probability_below((floor, 0.0), (rival.loss, rival.sd_log))
            how = f"even a {gain:.1%} gain ({source}) from its LR decay leaves {floor:.4g}: P(beats {rival.name} {rival.how} {rival.loss:.4g})"
            alike = self._alike_chance(run, forecast, rival, gain)
            if alike is not None and alike[0] < chance:
                chance, how = alike
            chances.append((chance, how))
        probability, how = min(chances, key=lambda pair: pair[0])
        if probability < self.threshold:
            return Verdict(True, probability, f"{how} <= {probability:.3g} < {self.threshold:g}")
        return Verdict(False, None, cannot)

    def _alike_chance(self, run: RunView, forecast: Forecast, rival: _Rival, gain: float) -> tuple[float, str] | None:
        """P(beats the rival) when both decays are ahead on alike schedules (None when they are not)."""
        if rival.bound is None or run.lrs is None or rival.lrs is None:
            return None
        if schedule_distance(schedule_signature(run.lrs), schedule_signature(rival.lrs)) > ALIKE_DISTANCE:
            return None
        margin = math.log(1.0 - gain) - math.log(1.0 - gain - ALIKE_GAIN_SPREAD * gain)
        gap = math.log(forecast.loss) - math.log(rival.bound.loss)
        spread = math.hypot(forecast.sd_log, rival.bound.sd_log)
        chance = float(ndtr((margin - gap) / spread)) if spread > 0 else float(gap < margin)
        return chance, (f"both decays ahead on alike schedules: no-decay bound {forecast.loss:.4g} vs {rival.name}'s "
                        f"{rival.bound.loss:.4g}, its decay would have to buy {gap:.2%} more (at most {margin:.2%}): P(beats)")

    # ------------------------------------------------------------- forecasts
    def drop_members(self, sweep: SweepView) -> list[DropMember]:
        """What the sweep's decays bought: given by the sweep, or fitted here.

        A finished run with a schedule is fitted once. A running or stopped run whose curve already
        shows ``TRUST_FULL`` of its planned decay lends too (its own fit is trusted then), fitted
        once when it first does; it is refitted when it finishes.
        """
        if sweep.drop_members is not None:
            return list(sweep.drop_members)
        stored = sweep.stored_members or {}
        for other in sweep.runs:
            if other.lrs is None or not other.x.size:
                continue
            if other.status == "finished" and (other.name not in self._members or other.name in self._provisional):
                self._provisional.discard(other.name)
                if other.name in stored:
                    values = stored[other.name]
                    self._members[other.name] = DropMember.from_dict(values) if values is not None else None
                else:
                    self._members[other.name] = self.mpl.drop_member(other)
                    self._unsaved.add(other.name)
            elif other.status != "finished" and other.name not in self._members and self.mpl.decay_seen(other) >= TRUST_FULL:
                self._members[other.name] = self.mpl.drop_member(other)
                self._provisional.add(other.name)
        present = {r.name for r in sweep.runs if r.lrs is not None}
        return [m for name, m in self._members.items() if m is not None and name in present]

    def _gain_bound(self, run: RunView, forecast: Forecast, members: list[DropMember]) -> tuple[float, str]:
        """The most the decays still ahead of ``run`` may lower its loss, and where that bound comes from.

        ``max_decay_gain`` for a whole decay, unless the sweep has seen decays at a peak LR at least
        this run's: a decay buys more at a higher LR (see :meth:`DropMember.distance`), so their
        largest drop per unit of decay, × ``GAIN_SAFETY``, bounds it (a larger model may gain twice
        as much: 1.3 % at 25M, 2.7 % at 400M on the MPL paper's cosine runs). Scaled by the decay ahead.
        """
        ahead = float(np.clip(forecast.decay_ahead, 0.0, 1.0))
        _, log_peak = schedule_signature(run.lrs) if run.lrs is not None else (None, math.inf)
        higher = [m for m in members if m.log_peak >= log_peak - 1e-9]
        per_decay = max((m.gain_per_decay for m in higher), default=math.inf)
        if GAIN_SAFETY * per_decay < self.max_decay_gain:
            best = max(higher, key=lambda m: m.gain_per_decay)
            return GAIN_SAFETY * per_decay * ahead, f"{GAIN_SAFETY:g}x what {best.run}'s decay bought"
        return self.max_decay_gain * ahead, "max_decay_gain"

    def forecast(self, run: RunView, members: list[DropMember]) -> tuple[Forecast | None, str]:
        """The run's forecast (its own, a cached one for the same points, or a new fit); remembered as its latest."""
        if run.forecast is not None:
            self._latest[run.name] = run.forecast
            return run.forecast, "given"
        key = (run.name, run.x.size, run.current_x, tuple(sorted(m.run for m in members)) if run.lrs is not None else ())
        if key not in self._forecasts:
            if run.lrs is not None:
                self._forecasts[key] = self.mpl.forecast(run, members)
            else:
                self._forecasts[key] = self.power_law.forecast(run)
        forecast, why = self._forecasts[key]
        if forecast is not None:
            self._latest[run.name] = forecast
        return forecast, why

    # ----------------------------------------------------------------- rivals
    def _rivals(self, run: RunView, sweep: SweepView) -> list[_Rival]:
        """What each other live run's final loss (or its loss at this run's planned compute) is known to beat.

        A running run may appear twice, by its forecast and by its loss now (its final is below
        both): P(beats it) is at most the smaller of the two chances.
        """
        compute = run.planned_compute if self.objective == "frontier" else None
        return [rival for other in sweep.others(run.name) if other.status != "stopped"  # never reaches its end
                for rival in self._rival(other, compute) if math.isfinite(rival.loss) and rival.loss > 0]

    def _rival(self, other: RunView, compute: float | None) -> list[_Rival]:
        forecast = other.forecast or self._latest.get(other.name)
        if compute is None or other.planned_compute <= compute:  # its whole run fits in the budget
            if other.status == "finished" and other.x.size:
                final = observed_final(other)
                return [_Rival(other.name, final.loss, final.sd_log, "observed final")]
            rivals = []
            if forecast is not None and forecast.upper_bound:
                rivals.append(_Rival(other.name, forecast.loss, 0.0, "forecast final (upper bound)", forecast, other.lrs))
            elif forecast is not None:
                rivals.append(_Rival(other.name, forecast.loss, forecast.sd_log, "forecast final", None, other.lrs))
            now = _floor_now(other)
            if now is not None:
                rivals.append(_Rival(other.name, now.loss, now.sd_log, "observed now (its LR only falls from here)"))
            return rivals
        x = compute / other.compute_per_x  # where the other run spends this run's planned compute
        if other.x.size and other.current_x >= x:
            return [_Rival(other.name, other.loss_at(x), noise_sd_log(other.loss), f"observed at x={x:.4g}")]
        if forecast is None or forecast.at is None:
            return []
        loss, sd = forecast.at(x)
        return [_Rival(other.name, loss, sd if math.isfinite(sd) else 0.0, f"forecast at x={x:.4g}")]

    def describe(self) -> dict[str, Any]:
        public = lambda obj: {k: v for k, v in vars(obj).items() if not k.startswith("_")}  # noqa: E731
        return super().describe() | {"mpl": public(self.mpl), "power_law": public(self.power_law)}


def _floor_now(run: RunView) -> Forecast | None:
    """A running run's loss now, a bound on its final when its planned LR never rises again (None otherwise).

    Loss falls while the LR is held or lowered (docs/reference.md §4's runs; a run without a recorded LR
    is taken to do so, as the power-law forecast does). The median of the last ``NOW_POINTS``
    points: a noisy single point never sets it, and on a falling curve it lags above the truth.
    """
    if run.x.size < NOW_POINTS:
        return None
    if run.lrs is not None:
        step = float(run.step_of_x(run.x[-1:])[0]) if run.step_of_x is not None else run.current_x
        ahead = run.lrs[max(int(round(step)) - 1, 0):]
        if ahead.size > 1 and np.any(np.diff(ahead) > 1e-12 * max(float(run.lrs.max()), 1e-300)):
            return None
    return Forecast(loss_now(run.loss), noise_sd_log(run.loss[-TAIL_POINTS:]), "observed now")
