"""Views of a run and its sweep from the sweep store: what a policy sees inside the Lightning callback.

The callback (:mod:`scaling_callback.callback.stopping`) calls ``policy.should_stop(store=...,
run_name=..., sweep=..., step=..., fit=...)`` on rank 0 after each online fit; this module turns
the store's rows into :class:`RunView` / :class:`SweepView`:

- the run itself: its points up to now (per-step training losses reduced to at most
  ``max_points`` equal-width bin means by the callback's own ``bin_curve``), its planned per-step
  LRs and its planned ``max_steps``;
- finished runs: the same, read once per process (a finished run no longer changes) — their ends
  are the observed finals and their decays the drops a law policy borrows;
- running rivals: their curves when the policy compares curves (median, ASHA, fixed budget, the
  frontier objective); otherwise only their latest successful stored fit as a forecast, and only
  when that fit's drop term came from their own data (``fitted`` or no drop term), with its
  interval widened by the same extrapolation error the law policy's own forecasts carry;
- stopped and failed runs: present (ASHA counts them at the rungs they reached), never rivals.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy.special import ndtri  # the normal quantile, without importing scipy.stats

from scaling_callback.errors import InputError
from scaling_callback.stopping.forecast import MIN_SD_LOG, Forecast
from scaling_callback.stopping.policy import RunView, SweepView

if TYPE_CHECKING:
    from scaling_callback.store import SweepStore

STORED_FIT_LEVEL = 0.9  # the interval level of the callback's fits (CurveFitter's default)
EXTRAPOLATION_ERROR = 0.25  # as MPLForecaster's default
STATUS = {"running": "running", "finished": "finished", "stopped": "stopped", "failed": "stopped"}


def views_from_store(
    store: "SweepStore | None",
    run_name: str,
    sweep: str | None = None,
    needs_curves: bool = True,
    cache: dict[str, RunView] | None = None,
    max_points: int = 96,
    **_: Any,
) -> tuple[RunView, SweepView]:
    """The judged run (status running) and its sweep (the run included), read from ``store``."""
    if store is None:
        raise InputError("early stopping needs the sweep store: give ScalingLawCallback a store")
    row = store.get_run(run_name)
    if row is None:
        raise InputError(f"run {run_name!r} is not in the store")
    run = _curve_view(store, run_name, "running", row.get("max_steps"), max_points)
    if run is None:
        raise InputError(f"run {run_name!r} has no planned max_steps in the store: its planned end is unknown")
    views = [run]
    if sweep is not None:
        cache = {} if cache is None else cache
        for other in store.runs(sweep).to_dict("records"):
            name = str(other["name"])
            if name == run_name:
                continue
            status = STATUS.get(str(other["status"]), "stopped")
            if status == "finished":
                if name not in cache:
                    cache[name] = _curve_view(store, name, "finished", other.get("max_steps"), max_points, finished=True)
                views.append(cache[name])
            elif needs_curves:
                views.append(_curve_view(store, name, status, other.get("max_steps"), max_points))
            else:
                views.append(_forecast_view(store, name, status, other))
    stored = None
    if sweep is not None:
        from scaling_callback.store.drop_members import load_drop_members

        stored = load_drop_members(store, sweep)
    return run, SweepView(tuple(v for v in views if v is not None), stored_members=stored)


def _curve_view(store: "SweepStore", name: str, status: str, max_steps: Any, max_points: int,
                finished: bool = False) -> RunView | None:
    from scaling_callback.callback.fit_job import bin_curve  # the callback's own reduction (Lightning is loaded already)

    points = store.points(name)
    steps, loss = bin_curve(points["step"].to_numpy(dtype=float), points["loss"].to_numpy(dtype=float), -1, max_points)
    steps = steps.astype(float)
    last = float(steps[-1]) if steps.size else 0.0
    budget = float(max_steps) if max_steps is not None and not _is_nan(max_steps) else (last if finished else math.nan)
    if not math.isfinite(budget) or budget <= 0:
        return None
    if finished:
        budget = max(budget, last)
    lrs = store.planned_schedule(name)
    flops = points["flops"].to_numpy(dtype=float)
    per_step = float(flops[-1]) / last if flops.size and np.isfinite(flops[-1]) and flops[-1] > 0 and last > 0 else 1.0
    if lrs is not None and lrs.size < budget:
        lrs = None  # a plan shorter than the run cannot place its steps
    return RunView(name, steps, loss, budget, status, lrs, per_step)


def _forecast_view(store: "SweepStore", name: str, status: str, row: dict[str, Any]) -> RunView | None:
    """A running rival without its curve: its latest own-data fit as a forecast (None when it has none)."""
    budget = row.get("max_steps")
    if budget is None or _is_nan(budget):
        return None
    fit = store.latest_fit(name, ok_only=True)
    forecast = _stored_forecast(fit, row.get("last_loss"))
    return RunView(name, np.empty(0), np.empty(0), float(budget), status, None, 1.0, forecast)


def _stored_forecast(fit: dict[str, Any] | None, last_loss: Any) -> Forecast | None:
    if not fit or fit.get("drop_term") not in ("fitted", "none"):
        return None
    values = [fit.get(k) for k in ("pred_final_loss", "pred_final_low", "pred_final_high")]
    if any(v is None or _is_nan(v) or v <= 0 for v in values):
        return None
    loss, low, high = (float(v) for v in values)
    variance = ((math.log(high) - math.log(low)) / (2.0 * ndtri(0.5 + STORED_FIT_LEVEL / 2.0))) ** 2
    if last_loss is not None and not _is_nan(last_loss) and float(last_loss) > 0:
        variance += (EXTRAPOLATION_ERROR * (math.log(loss) - math.log(float(last_loss)))) ** 2
    return Forecast(loss, max(math.sqrt(variance), MIN_SD_LOG), f"stored fit at step {fit.get('step')}")


def _is_nan(value: Any) -> bool:
    try:
        return math.isnan(float(value))
    except (TypeError, ValueError):
        return True
