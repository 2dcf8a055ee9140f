"""Write a sweep's report: ``report/`` with PNG plots, ``summary.json`` and a self-contained ``summary.md``."""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from scaling_callback.errors import InputError
from scaling_callback.report.forecast_points import one_run_points, sweep_config
from scaling_callback.report.frontier import check_n_convention, compare_approaches, fit_frontier_points, usable_points
from scaling_callback.report.frontier_advice import frontier_advice
from scaling_callback.report.frontier_plot import plot_frontier
from scaling_callback.report.loss_plot import plot_loss_vs_flops
from scaling_callback.report.schedule_plot import plot_schedules
from scaling_callback.report.summary_text import summary_markdown
from scaling_callback.report.sweep_data import final_points, finals_summary, stored_forecast

#: Stages of a report, in order, as named to a progress display.
STAGES = ("reading the store", "fitting the frontier", "bootstrap", "approaches 1-2", "plots", "writing")

ProgressCallback = Callable[[str, int, int], None]


def write_report(
    out_dir: str | Path,
    store_url: str | None = None,
    sweep: str | None = None,
    bootstrap: int = 200,
    n_convention: str = "total",
    target_flops: list[float] | None = None,
    tie_exponents: bool = False,
    seed: int = 0,
    progress: ProgressCallback | None = None,
) -> dict:
    """Read the sweep's store, fit the frontier with bootstrap, write ``out_dir/report``; returns the summary.

    ``progress(stage, done, total)`` is called as the report advances (stage names in ``STAGES``; done/total
    count bootstrap resamples in the bootstrap stage, else 0/1 and 1/1). Numerical warnings raised while
    fitting are recorded in ``details.json`` (``numerical_warnings``) instead of being printed.
    """
    check_n_convention(n_convention)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        summary, details, report_dir = _build(
            out_dir,
            store_url,
            sweep,
            bootstrap,
            n_convention,
            target_flops,
            tie_exponents,
            seed,
            progress or (lambda stage, done, total: None),
        )
    details["numerical_warnings"] = sorted({f"{w.category.__name__}: {w.message}" for w in caught})
    (report_dir / "details.json").write_text(json.dumps(_json_ready(details), indent=2))
    return summary


def _build(
    out_dir, store_url, sweep, bootstrap, n_convention, target_flops, tie_exponents, seed, progress: ProgressCallback
) -> tuple[dict, dict, Path]:
    from scaling_callback.store import SweepStore

    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"{out_dir}: is a file, expected the sweep's output folder")
    url = store_url or _default_store(out_dir)
    store = SweepStore(url, create=False)
    try:
        sweep = sweep or _only_sweep(store, out_dir)
        runs = store.runs(sweep)
        if runs.empty:
            raise InputError(f"{out_dir}: sweep {sweep!r} has no runs yet")
        progress(STAGES[0], 0, 1)  # after the checks, so bad input is one line with no progress before it
        runs["max_steps"] = [
            int((c or {}).get("max_steps") or m or 0) for c, m in zip(runs["config"], runs["max_steps"])
        ]
        curves = {name: store.points(name) for name in runs["name"]}
        fits = {name: stored_forecast(store, name) for name in runs["name"]}
        schedules = {name: store.planned_schedule(name) for name in runs["name"]}
        finals = final_points(store, sweep)
        config = sweep_config(store, sweep)
        design = None
        if config is not None and config.grid.design == "one_run_per_size":
            forecasts, design = one_run_points(store, sweep, config)
    finally:
        store.close()
    done = finals[finals["status"].isin(["finished", "stopped"])] if len(finals) else finals
    fitted = forecasts if design is not None else done  # one run per size: its forecasts stand in for the grid
    progress(STAGES[1], 0, 1)
    frontier = fit_frontier_points(
        fitted,
        bootstrap=bootstrap,
        n_convention=n_convention,
        target_flops=target_flops,
        tie_exponents=tie_exponents,
        seed=seed,
        progress=lambda k, total: progress(STAGES[2], k, total),
    )
    progress(STAGES[3], 0, 1)
    approaches = compare_approaches(fitted, curves, n_convention) if len(fitted) else {}
    report_dir = out_dir / "report"
    report_dir.mkdir(parents=True, exist_ok=True)
    progress(STAGES[4], 0, 1)
    plot_loss_vs_flops(runs, curves, fits, schedules, report_dir / "loss_vs_flops.png")
    advice = frontier_advice(frontier, usable_points(fitted, n_convention))  # judged on the points it was fitted to
    shown = pd.concat([done, fitted]) if design is not None and len(fitted) else done
    plot_frontier(usable_points(shown, n_convention), frontier, approaches, report_dir / "frontier.png", design, advice)
    plot_schedules(runs, schedules, report_dir / "schedules.png")
    progress(STAGES[5], 0, 1)
    summary = _summary(runs, curves, frontier)
    summary["advice"] = advice.to_dict()
    summary["frontier"]["verdict"] = None if advice.informative else advice.text
    summary["finals"] = finals_summary(finals)
    details = {
        "sweep": sweep,
        "n_convention": n_convention,
        "frontier_fit": _public(frontier),
        "approaches": approaches,
        "runs": _run_table(finals, runs),
        "design": design or {"design": "grid"},
    }
    (report_dir / "summary.json").write_text(json.dumps(_json_ready(summary), indent=2))
    (report_dir / "summary.md").write_text(summary_markdown(sweep, summary, details))
    progress(STAGES[5], 1, 1)
    return summary, details, report_dir


def _default_store(out_dir: Path) -> str:
    path = out_dir / "sweep.sqlite"
    if not out_dir.exists():
        raise InputError(f"{out_dir}: no such folder")
    if not path.exists():
        raise InputError(f"{out_dir}: no sweep.sqlite here (pass --store URL for another store)")
    return f"sqlite:///{path.resolve()}"


def _only_sweep(store, out_dir: Path) -> str:
    sweeps = store.sweeps()
    if sweeps.empty:
        raise InputError(f"{out_dir}: the store holds no sweep")
    return str(sweeps["name"].iloc[-1])


def _summary(runs: pd.DataFrame, curves: dict, frontier: dict | None) -> dict:
    spent, planned = 0.0, 0.0
    for run in runs.itertuples():
        curve = curves.get(run.name)
        if curve is None or curve.empty or not run.max_steps:
            continue
        flops = float(curve["flops"].iloc[-1])
        spent += flops
        planned += flops / max(int(curve["step"].iloc[-1]), 1) * run.max_steps if run.status == "stopped" else flops
    status = runs["status"].value_counts()
    block = {
        "a": None,
        "a_ci": None,
        "b": None,
        "b_ci": None,
        "E": None,
        "alpha": None,
        "beta": None,
        "flop_convention": None,
        "verdict": None,
    }
    recommendation = {"flops": None, "n_opt": None, "d_opt": None, "loss": None, "loss_ci": None}
    if frontier and "alpha" in frontier:
        ci = frontier.get("ci", {})
        block = {
            "a": frontier["a"],
            "a_ci": ci.get("a"),
            "b": frontier["b"],
            "b_ci": ci.get("b"),
            "E": frontier["E"],
            "alpha": frontier["alpha"],
            "beta": frontier["beta"],
            "flop_convention": (frontier.get("choices") or {}).get("flop_convention"),
            "verdict": None,  # set from the frontier's advice
        }
        rec = frontier["recommendation"]
        recommendation = {k: rec.get(k) for k in ("flops", "n_opt", "d_opt", "loss", "loss_ci")}
    return {
        "runs": int(len(runs)),
        "finished": int(status.get("finished", 0)),
        "stopped": int(status.get("stopped", 0)),
        "compute_saved": 1.0 - spent / planned if planned > 0 else 0.0,
        "frontier": block,
        "recommendation": recommendation,
        "warnings": list(frontier.get("warnings", []))
        if frontier
        else ["no compute-optimal fit: too few finished runs"],
    }


def _run_table(finals: pd.DataFrame, runs: pd.DataFrame) -> list[dict]:
    if finals is None or finals.empty:
        return []
    columns = [
        "name",
        "status",
        "n_params",
        "n_params_nonembedding",
        "tokens",
        "flops",
        "max_steps",
        "last_step",
        "loss",
        "loss_sd",
        "source",
        "final_method",
        "eval_tokens",
        "pred_final_loss",
        "pred_final_low",
        "pred_final_high",
        "stop_step",
        "stop_reason",
    ]
    return finals[columns].to_dict("records")


def _public(record: dict | None) -> dict | None:
    return None if record is None else {k: v for k, v in record.items() if not k.startswith("_")}


def _json_ready(value):
    if isinstance(value, dict):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_ready(v) for v in value]
    if isinstance(value, (np.floating, float)):
        return float(value) if math.isfinite(float(value)) else None
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.ndarray):
        return _json_ready(value.tolist())
    return value
