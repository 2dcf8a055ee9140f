"""One forecaster for a whole sweep: runs that ended lend their posteriors; every forecast uses the pooled prior.

The callback's online fit, every stopping policy, replay and the report read their forecasts from
here, so the same curve and the same sweep always give the same number.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from scaling_callback.fitting.forecast_types import Forecast, RunCurve, SweepPrior
from scaling_callback.fitting.run_forecast import ALPHAS, SHAPES, RunForecaster
from scaling_callback.fitting.sweep_prior import Lent, SweepPool, backtest


class SweepForecaster:
    """Forecasts of a sweep's runs, and the sweep's knowledge pooled from the runs that ended.

    ``add_ended(curve, finished)`` adds a run that finished (backtested against its own end, then a
    donor) or was stopped (a donor only); ``forecast(curve)`` forecasts a running run. Fits with a
    flat prior make the donors' posteriors, so no run's evidence is counted twice.
    """

    def __init__(self, level: float = 0.9, max_points: int = 96, same_run: bool = False) -> None:
        self.runs = RunForecaster(level=level, max_points=max_points)
        self.pool = SweepPool(same_run)
        self.level, self.max_points = level, max_points
        self.n_fits = 0  # forecasts made (fits are what a check costs)
        self.sources: dict[str, Any] = {}  # donor -> what its lent record was made from, as the caller named it

    def add_ended(self, curve: RunCurve, finished: bool) -> bool:
        """Take what a run that ended tells about the sweep (once per run); False when its curve is unusable."""
        if curve.name in self.pool.posteriors:
            return True
        lent = self.lend(curve, finished)
        if lent is None:
            return False
        self.add(lent)
        return True

    def lend(self, curve: RunCurve, finished: bool) -> Lent | None:
        """What ``curve``, a run that ended, lends the sweep (not yet added; None when its curve is unusable).

        A finished run is backtested with the prior the pool gives it now; its posterior is fitted with a flat
        prior, so that no run's evidence is counted twice."""
        tests = backtest(self.runs, curve, self.prior_for(curve)) if finished else []
        self.n_fits += len(tests) + 1
        own = self.runs.fit(curve, None)
        if own.posterior_ is None:
            return None
        return Lent(own.posterior_, tuple(tests))

    def add(self, lent: Lent, source: Any = None) -> None:
        """Add what a run lent (made here by :meth:`lend`, or read back from the sweep store).

        ``source``: what the record was made from (e.g. the run's status and last step), kept in
        :attr:`sources` so that a caller can tell when the run has changed since."""
        self.pool.add(lent.posterior, lent.backtests)
        self.sources[lent.posterior.name] = source

    def forget(self, run: str) -> None:
        """Remove a donor (a run that ended, lent, and was resumed since)."""
        self.pool.remove(run)
        self.sources.pop(run, None)

    @property
    def settings(self) -> str:
        """What a lent record depends on besides the run's curve: records made under other settings are refitted."""
        return (
            f"level={self.level:g} max_points={self.max_points} same_run={self.pool.same_run} transfer_terms=2 "
            f"alphas={ALPHAS.size} shapes={SHAPES.shape[0]}"
        )

    def prior_for(self, curve: RunCurve) -> SweepPrior | None:
        """The pooled prior for ``curve`` (weighted toward donors of alike peak LR), None without donors."""
        log_peak = math.log(float(curve.lrs.max())) if curve.lrs is not None and curve.lrs.max() > 0 else None
        return self.pool.prior(log_peak, exclude=curve.name)

    def forecast(self, curve: RunCurve, targets: Sequence[float] = ()) -> tuple[Forecast | None, str]:
        """The forecast of ``curve``'s final loss (and its path), or None with the reason."""
        self.n_fits += 1
        fit = self.runs.fit(curve, self.prior_for(curve), targets)
        return fit.forecast_, fit.status_
