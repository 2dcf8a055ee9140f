"""One online fit of a run's curve: what the background worker executes. Never raises.

The curve is reduced to at most ``max_points`` bin means (:func:`~scaling_callback.fitting.curves.bin_curve`)
and forecast by the sweep's forecaster (:class:`~scaling_callback.fitting.sweep_forecaster.SweepForecaster`),
which the worker keeps per sweep: the runs of the sweep that ended (read from the store once each)
are its donors, so the forecast stored here is the one every stopping policy and the report use.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from scaling_callback.fitting.sweep_forecaster import SweepForecaster
    from scaling_callback.store import SweepStore


@dataclass
class FitRequest:
    """A run's curve so far and its per-step LR schedule up to the planned end."""

    run: str
    step: int
    steps: np.ndarray
    loss: np.ndarray
    lrs: np.ndarray  # lrs[i] is the LR of absolute step i+1, recorded then planned
    law: str = "mpl"
    sweep: str | None = None
    final: bool = False
    max_points: int = 128
    conventions: dict[str, Any] = field(default_factory=dict)
    flops_per_step: float = 1.0  # FLOPs per optimizer step so far: compute per x of the frontier objective (1: unknown)
    judge: bool = False  # after the fit, ask the run's early-stopping policy (in the worker, off the training thread)
    policy: Any = None  # the policy, sent with the run's first judged request; the worker keeps it afterwards


def run_fit(
    request: FitRequest,
    store: SweepStore | None = None,
    forecaster: SweepForecaster | None = None,
    clock: Callable[[], float] = time.process_time,
) -> dict[str, Any]:
    """Forecast ``request``'s final loss, store the result when ``store`` is given, return it.

    ``cpu_seconds`` is measured with ``clock`` (process CPU time in a worker process, thread CPU
    time in a worker thread). Any failure becomes ``status = "failed: ..."``.
    """
    started = clock()
    result: dict[str, Any] = {
        "run": request.run,
        "step": int(request.step),
        "final": bool(request.final),
        "law": request.law,
        "status": "failed: not run",
        "drop_term": None,
        "pred_final_loss": math.nan,
        "pred_final_low": math.nan,
        "pred_final_high": math.nan,
        "n_points": 0,
        "params": None,
        "drop_params": None,
        "forecast": None,
    }
    record: dict[str, Any] = {"conventions": dict(request.conventions)}
    try:
        _fit_into(request, store, forecaster, result, record)
    except Exception as error:
        result["status"] = f"failed: {type(error).__name__}: {error}"
    result["cpu_seconds"] = clock() - started
    result["record"] = record
    if store is not None:
        try:
            result["fit_id"] = store.add_fit(request.run, result)
        except Exception as error:
            result["store_error"] = f"{type(error).__name__}: {error}"
    return result


def _fit_into(
    request: FitRequest,
    store: SweepStore | None,
    forecaster: SweepForecaster | None,
    result: dict[str, Any],
    record: dict[str, Any],
) -> None:
    from scaling_callback.callback.store_views import learn_from_store
    from scaling_callback.fitting.curves import bin_curve
    from scaling_callback.fitting.forecast_types import RunCurve
    from scaling_callback.fitting.sweep_forecaster import SweepForecaster
    from scaling_callback.laws.schedule import Schedule

    forecaster = forecaster or SweepForecaster()
    lrs = np.asarray(request.lrs, dtype=float)
    schedule = Schedule.from_per_step(lrs)
    record["schedule"] = {
        "total_steps": schedule.total_steps,
        "warmup_steps": schedule.warmup_steps,
        "peak_lr": schedule.peak_lr,
        "warmup_sum": schedule.warmup_sum,
        "pieces": schedule.n_pieces,
        "source": "recorded LRs of past steps, planned LRs of future steps",
    }
    steps, loss = bin_curve(request.steps, request.loss, schedule.warmup_steps, request.max_points)
    record["binning"] = {
        "raw_points": int(np.size(request.steps)),
        "fitted_points": int(steps.size),
        "rule": f"post-warmup finite losses, at most {request.max_points} equal-width bin means",
    }
    if store is not None and request.sweep:
        unstored = learn_from_store(store, request.sweep, forecaster, exclude=request.run)
        if unstored:
            record["lent_not_stored"] = unstored  # what ended runs lent, used here but not kept for later fits
    forecast, status = forecaster.forecast(RunCurve(request.run, steps, loss, float(lrs.size), lrs, schedule=schedule))
    result.update(status=status, n_points=int(steps.size))
    if forecast is not None:
        result.update(
            pred_final_loss=forecast.loss,
            pred_final_low=forecast.low,
            pred_final_high=forecast.high,
            drop_term=forecast.evidence.get("drop_term"),
            forecast=forecast.to_dict(),
        )
        record["forecast"] = forecast.to_dict()
