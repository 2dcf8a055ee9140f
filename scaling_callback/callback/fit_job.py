"""One online fit of a run's curve: what the background worker executes. Never raises.

Per-step training losses are noisy and the fit's cost grows with the number of points, so the
curve is reduced to at most ``max_points`` bin means of equal step width (the MPL paper fits
~170 logged points per curve; Luo et al. 2025, §4). Only post-warmup steps are fitted: the laws
see the warmup through S_W alone (REFERENCE §2). When the sweep has finished runs, their fitted
drop-term parameters (median per parameter) are the prior for a run that has not yet seen an LR
decay (issue 4, item 3).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

if TYPE_CHECKING:
    from scaling_callback.store import SweepStore


@dataclass
class FitRequest:
    """A run's curve so far and its per-step LR schedule up to the planned end."""

    run: str
    step: int
    steps: np.ndarray
    loss: np.ndarray
    lrs: Any  # per-step array (lrs[i] is the LR of absolute step i+1, recorded then planned) or a Schedule
    law: str = "mpl"
    sweep: str | None = None
    final: bool = False
    max_points: int = 128
    conventions: dict[str, Any] = field(default_factory=dict)
    judge: bool = False  # after the fit, ask the run's early-stopping policy (in the worker, off the training thread)
    policy: Any = None  # the policy, sent with the run's first judged request; the worker keeps it afterwards


def bin_curve(steps: np.ndarray, loss: np.ndarray, after_step: int, max_points: int) -> tuple[np.ndarray, np.ndarray]:
    """Finite positive losses at steps after ``after_step``, as at most ``max_points`` equal-width bin means."""
    steps = np.asarray(steps, dtype=float)
    loss = np.asarray(loss, dtype=float)
    keep = (steps > after_step) & np.isfinite(loss) & (loss > 0)
    steps, loss = steps[keep], loss[keep]
    if steps.size <= max_points:
        return steps.astype(np.int64), loss
    edges = np.linspace(steps[0], steps[-1] + 1.0, max_points + 1)
    which = np.clip(np.searchsorted(edges, steps, side="right") - 1, 0, max_points - 1)
    counts = np.bincount(which, minlength=max_points)
    filled = counts > 0
    mean_step = np.bincount(which, steps, max_points)[filled] / counts[filled]
    mean_loss = np.bincount(which, loss, max_points)[filled] / counts[filled]
    rounded, first = np.unique(np.rint(mean_step).astype(np.int64), return_index=True)
    return rounded, mean_loss[first]


def median_prior(priors: list[dict[str, Any]]) -> dict[str, float] | None:
    """Per-parameter median of finished runs' drop-term parameters (``SweepStore.drop_priors`` items)."""
    if not priors:
        return None
    names = set.intersection(*(set(p["drop_params"]) for p in priors))
    return {n: float(np.median([float(p["drop_params"][n]) for p in priors])) for n in sorted(names)} or None


def run_fit(request: FitRequest, store: "SweepStore | None" = None, clock: Callable[[], float] = time.process_time) -> dict[str, Any]:
    """Fit ``request``'s curve, predict the final loss, store the result when ``store`` is given, return it.

    ``cpu_seconds`` is measured with ``clock`` (process CPU time in a worker process, thread CPU
    time in a worker thread). Any failure becomes ``status = "failed: ..."``.
    """
    started = clock()
    result: dict[str, Any] = {
        "run": request.run, "step": int(request.step), "final": bool(request.final), "law": request.law,
        "status": "failed: not run", "drop_term": None, "pred_final_loss": math.nan, "pred_final_low": math.nan,
        "pred_final_high": math.nan, "n_points": 0, "params": None, "drop_params": None,
    }
    record: dict[str, Any] = {"conventions": dict(request.conventions)}
    try:
        _fit_into(request, store, result, record)
    except Exception as error:  # noqa: BLE001 - a failed fit is a status, never an exception in training
        result["status"] = f"failed: {type(error).__name__}: {error}"
    result["cpu_seconds"] = clock() - started
    result["record"] = record
    if store is not None:
        try:
            store.add_fit(request.run, result)
        except Exception as error:  # noqa: BLE001 - report, do not raise
            result["store_error"] = f"{type(error).__name__}: {error}"
    return result


def _fit_into(request: FitRequest, store: "SweepStore | None", result: dict[str, Any], record: dict[str, Any]) -> None:
    from scaling_callback.fitting.curve_fitter import CurveFitter
    from scaling_callback.fitting.curves import Curve
    from scaling_callback.laws.schedule import Schedule

    if isinstance(request.lrs, Schedule):
        schedule = request.lrs
    else:
        schedule = Schedule.from_per_step(np.asarray(request.lrs, dtype=float))
    record["schedule"] = {"total_steps": schedule.total_steps, "warmup_steps": schedule.warmup_steps,
                          "peak_lr": schedule.peak_lr, "warmup_sum": schedule.warmup_sum,
                          "pieces": schedule.n_pieces, "source": "recorded LRs of past steps, planned LRs of future steps"}
    steps, loss = bin_curve(request.steps, request.loss, schedule.warmup_steps, request.max_points)
    record["binning"] = {"raw_points": int(np.size(request.steps)), "fitted_points": int(steps.size),
                         "rule": f"post-warmup finite losses, at most {request.max_points} equal-width bin means"}
    priors = store.drop_priors(request.sweep, law=request.law, exclude_run=request.run) if store is not None and request.sweep else []
    prior = median_prior(priors)
    record["prior"] = {"params": prior, "runs": [p["run"] for p in priors], "rule": "median over finished runs of the sweep"}
    fitter = CurveFitter(law=request.law, prior=prior).fit([Curve(schedule, steps, loss, name=request.run)])
    record["fit"] = fitter.to_dict()
    result.update(status=fitter.status_, drop_term=fitter.drop_term_, n_points=int(steps.size),
                  params=dict(fitter.params_) or None, drop_params=fitter.drop_params_)
    if fitter.status_ == "ok" and fitter.params_:
        final = fitter.predict_final(schedule)
        result.update(pred_final_loss=final.loss, pred_final_low=final.low, pred_final_high=final.high)
