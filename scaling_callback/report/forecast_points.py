"""The frontier's points of a one-run-per-size sweep: each finished run's curve → forecast finals of fully decayed runs.

A sweep with ``grid.design: one_run_per_size`` trains each size once to the largest of ``grid.tokens``;
here its runs' stored curves and plans become :class:`~scaling_callback.fitting.decayed_finals.SizeRun`
objects and :class:`~scaling_callback.fitting.decayed_finals.DecayedFinals` forecasts them at every
budget of ``grid.tokens`` (the grid the design stands in for). The rows have the columns of
:func:`~scaling_callback.report.sweep_data.final_points` plus ``run`` (the bootstrap resamples whole
runs) and ``loss_sd`` (the fit weights each point by it).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from scaling_callback.errors import InputError
from scaling_callback.fitting.curves import bin_curve
from scaling_callback.fitting.decayed_finals import DecayedFinals, DecayTarget, SizeRun
from scaling_callback.laws.schedule import Schedule
from scaling_callback.store.held_out import held_out_curve
from scaling_callback.sweep.config import SweepConfig, parse_config

#: A run's logged losses are averaged into at most this many equal-width bins before forecasting: the
#: forecaster keeps 96 points of a prefix (run_forecast.MAX_POINTS), and a prefix of 1/8 of the run still gets 48 bins.
CURVE_BINS = 384
#: With at least this many held-out evaluations after the warmup, a run's curve is its held-out losses: the
#: loss the grid's finals are measured in, at a few thousandths' SD each where a bin of training minibatches has
#: a few hundredths (docs/compute_optimal.md). Eight evenly spaced ones leave the first half of the run the four
#: points a backtest needs (fitting.sweep_prior.backtest), so the run's own backtests calibrate its forecasts.
MIN_EVALUATIONS = 8


def sweep_config(store, sweep: str) -> SweepConfig | None:
    """The sweep's parsed config as stored when it was created, or None (no config, or one this version rejects)."""
    row = store.get_sweep(sweep)
    raw = (row or {}).get("config") or {}
    try:
        return parse_config(raw) if raw else None
    except InputError:
        return None


def one_run_points(store, sweep: str, config: SweepConfig) -> tuple[pd.DataFrame, dict]:
    """Forecast points of a one-run-per-size sweep and a record of the design (compute used, equivalent grid)."""
    runs = store.runs(sweep)
    finished = runs[runs["status"] == "finished"] if len(runs) else runs
    size_runs, nonembedding, flops_per_token, curves = [], {}, {}, {}
    for row in finished.itertuples():
        found = _size_run(store, row, config)
        if found is None:
            continue
        run, curves[row.name] = found
        size_runs.append(run)
        nonembedding[run.name] = row.n_params_nonembedding
        points = store.points(row.name)
        flops = float(points["flops"].iloc[-1]) if len(points) else math.nan
        flops_per_token[run.name] = flops / (float(points["step"].iloc[-1]) * run.tokens_per_step)
    record = {"design": "one_run_per_size", "runs": [r.name for r in size_runs], "status": "ok"}
    if len({r.n_params for r in size_runs}) < 2:
        return pd.DataFrame(), record | {"status": "waiting: needs finished runs of at least two sizes"}
    target = DecayTarget(
        config.grid.forecast_schedule, config.optimizer.decay_fraction, config.optimizer.final_lr_fraction
    )
    finals = DecayedFinals(target).fit(size_runs, sorted(float(t) for t in config.grid.tokens))
    points = finals.points_
    frame = pd.DataFrame(
        {
            "name": [f"{r}@{d:.3g}" for r, d in zip(points["run"], points["d"])],
            "run": points["run"],
            "status": "finished",
            "n_params": points["n"],
            "n_params_nonembedding": [nonembedding[r] for r in points["run"]],
            "tokens": points["d"],
            "flops": [flops_per_token[r] * d for r, d in zip(points["run"], points["d"])],
            "loss": points["loss"],
            "loss_sd": points["loss_sd"],
            "source": points["source"],
        }
    )
    record |= {
        "compute_used": finals.compute_used_,
        "compute_equivalent_grid": finals.compute_grid_,
        "compute_ratio": finals.compute_used_ / finals.compute_grid_ if finals.compute_grid_ else None,
        "n_points": int(len(points)),
        "failures": finals.failures_,
        "choices": finals.choices_ | {"curve": curves},
    }
    return frame, record


def _size_run(store, row, config: SweepConfig) -> tuple[SizeRun, str] | None:
    """A finished run's curve on its recorded plan and which curve it is, or None without a plan, N or tokens per step.

    The curve is the run's held-out evaluations when it has :data:`MIN_EVALUATIONS` of them after the
    warmup (``evaluation.every_n_steps``), else its training losses in :data:`CURVE_BINS` bin means.
    """
    lrs = store.planned_schedule(row.name)
    run_config = row.config or {}
    per_step = run_config.get("tokens_per_step")
    points = store.points(row.name)
    if lrs is None or not per_step or not (row.n_params and row.n_params > 0) or points.empty:
        return None
    schedule = Schedule.from_per_step(lrs, config.optimizer.warmup_steps)
    held_out = held_out_curve(store.evals(row.name))
    steps, loss = held_out["step"].to_numpy(dtype=float), held_out["loss"].to_numpy(dtype=float)
    keep = (steps > schedule.warmup_steps) & (steps <= schedule.total_steps) & np.isfinite(loss)
    if keep.sum() >= MIN_EVALUATIONS:
        source = f"{int(keep.sum())} held-out evaluations"
    else:
        steps, loss = bin_curve(
            points["step"].to_numpy(dtype=float), points["loss"].to_numpy(dtype=float), -1.0, CURVE_BINS
        )
        keep = (steps > schedule.warmup_steps) & (steps <= schedule.total_steps)
        source = f"training losses in {int(keep.sum())} bin means (at most {CURVE_BINS})"
    run = SizeRun(row.name, float(row.n_params), schedule, np.rint(steps[keep]), loss[keep], float(per_step))
    return run, source
