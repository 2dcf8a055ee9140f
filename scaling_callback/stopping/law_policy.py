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
precise final binds even when a running rival's forecast looks better.

A run whose forecast is only an upper bound (a decay ahead whose size no finished run on an
alike schedule tells) is stopped only if even a decay lowering its loss by ``max_decay_gain``
would leave it unlikely to win.

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

from scaling_callback.errors import InputError
from scaling_callback.stopping.forecast import DropMember, Forecast, noise_sd_log, observed_final, probability_below
from scaling_callback.stopping.mpl_forecast import MPLForecaster
from scaling_callback.stopping.policy import Decision, RunView, StoppingPolicy, SweepView, Verdict
from scaling_callback.stopping.power_forecast import PowerLawForecaster

OBJECTIVES = ("final", "frontier")


@dataclass(frozen=True)
class _Rival:
    name: str
    loss: float
    sd_log: float
    how: str


class LawPolicy(StoppingPolicy):
    """Stop runs whose law forecast is unlikely to beat the sweep's best; see the module docstring.

    Args:
        threshold: stop when P(final beats the best) is below this.
        objective: ``final`` or ``frontier``.
        mpl: forecaster for runs with a planned LR schedule.
        power_law: forecaster for runs without one.
        max_decay_gain: the most an LR decay can lower the final loss (a fraction). Used only when the
            forecast is an upper bound (a decay ahead of unknown size): a run is stopped if even
            that gain cannot make it win. Measured (final loss, decayed vs constant LR): 1.3–2.7 %
            on the MPL paper's curves, up to 9.5 % on the benchmark's high-LR toy runs.
        n_startup_runs, n_warmup_steps, warmup_fraction, interval_steps, interval_fraction,
        confirmations: the gating of :class:`StoppingPolicy` (defaults: no finished run needed —
        a forecast that cannot be made without one is an upper bound and stops nothing —, a first
        check at 5 % of the budget, then every 2.5 %, and 2 consecutive confirmations).
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
        interval_fraction: float = 0.025,
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
            return self._judge_bound(forecast, rivals)
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

    def _judge_bound(self, forecast: Forecast, rivals: list[_Rival]) -> Verdict:
        """Only an upper bound is known: stop only if even a decay buying ``max_decay_gain`` cannot win."""
        floor = forecast.loss * (1.0 - self.max_decay_gain)
        cannot = (f"cannot judge: an LR decay is ahead that no finished run on an alike schedule tells the size of "
                  f"(no decay: {forecast.loss:.4g}; with a {self.max_decay_gain:.0%} gain: {floor:.4g})")
        if not rivals:
            return Verdict(False, None, cannot)
        chances = [(probability_below((floor, 0.0), (r.loss, r.sd_log)), r) for r in rivals]
        probability, best = min(chances, key=lambda pair: pair[0])
        if probability < self.threshold:
            return Verdict(True, probability, f"even a {self.max_decay_gain:.0%} gain from its LR decay leaves {floor:.4g}: "
                                              f"P(beats {best.name} {best.how} {best.loss:.4g}) <= {probability:.3g} < {self.threshold:g}")
        return Verdict(False, None, cannot)

    # ------------------------------------------------------------- forecasts
    def drop_members(self, sweep: SweepView) -> list[DropMember]:
        """The finished runs' drop terms: given by the sweep, or fitted once per finished run with a schedule."""
        if sweep.drop_members is not None:
            return list(sweep.drop_members)
        stored = sweep.stored_members or {}
        for other in sweep.runs:
            if other.status == "finished" and other.lrs is not None and other.name not in self._members:
                if other.name in stored:
                    values = stored[other.name]
                    self._members[other.name] = DropMember.from_dict(values) if values is not None else None
                else:
                    self._members[other.name] = self.mpl.drop_member(other)
                    self._unsaved.add(other.name)
        finished = {r.name for r in sweep.runs if r.status == "finished"}
        return [m for name, m in self._members.items() if m is not None and name in finished]

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
        """Each other live run's final loss (observed or forecast), or its loss at this run's planned compute."""
        rivals = []
        for other in sweep.others(run.name):
            if other.status == "stopped":
                continue  # it will never reach its final loss
            rival = self._rival(other, run.planned_compute if self.objective == "frontier" else None)
            if rival is not None and math.isfinite(rival.loss) and rival.loss > 0:
                rivals.append(rival)
        return rivals

    def _rival(self, other: RunView, compute: float | None) -> _Rival | None:
        forecast = other.forecast or self._latest.get(other.name)
        if compute is None or other.planned_compute <= compute:  # its whole run fits in the budget
            if other.status == "finished" and other.x.size:
                final = observed_final(other)
                return _Rival(other.name, final.loss, final.sd_log, "observed final")
            if forecast is None:
                return None
            return _Rival(other.name, forecast.loss, 0.0 if forecast.upper_bound else forecast.sd_log,
                          "forecast final (upper bound)" if forecast.upper_bound else "forecast final")
        x = compute / other.compute_per_x  # where the other run spends this run's planned compute
        if other.x.size and other.current_x >= x:
            return _Rival(other.name, other.loss_at(x), noise_sd_log(other.loss), f"observed at x={x:.4g}")
        if forecast is None or forecast.at is None:
            return None
        loss, sd = forecast.at(x)
        return _Rival(other.name, loss, sd if math.isfinite(sd) else 0.0, f"forecast at x={x:.4g}")

    def describe(self) -> dict[str, Any]:
        public = lambda obj: {k: v for k, v in vars(obj).items() if not k.startswith("_")}  # noqa: E731
        return super().describe() | {"mpl": public(self.mpl), "power_law": public(self.power_law)}
