"""The sweep's compute-optimal frontier: Chinchilla approach 3 with bootstrap, approaches 1 and 2 beside it.

Used online by the sweep runner (no bootstrap, as runs finish) and by the report. A fit needs at
least eight runs over at least three model sizes and two token budgets (five parameters and some
redundancy: with six runs the fit interpolates and its exponents are arbitrary); otherwise there
is no frontier yet, rather than one fitted to noise.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from scaling_callback.errors import InputError
from scaling_callback.fitting.run_final import MEASURED_SOURCES

N_CONVENTIONS = ("total", "non-embedding")
MIN_RUNS = 8
MIN_SIZES = 3
DEFAULT_TARGET_FACTOR = 10.0  # recommend for 10x the largest run's compute unless told otherwise


def usable_points(points: pd.DataFrame, n_convention: str = "total") -> pd.DataFrame:
    """The best run per (N, D) among runs with a finite positive N, D and final loss (chosen N convention).

    Measured finals (evaluated or observed) come first; a forecast (running or stopped run) stands in
    only where no run of that (N, D) has finished. ``loss_sd`` (NaN where unknown) is each final's
    standard error, carried for a fit that weights points by it.
    """
    if points is None or len(points) == 0:
        return pd.DataFrame(columns=["name", "n", "tokens", "flops", "loss", "loss_sd", "compute"])
    check_n_convention(n_convention)
    column = "n_params" if n_convention == "total" else "n_params_nonembedding"
    frame = points.assign(
        n=pd.to_numeric(points[column], errors="coerce"),
        tokens=pd.to_numeric(points["tokens"], errors="coerce"),
        loss=pd.to_numeric(points["loss"], errors="coerce"),
        loss_sd=pd.to_numeric(points["loss_sd"], errors="coerce") if "loss_sd" in points else np.nan,
    )
    keep = (frame["n"] > 0) & (frame["tokens"] > 0) & (frame["loss"] > 0)
    frame = frame[keep & np.isfinite(frame["loss"])]
    # one point per (N, D): its best configuration (schedule, seed), as Chinchilla tuned each run's schedule.
    # An observed final outranks any forecast: a stopped run's forecast from a fraction of its curve may
    # be far off, and it was stopped because it was expected to lose.
    measured = frame["source"].isin(MEASURED_SOURCES) if "source" in frame else pd.Series(True, index=frame.index)
    forecast = ~measured
    ranked = frame.assign(_forecast=forecast).sort_values(["_forecast", "loss"])
    best = ranked.drop_duplicates(subset=["n", "tokens"], keep="first").drop(columns="_forecast")
    # ordered by (N, D), not by when the runs happened to register: the bootstrap's resamples are drawn by
    # position, so the same finals give the same interval whichever order the workers finished them in
    best = best.sort_values(["n", "tokens"], kind="stable").reset_index(drop=True)
    return best.assign(compute=_compute(best))


def check_n_convention(n_convention: str) -> None:
    """InputError unless ``n_convention`` is 'total' or 'non-embedding' (the CLI's and the fitter's words)."""
    if n_convention not in N_CONVENTIONS:
        raise InputError(f"n_convention must be one of {', '.join(N_CONVENTIONS)}, got {n_convention!r}")


def measured_flops(points: pd.DataFrame) -> bool:
    """True when every point has its FLOPs at the planned end measured by the callback (finite, positive)."""
    if "flops" not in points or not len(points):
        return False
    flops = pd.to_numeric(points["flops"], errors="coerce").to_numpy(dtype=float)
    return bool(np.all(np.isfinite(flops) & (flops > 0)))


def _compute(points: pd.DataFrame) -> pd.Series:
    """Each point's compute: the measured FLOPs at its planned end when every point has them, else 6·N·D."""
    if measured_flops(points):
        return pd.to_numeric(points["flops"], errors="coerce").astype(float)
    return 6.0 * points["n"] * points["tokens"]


def fit_frontier_points(
    points: pd.DataFrame,
    bootstrap: int = 0,
    n_convention: str = "total",
    target_flops: Sequence[float] | None = None,
    tie_exponents: bool = False,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> dict | None:
    """Approach 3 on one final point per (N, D); None when the runs cannot determine a frontier yet.

    Where the callback measured every run's FLOPs, the fit uses them (C = k·N·D with k measured, and
    the recommendation's budget in those FLOPs, as on the loss-vs-compute plot); otherwise C = 6·N·D.
    Points with a ``loss_sd`` (every one) count by their precision and are drawn from their predictive
    distributions in the bootstrap; with a ``run`` column (several points per run, as forecasts of a
    one-run-per-size sweep) the bootstrap resamples whole runs. ``progress(done, total)`` follows the bootstrap.
    """
    from scaling_callback.fitting.bootstrap import bootstrap_compute_optimal, frontier_column
    from scaling_callback.fitting.compute_optimal import ComputeOptimalLaw

    data = usable_points(points, n_convention)
    if len(data) < MIN_RUNS or data["n"].nunique() < MIN_SIZES or data["tokens"].nunique() < 2:
        return None
    try:
        flops = data["compute"].to_numpy() if measured_flops(data) else None
        sd = pd.to_numeric(data["loss_sd"], errors="coerce") if "loss_sd" in data else None
        law = ComputeOptimalLaw(tie_exponents=tie_exponents, n_convention=n_convention).fit(
            data["n"].to_numpy(),
            data["tokens"].to_numpy(),
            data["loss"].to_numpy(),
            flops=flops,
            loss_sd=sd.to_numpy() if sd is not None and sd.notna().all() else None,
        )
    except (InputError, ArithmeticError, ValueError, np.linalg.LinAlgError) as error:
        return {"status": f"failed: {error}", "n_points": len(data)}
    largest = float(data["compute"].max())
    targets = [float(c) for c in (target_flops or [DEFAULT_TARGET_FACTOR * largest])]
    record = law.to_dict(target_flops=targets)
    record["sources"] = data["source"].value_counts().to_dict() if "source" in data else {}
    record["recommendation"] = dict(record["frontier"][0])
    if bootstrap >= 2:
        try:
            groups = data["run"].astype(str).to_numpy() if "run" in data else None
            draws = bootstrap_compute_optimal(
                law,
                groups=groups,
                n_resamples=bootstrap,
                seed=seed,
                target_flops=targets,
                n_jobs=None,
                progress=progress,
            )
        except (InputError, ValueError) as error:
            record["bootstrap"] = {"status": f"failed: {error}"}
        else:
            ci = draws.ci()
            record["ci"] = ci
            record["se"] = draws.se()
            record["bootstrap"] = draws.to_dict() | {"status": "ok"}
            target = targets[0]
            record["recommendation"]["loss_ci"] = ci.get(frontier_column("loss", target))
            record["recommendation"]["n_opt_ci"] = ci.get(frontier_column("n_opt", target))
            record["recommendation"]["d_opt_ci"] = ci.get(frontier_column("d_opt", target))
            record["_draws"] = draws.draws  # per-resample parameters, for the frontier band (not JSON)
    return record


def compare_approaches(points: pd.DataFrame, curves: dict[str, pd.DataFrame], n_convention: str = "total") -> dict:
    """Exponent a of N_opt ∝ C^a from approach 1 (envelope of curves) and approach 2 (IsoFLOP), or why not."""
    from scaling_callback.fitting.isoflop import EnvelopeFit, IsoFlopFit

    data = usable_points(points, n_convention)
    result: dict[str, dict] = {}
    try:
        iso = IsoFlopFit().fit(data["n"].to_numpy(), data["compute"].to_numpy(), data["loss"].to_numpy())
        result["approach_2"] = _exponent_record(iso)
    except (InputError, ValueError) as error:
        result["approach_2"] = {"a": None, "note": str(error)}
    n_by_run = dict(zip(data["name"], data["n"]))
    rows = [
        (n_by_run[name], curve["flops"].to_numpy(), curve["loss"].to_numpy(), name)
        for name, curve in curves.items()
        if name in n_by_run and len(curve)
    ]
    try:
        if len(rows) < 2:
            raise InputError("needs loss-vs-FLOP curves of at least two model sizes")
        n = np.concatenate([np.full(len(c), size) for size, c, _, _ in rows])
        flops = np.concatenate([c for _, c, _, _ in rows])
        loss = np.concatenate([l for _, _, l, _ in rows])
        names = np.concatenate([np.full(len(c), name) for _, c, _, name in rows])
        keep = np.isfinite(flops) & np.isfinite(loss) & (flops > 0) & (loss > 0)
        envelope = EnvelopeFit().fit(n[keep], flops[keep], loss[keep], names[keep])
        result["approach_1"] = _exponent_record(envelope)
    except (InputError, ValueError) as error:
        result["approach_1"] = {"a": None, "note": str(error)}
    return result


def _exponent_record(fit) -> dict:
    record = fit.to_dict()
    a = record.get("a")
    return {"a": a if a is None or math.isfinite(a) else None, **{k: v for k, v in record.items() if k != "a"}}
