"""What a sweep's store says about its runs: status counts, final losses, points for the frontier.

A run's final loss and its standard error (``loss``, ``loss_sd``, ``source``; see
:mod:`scaling_callback.fitting.run_final`) is *evaluated* when it finished with a held-out
evaluation at its last step, *observed* (its training loss smoothed at the last step) when it
finished without one, and *predicted* when it was stopped (the forecast its stop compared, at the
planned end). Its D is the planned token (or sample) budget and its C the FLOPs at the planned
end, so runs are compared at their planned end, not at the step where they stopped.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import pandas as pd

from scaling_callback.fitting.run_final import MEASURED_SOURCES, RunFinal, forecast_final, training_final
from scaling_callback.store.held_out import held_out_curve, held_out_final


@dataclass
class SweepState:
    """Counts of runs by status, the best observed and forecast final losses, and one point per usable run.

    ``best_observed``: (loss, run) of the best finished run. ``best_forecast``: (loss, low, high, run)
    of the running run with the lowest forecast final loss. ``step_fraction``: each run's last step
    over its planned steps. ``seconds``: wall seconds each finished or stopped run took (first to
    last store write).
    """

    n_finished: int = 0
    n_stopped: int = 0
    n_running: int = 0
    best_loss: float | None = None
    final_points: pd.DataFrame = field(default_factory=pd.DataFrame)
    best_observed: tuple[float, str] | None = None
    best_forecast: tuple[float, float | None, float | None, str] | None = None
    best_forecast_is_wide: bool = False  # its interval spans more than the observed finals' spread
    step_fraction: dict[str, float] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def n_done(self) -> int:
        return self.n_finished + self.n_stopped


def run_final(points: pd.DataFrame, evals: pd.DataFrame | None, status: str, fit: dict | None) -> RunFinal | None:
    """The final a run's row reports: evaluated or smoothed training loss when it finished, else its forecast."""
    if status == "finished":
        last_step = int(points["step"].iloc[-1])
        return held_out_final(evals, last_step) or training_final(points["step"], points["loss"])
    if not fit:
        return None
    forecast = fit.get("forecast") or {}
    return forecast_final(_finite(fit.get("pred_final_loss")), _finite(forecast.get("sd")))


def stored_forecast(store, run_name: str) -> dict | None:
    """The forecast the report shows for a run: for a stopped run the fit whose forecast its stop used, else its
    latest successful online fit (final loss and interval, the forecast itself under ``forecast``).

    Every part of the report reads a run's forecast through this one function, so a stopped run is shown
    with the very number its stop decision compared.
    """
    decisions = store.decisions(run_name)
    if len(decisions):
        stops = decisions[decisions["stop"].astype(bool) & decisions["fit_id"].notna()]
        if len(stops):
            fit = store.fit(int(stops["fit_id"].iloc[-1]))
            if fit is not None:
                return fit
    return store.latest_fit(run_name, ok_only=True)


def final_points(store, sweep: str, ended_rows: dict | None = None) -> pd.DataFrame:
    """One row per run with a usable final loss: name, status, n_params(+non-embedding), tokens, flops, loss, source.

    ``ended_rows``: a cache kept by a caller that reads the sweep again and again (the progress line):
    the rows of runs that ended are kept there, by run, status, last step and point count, and only
    running (or changed) runs are read again. Their final loss and its source cannot change once they
    ended; their latest forecast can (a final fit lands after the end), so the report reads afresh.
    """
    runs = store.runs(sweep)
    rows = []
    for run in runs.itertuples():
        if run.status not in ("finished", "stopped", "running"):
            continue
        key = (run.name, run.status, run.last_step, run.n_points)
        if ended_rows is not None and key in ended_rows:
            rows.append(ended_rows[key])
            continue
        points = store.points(run.name)
        if points.empty:
            continue
        config = run.config or {}
        max_steps = int(config.get("max_steps") or run.max_steps or points["step"].iloc[-1])
        per_step = config.get("tokens_per_step")
        last = points.iloc[-1]
        fit = stored_forecast(store, run.name)
        predicted = _finite(fit.get("pred_final_loss")) if fit else None
        evals = store.evals(run.name)
        final = run_final(points, evals, run.status, fit)
        held_out = held_out_curve(evals)
        tokens = float(per_step) * max_steps if per_step else _planned(last.get("tokens"), last["step"], max_steps)
        rows.append(
            {
                "name": run.name,
                "status": run.status,
                "n_params": _finite(run.n_params),
                "n_params_nonembedding": _finite(run.n_params_nonembedding),
                "tokens": tokens,
                "flops": _planned(last.get("flops"), last["step"], max_steps),
                "max_steps": max_steps,
                "last_step": int(last["step"]),
                "loss": final.loss if final else None,
                "loss_sd": final.sd if final else None,
                "source": final.source if final else "predicted",
                "final_method": final.method if final else "no forecast yet",
                "eval_tokens": _finite(held_out["tokens"].iloc[-1]) if len(held_out) else None,
                "eval_target_sd": _finite((config.get("evaluation") or {}).get("target_sd")),
                "pred_final_loss": predicted,
                "pred_final_low": _finite(fit.get("pred_final_low")) if fit else None,
                "pred_final_high": _finite(fit.get("pred_final_high")) if fit else None,
                "stop_step": _finite(run.stop_step),
                "stop_reason": run.stop_reason,
            }
        )
        if ended_rows is not None and run.status != "running":
            ended_rows[key] = rows[-1]
    return pd.DataFrame(rows)


def finals_summary(finals: pd.DataFrame) -> dict:
    """How the finished runs' finals were measured: counts by source, their standard errors, the held-out stream.

    ``evaluated.tokens_for_target``: held-out tokens that would bring the largest standard error to
    the target, from the per-token variance the evaluations measured (SE² × tokens is that variance
    and does not depend on the stream's length).
    """
    if finals is None or not len(finals):
        return {"by_source": {}}
    finished = finals[finals["status"] == "finished"]
    out: dict = {"by_source": {str(k): int(v) for k, v in finished["source"].value_counts().items()}}
    for source in MEASURED_SOURCES:
        rows = finished[finished["source"] == source]
        sds = pd.to_numeric(rows["loss_sd"], errors="coerce").dropna()
        if rows.empty:
            continue
        block = {"n": int(len(rows)), "sd_median": _finite(sds.median()), "sd_max": _finite(sds.max())}
        if source == "evaluated":
            tokens = pd.to_numeric(rows["eval_tokens"], errors="coerce")
            target = _finite(pd.to_numeric(rows["eval_target_sd"], errors="coerce").max())
            variance = (pd.to_numeric(rows["loss_sd"], errors="coerce") ** 2 * tokens).dropna()
            block |= {"tokens": _finite(tokens.max()), "target_sd": target}
            if target and len(variance):
                block["meets_target"] = bool(block["sd_max"] is not None and block["sd_max"] <= target)
                block["tokens_for_target"] = int(math.ceil(float(variance.max()) / target**2))
        out[source] = block
    return out


def read_state(url: str, sweep: str, ended_rows: dict | None = None) -> SweepState:
    """Open the store at ``url`` and summarise ``sweep``; an unreadable store gives an empty state.

    ``ended_rows``: the cache of :func:`final_points`, for a caller that polls."""
    from scaling_callback.store import SweepStore

    try:
        store = SweepStore(url)
    except Exception:
        return SweepState()
    try:
        if store.get_sweep(sweep) is None:
            return SweepState()
        runs = store.runs(sweep)
        points = final_points(store, sweep, ended_rows)
    finally:
        store.close()
    status = runs["status"].value_counts() if len(runs) else pd.Series(dtype=int)
    usable = points.dropna(subset=["loss"]) if len(points) else points
    candidates = [v for v in (usable["loss"].tolist() if len(usable) else []) if v is not None and math.isfinite(v)]
    done = usable[usable["status"].isin(["finished", "stopped"])] if len(usable) else usable
    best = _best_forecast(points)
    return SweepState(
        n_finished=int(status.get("finished", 0)),
        n_stopped=int(status.get("stopped", 0)),
        n_running=int(status.get("running", 0)),
        best_loss=min(candidates) if candidates else None,
        final_points=done.reset_index(drop=True),
        best_observed=_best_observed(points),
        best_forecast=best,
        best_forecast_is_wide=best is not None and forecast_wider_than_finals(points, best[1], best[2]),
        step_fraction=_step_fractions(points),
        seconds=_seconds(runs),
    )


def _best_observed(points: pd.DataFrame) -> tuple[float, str] | None:
    if not len(points):
        return None
    observed = points[points["source"].isin(MEASURED_SOURCES) & points["loss"].notna()]
    if observed.empty:
        return None
    row = observed.loc[observed["loss"].astype(float).idxmin()]
    return float(row["loss"]), str(row["name"])


def _best_forecast(points: pd.DataFrame) -> tuple[float, float | None, float | None, str] | None:
    """The lowest forecast final of a running run whose interval is no wider than the spread of the observed finals.

    A forecast that wide cannot rank the run among the finished ones; it is the best forecast only
    when no running run has a narrower one, and ``forecast_wider_than_finals`` then says so.
    """
    if not len(points):
        return None
    running = points[(points["status"] == "running") & points["pred_final_loss"].notna()]
    if running.empty:
        return None
    spread = _observed_spread(points)
    width = running["pred_final_high"].astype(float) - running["pred_final_low"].astype(float)
    informative = running[width <= spread] if spread is not None else running
    chosen = informative if len(informative) else running
    row = chosen.loc[chosen["pred_final_loss"].astype(float).idxmin()]
    return float(row["pred_final_loss"]), row["pred_final_low"], row["pred_final_high"], str(row["name"])


def forecast_wider_than_finals(points: pd.DataFrame, low: float | None, high: float | None) -> bool:
    """Whether an interval spans more than the spread (max − min) of the sweep's observed finals."""
    spread = _observed_spread(points)
    return spread is not None and low is not None and high is not None and float(high) - float(low) > spread


def _observed_spread(points: pd.DataFrame) -> float | None:
    observed = points[points["source"].isin(MEASURED_SOURCES) & points["loss"].notna()] if len(points) else points
    if len(observed) < 2:
        return None
    values = observed["loss"].astype(float)
    return float(values.max() - values.min())


def _step_fractions(points: pd.DataFrame) -> dict[str, float]:
    if not len(points):
        return {}
    return {
        str(r.name): min(1.0, r.last_step / max(r.max_steps, 1)) if r.status != "finished" else 1.0
        for r in points.itertuples()
    }


def _seconds(runs: pd.DataFrame) -> dict[str, float]:
    if not len(runs) or "created_at" not in runs:
        return {}
    done = runs[runs["status"].isin(["finished", "stopped"])]
    spans = (pd.to_datetime(done["updated_at"]) - pd.to_datetime(done["created_at"])).dt.total_seconds()
    return {str(name): float(span) for name, span in zip(done["name"], spans) if math.isfinite(span) and span > 0}


def _planned(value, step, max_steps: int) -> float | None:
    """A cumulative count at ``step`` extrapolated linearly to the planned ``max_steps``."""
    value = _finite(value)
    if value is None or not step:
        return None
    return float(value) / float(step) * max_steps


def _finite(value) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None
