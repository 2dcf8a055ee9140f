"""The store-backed side of early stopping: views of a run and its sweep as the callback's worker sees them.

The judged run's view is built from its fit request (its binned curve, plan and the forecast just
made), never re-read from the store (the writer thread may not have flushed its latest points).
Only rivals are read from the store:

- runs that ended (finished or stopped): their curves, binned like the callback's own, read once per
  process (they no longer change) — donors of the sweep's prior; a finished one's final is its
  held-out evaluation at the end when it has one, else the end of its curve;
- running rivals: their curves so far and their latest stored forecast (the one their own
  online fit made and logged).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from scaling_callback.fitting.curves import bin_curve
from scaling_callback.fitting.forecast_types import Forecast
from scaling_callback.fitting.sweep_prior import Lent
from scaling_callback.stopping.views import RunView, SweepView
from scaling_callback.store.held_out import held_out_final
from scaling_callback.store.sql_values import plain_number

if TYPE_CHECKING:
    from scaling_callback.fitting.sweep_forecaster import SweepForecaster
    from scaling_callback.store import SweepStore

MAX_POINTS = 96
STATUS = {"running": "running", "finished": "finished", "stopped": "stopped", "failed": "stopped"}
_ENDED: dict[tuple, RunView | None] = {}  # (store url, run, status, last step, points) -> view of a run that ended


def sweep_from_store(store: SweepStore, sweep: str, exclude: str | None = None) -> list[RunView]:
    """Views of the sweep's runs (but ``exclude``): ended ones cached, running ones fresh."""
    views = []
    for row in store.runs(sweep).to_dict("records"):
        name = str(row["name"])
        if name == exclude:
            continue
        status = STATUS.get(str(row["status"]), "stopped")
        if status != "running":
            key = (store.url, name, status, plain_number(row.get("last_step")), plain_number(row.get("n_points")))
            if key not in _ENDED:
                _ENDED[key] = _curve_view(store, name, status, row.get("max_steps"))
            view = _ENDED[key]
        else:
            view = _curve_view(store, name, status, row.get("max_steps"), with_forecast=True)
        if view is not None:
            views.append(view)
    return views


def learn_from_store(
    store: SweepStore, sweep: str, forecaster: SweepForecaster, exclude: str | None = None
) -> list[str]:
    """Add the sweep's ended runs to ``forecaster``'s prior (each once); returns the store writes that failed.

    What a run lends is computed once, by the first process that learns it, and kept in the store
    (``SweepStore.set_lent``): every later run's worker reads it back instead of refitting and
    backtesting every ended run of the sweep (5 fits each) at its first fit. A record made from
    another curve (a rewound run), another status or other forecaster settings is made again. A record
    the store cannot take (read-only, gone) is still used by this process; the failure is returned.
    """
    known: dict[str, dict[str, Any]] | None = None
    unstored: list[str] = []
    for view in sweep_from_store(store, sweep, exclude):
        last_step = int(view.x[-1]) if view.x.size else 0  # of the binned curve the record is made from
        if view.status == "running":
            if view.name in forecaster.pool.posteriors:
                forecaster.forget(view.name)  # it ended, lent, and was resumed since (a worker lives for many runs)
            continue
        source = (view.status, last_step)
        if forecaster.sources.get(view.name) == source:
            continue  # learned already, from the same curve
        if known is None:
            known = store.lent(sweep)
        finished = view.status == "finished"
        stored = known.get(view.name)
        lent = None
        if stored and (stored["status"], stored["last_step"], stored["settings"]) == (
            view.status,
            last_step,
            forecaster.settings,
        ):
            try:
                lent = Lent.from_dict(stored["record"])
            except (KeyError, TypeError, ValueError):
                lent = None  # a record this release cannot read: made again below
        if lent is None:
            lent = forecaster.lend(view.curve(), finished)
            if lent is None:
                continue
            try:
                store.set_lent(view.name, view.status, last_step, forecaster.settings, lent.to_dict())
            except Exception as error:
                unstored.append(f"{view.name}: {type(error).__name__}: {error}")
        forecaster.add(lent, source)
    return unstored


def judged_view(
    run: str,
    steps: np.ndarray,
    loss: np.ndarray,
    lrs: np.ndarray,
    forecast: Forecast | None,
    compute_per_x: float = 1.0,
) -> RunView:
    """The judged run's view from its fit request (binned curve, plan) and the forecast just made."""
    return RunView(
        run,
        np.asarray(steps, dtype=float),
        np.asarray(loss, dtype=float),
        float(len(lrs)),
        "running",
        np.asarray(lrs, dtype=float),
        compute_per_x,
        forecast,
    )


def compute_per_step(flops: np.ndarray, steps: np.ndarray) -> float:
    """FLOPs per optimizer step at a curve's last recorded point (1 when unknown): its planned compute per x.

    The judged run's comes with its fit request, from the callback's own record: read back from the
    store it would depend on whether the writer thread had stored the latest points yet.
    """
    if not np.size(flops) or not np.size(steps):
        return 1.0
    total, last = float(np.asarray(flops)[-1]), float(np.asarray(steps)[-1])
    return total / last if math.isfinite(total) and total > 0 and last > 0 else 1.0


def sweep_view(run: RunView, store: SweepStore | None, sweep: str | None) -> SweepView:
    """The judged run and its sweep's other runs from the store."""
    others = sweep_from_store(store, sweep, exclude=run.name) if store is not None and sweep else []
    return SweepView(tuple(others) + (run,))


def _curve_view(
    store: SweepStore, name: str, status: str, max_steps: Any, with_forecast: bool = False
) -> RunView | None:
    points = store.points(name)
    steps, loss = bin_curve(points["step"].to_numpy(dtype=float), points["loss"].to_numpy(dtype=float), -1, MAX_POINTS)
    steps = steps.astype(float)
    if steps.size and np.any(np.diff(steps) <= 0):
        return None
    last = float(steps[-1]) if steps.size else 0.0
    budget = float(max_steps) if max_steps is not None and not _is_nan(max_steps) else last
    if status == "finished":
        budget = max(budget, last)
    if not math.isfinite(budget) or budget <= 0 or last > budget:
        return None
    lrs = store.planned_schedule(name)
    if lrs is not None and lrs.size < budget:
        lrs = None  # a plan shorter than the run cannot place its steps
    per_step = compute_per_step(points["flops"].to_numpy(dtype=float), points["step"].to_numpy(dtype=float))
    forecast = _stored_forecast(store, name) if with_forecast else None
    final = held_out_final(store.evals(name), int(points["step"].iloc[-1])) if status == "finished" else None
    return RunView(name, steps, loss, budget, status, lrs, per_step, forecast, final=final)


def _stored_forecast(store: SweepStore, name: str) -> Forecast | None:
    fit = store.latest_fit(name, ok_only=True)
    values = fit.get("forecast") if fit else None
    if not values:
        return None
    try:
        return Forecast.from_dict(values)
    except (KeyError, TypeError, ValueError):
        return None


def _is_nan(value: Any) -> bool:
    try:
        return math.isnan(float(value))
    except (TypeError, ValueError):
        return True
