"""Bootstrap of a compute-optimal fit, clustered by run, every resample refitted properly.

Why: the interval of a (N_opt ∝ C^a) is the product. Hoffmann et al. 2022 reported a = 0.454–0.455
because their optimiser stalled; Besiroglu et al. 2024 refitted each resample to the optimum and got
a = 0.513 with SE 0.020. So each resample here is refitted until it meets the convergence criterion
the point fit is judged by (largest projected gradient ≤ 1e-6 × the objective's natural gradient
scale, see ``compute_diagnostics.gradient_scale``), warm-started from the point fit's optimum (a
resample is the same data reweighted — each distinct point weighted by how often it was drawn — so
its optimum lies near). All resamples are solved together by a damped Newton iteration vectorised
over resamples (:mod:`scaling_callback.fitting.batched_newton`); one that it does not bring to the
tolerance is refitted with scipy from the warm start, then from the full fit's other optima and
its best grid start. ``warm_start=False`` keeps the slower method this replaced (every resample
optimised by scipy from all those starts at ftol 1e-15 / gtol 1e-12). Measured side by side by
``benchmarks/bench_report.py`` (200 resamples, load average 3.5 on 2 cores): 13.8× / 17.3× / 11.8×
faster on synthetic Chinchilla-like sweeps of 20 / 60 / 240 points, with draws of a equal to within
4e-5 / 3e-4 / 1.5e-4 and identical 95 % intervals; on the quickstart's 9 points (where many
resamples cannot pin five parameters down and any point along a flat valley fits) 0.55 s instead
of 25 s. Points from one run are resampled together (a run that contributes
several points is one case). With ``n_jobs`` > 1, or without the warm start, resamples run in
worker processes when the measured time of the first few says it pays; results do not depend on
the worker count (index sets are drawn up front from one seed).

Points with a known uncertainty (a law fitted with ``loss_sd``: evaluated finals, forecasts of decayed
runs) keep their weights in every refit, and each resample also draws every point's loss from its
predictive distribution (log-normal with the point's relative SD), so a frontier built on forecasts
is as uncertain as they are. The draws of one run's points share one standard normal (forecasts of
one run at several D come from one curve and err together); runs draw independently.

One run per model size (every size a single run with points at several budgets: ``DecayedFinals``
points) is a design too small for
resampling runs: with four sizes a resample often holds two or three of them, and a's interval spans
most of [0, 1]. There the bootstrap is the wild cluster bootstrap (Cameron, Gelbach & Miller 2008,
"Bootstrap-based improvements for inference with clustered errors", REStat 90(3)): the design is kept,
and each resample multiplies every run's log residuals from the point fit by one weight from Webb's
six-point distribution, then adds the predictive draw.

Example:
    >>> law = ComputeOptimalLaw().fit(N, D, loss)
    >>> boot = bootstrap_compute_optimal(law, groups=run_ids, n_resamples=1000, target_flops=[1e22])
    >>> boot.ci()["a"], boot.se()["a"]
"""

from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from scaling_callback.errors import InputError
from scaling_callback.fitting.batched_newton import fit_batch
from scaling_callback.fitting.chinchilla_objective import Variant, huber_objective
from scaling_callback.fitting.compute_optimal import ComputeOptimalLaw
from scaling_callback.fitting.multistart import minimize_from_starts
from scaling_callback.laws.chinchilla import compute_optimal, frontier_exponents, theta_to_params

PARAMETER_COLUMNS = ("E", "A", "B", "alpha", "beta", "a", "b")
#: Run resamples in worker processes only when the serial estimate exceeds this many seconds and
#: cores are idle (1-minute load average): on a shared 2-core machine extra processes only add overhead.
PARALLEL_MIN_SECONDS = 4.0
#: Webb 2014 ("Reworking wild bootstrap based inference for clustered errors", Queen's Economics WP 1315):
#: ±√(1/2), ±1, ±√(3/2) with equal probability (mean 0, variance 1): with G runs 6^G sign patterns where
#: Rademacher weights give only 2^G (16 for four sizes).
WEBB_WEIGHTS = np.array([-np.sqrt(1.5), -1.0, -np.sqrt(0.5), np.sqrt(0.5), 1.0, np.sqrt(1.5)])
_PILOT_RESAMPLES = 8
_PROGRESS_BLOCK = 16  # serial resamples between progress calls


@dataclass
class BootstrapResult:
    """Draws of every quantity (one row per successful resample) and their intervals."""

    estimates: dict[str, float]
    draws: pd.DataFrame
    level: float
    choices: dict
    n_failed: int
    n_not_converged: int
    seconds: float
    warnings: list[str] = field(default_factory=list)

    def ci(self) -> dict[str, list[float]]:
        """Percentile interval at `level` of every quantity."""
        tail = (1.0 - self.level) / 2.0
        return {
            name: [float(np.quantile(col, tail)), float(np.quantile(col, 1.0 - tail))]
            for name, col in self.draws.items()
            if len(col)
        }

    def se(self) -> dict[str, float]:
        """Standard deviation of the draws (bootstrap standard error); inf where the draws overflow it.

        An ill-determined resample can send A or B to ~1e200 (a flat direction of the objective), whose
        square overflows: that spread is infinite for practical purposes, not a warning to print.
        """
        with np.errstate(over="ignore", invalid="ignore"):
            return {name: float(col.std(ddof=1)) for name, col in self.draws.items() if len(col) > 1}

    def to_frame(self) -> pd.DataFrame:
        """One row per quantity: estimate, se, lower, upper."""
        ci, se = self.ci(), self.se()
        rows = [
            {
                "quantity": name,
                "estimate": self.estimates.get(name, np.nan),
                "se": se.get(name, np.nan),
                "lower": ci[name][0],
                "upper": ci[name][1],
            }
            for name in ci
        ]
        return pd.DataFrame(rows).set_index("quantity")

    def to_dict(self) -> dict:
        """JSON-ready: ci, se, choices, counts, seconds, warnings."""
        return {
            "ci": self.ci(),
            "se": self.se(),
            "level": self.level,
            "n_failed": self.n_failed,
            "n_not_converged": self.n_not_converged,
            "seconds": self.seconds,
            "choices": self.choices,
            "warnings": list(self.warnings),
        }


def frontier_column(quantity: str, flops: float) -> str:
    """Draw-column name of a frontier quantity at one budget, e.g. 'n_opt@1e+22'."""
    return f"{quantity}@{flops:.6g}"


def bootstrap_compute_optimal(
    law: ComputeOptimalLaw,
    *,
    groups: Sequence | None = None,
    n_resamples: int = 1000,
    seed: int = 0,
    target_flops: Sequence[float] = (),
    level: float = 0.95,
    n_jobs: int | None = None,
    n_grid_starts: int = 1,
    warm_start: bool = True,
    progress: Callable[[int, int], None] | None = None,
    draw_losses: bool = True,
) -> BootstrapResult:
    """Resample runs (or points) with replacement, refit each resample, collect parameters and frontier.

    ``draw_losses`` (used only when the law was fitted with ``loss_sd``): each resample also draws each
    point's loss from its predictive distribution.

    ``progress(done, total)`` is called after each block of resamples (for a progress display).
    ``warm_start=False`` refits every resample from all starts at the point fit's tight tolerances (the
    slower method this replaced; kept for comparison in ``benchmarks/bench_report.py``).
    """
    started = time.perf_counter()
    if getattr(law, "status_", None) is None:
        raise InputError("bootstrap needs a fitted ComputeOptimalLaw (call fit first)")
    if law.status_ == "failed":
        raise InputError("cannot bootstrap a failed fit (no start reached a finite objective)")
    if law.status_ == "degenerate":
        raise InputError("cannot bootstrap a degenerate fit (its parameters are not finite)")
    if n_resamples < 2:
        raise InputError(f"n_resamples must be at least 2, got {n_resamples!r}")
    if not 0.0 < level < 1.0:
        raise InputError(f"level must be in (0, 1), got {level!r}")
    targets = np.atleast_1d(np.asarray(target_flops, dtype=float)) if len(target_flops) else np.empty(0)
    if np.any(~np.isfinite(targets) | (targets <= 0)):
        raise InputError(f"target FLOPs must be positive, got {targets.tolist()}")
    clusters, clustered_by = _clusters(groups, law.n_points_)
    rng = np.random.default_rng(seed)
    member = np.empty(law.n_points_, dtype=int)
    for k, cluster in enumerate(clusters):
        member[cluster] = k
    wild = groups is not None and _clusters_are_the_design(law._log_n, law._log_d, member)
    if wild:  # every run its own size: keep the design, flip each run's residuals (Webb's six-point weights)
        index_sets = [np.arange(law.n_points_)] * n_resamples
        fitted = np.log(law.predict(np.exp(law._log_n), np.exp(law._log_d)))
        flips = rng.choice(WEBB_WEIGHTS, (n_resamples, len(clusters)))[:, member]
        base = fitted + flips * (law._log_loss - fitted)
    else:
        index_sets = [
            np.concatenate([clusters[i] for i in rng.integers(0, len(clusters), len(clusters))])
            for _ in range(n_resamples)
        ]
        base = np.broadcast_to(law._log_loss, (n_resamples, law.n_points_))
    sd = getattr(law, "loss_sd_", None)
    drawing = draw_losses and sd is not None
    if drawing:  # drawn after the index sets, so a law without SDs resamples exactly as before
        sd_log = sd / np.exp(law._log_loss)
        # one draw per run: its points are forecasts from one curve (one point per run in a grid: independent)
        draws = base + sd_log * rng.standard_normal((n_resamples, len(clusters)))[:, member]
        resamples = [(index, row) for index, row in zip(index_sets, draws)]
    elif wild:
        resamples = [(index, row) for index, row in zip(index_sets, base)]
    else:
        resamples = [(index, None) for index in index_sets]
    starts = _resample_starts(law, n_grid_starts)
    grad_tolerance = law.diagnostics_.get("grad_tolerance", np.inf)
    options = dict(law.optimizer_options or {})
    if warm_start and np.isfinite(grad_tolerance) and law.optimizer == "L-BFGS-B":
        options.update(gtol=grad_tolerance, ftol=0.0)  # stop at the point fit's own convergence criterion
    task = _Task(
        law._log_n,
        law._log_d,
        law._log_loss,
        law.variant_,
        law.delta,
        law.optimizer,
        options,
        starts,
        law.flops_per_param_token_,
        targets,
        grad_tolerance,
        warm_start,
        law._weights,
        law._deltas,
    )

    report = progress or (lambda done, total: None)
    report(0, n_resamples)
    if warm_start and n_jobs in (None, 1):
        # one batched solve: its cost is per iteration, not per resample, so splitting it only adds iterations
        blocks = [_refit_block(task, resamples, lambda done: report(done, n_resamples))]
        workers, worker_reason = 1, "all resamples solved together in one process (batched Newton)"
    else:
        blocks, workers, worker_reason = _pilot_then_rest(task, resamples, n_jobs, report)
    report(n_resamples, n_resamples)

    values = np.vstack([b[0] for b in blocks])
    converged = np.concatenate([b[1] for b in blocks])
    columns = list(PARAMETER_COLUMNS) + [frontier_column(q, c) for c in targets for q in ("n_opt", "d_opt", "loss")]
    finite = np.all(np.isfinite(values), axis=1)
    draws = pd.DataFrame(values[finite], columns=columns)
    n_failed = int((~finite).sum())
    n_not_converged = int((finite & ~converged).sum())
    estimates = _estimates(law, targets)
    choices = {
        "method": "wild cluster bootstrap (each run's log residuals times one weight from Webb's six-point "
        "distribution, the design kept: every run is its own model size), percentile intervals"
        if wild
        else "case bootstrap, percentile intervals",
        "clustered_by": clustered_by,
        "n_clusters": len(clusters),
        "n_resamples": n_resamples,
        "seed": seed,
        "level": level,
        "starts_per_resample": 1 if warm_start else len(starts),
        "starts": "warm start from the point fit's optimum; where that does not converge, also the fit's "
        f"other distinct optima and best grid start ({len(starts) - 1} more)"
        if warm_start
        else "distinct optima of the full fit + its best grid starts, every one optimised",
        "stopping": f"projected gradient <= the point fit's gradient tolerance ({grad_tolerance:.3g})"
        if "gtol" in options
        else "optimizer tolerances",
        "evaluation": "distinct points of the resample weighted by their multiplicity"
        + (" times the fit's precision weights" if sd is not None else ""),
        "predictive_draws": "each resample draws each point's log loss from N(log L, (loss_sd/L)^2), "
        "one standard normal per run (a run's points are forecasts from one curve), independent across runs"
        if drawing
        else "none (points taken as observed)",
        "solver": "all resamples at once by damped Newton (fitting.batched_newton), scipy "
        f"{law.optimizer} for those it leaves unconverged"
        if warm_start
        else law.optimizer,
        "workers": workers,
        "workers_chosen": worker_reason,
        "optimizer": law.optimizer,
        "variant": law.variant_.label,
    }
    warnings = []
    if n_failed:
        warnings.append(f"{n_failed} of {n_resamples} resamples failed to fit and were left out")
    if n_not_converged > 0.01 * n_resamples:
        warnings.append(f"{n_not_converged} of {n_resamples} resample fits did not meet the gradient tolerance")
    return BootstrapResult(
        estimates, draws, level, choices, n_failed, n_not_converged, time.perf_counter() - started, warnings
    )


def _pilot_then_rest(
    task: _Task, resamples: list[_Resample], n_jobs: int | None, report: Callable[[int, int], None]
) -> tuple[list[tuple[np.ndarray, np.ndarray]], int, str]:
    """Time a few resamples, then refit the rest serially or in worker processes when that pays."""
    n_resamples = len(resamples)
    pilot = min(_PILOT_RESAMPLES, n_resamples)
    pilot_started = time.perf_counter()
    blocks = [_refit_block(task, resamples[:pilot])]
    report(pilot, n_resamples)
    per_resample = (time.perf_counter() - pilot_started) / pilot
    workers, worker_reason = _worker_count(n_jobs, per_resample * (n_resamples - pilot))
    rest = resamples[pilot:]
    if rest and workers > 1:
        try:
            blocks += _parallel_blocks(task, rest, workers, lambda done: report(pilot + done, n_resamples))
        except (BrokenProcessPool, OSError) as error:  # no processes to be had: finish serially, say so
            worker_reason += f"; worker processes failed ({type(error).__name__}), ran serially"
            workers = 1
    if rest and workers == 1:
        for first in range(0, len(rest), _PROGRESS_BLOCK):
            blocks.append(_refit_block(task, rest[first : first + _PROGRESS_BLOCK]))
            report(pilot + min(first + _PROGRESS_BLOCK, len(rest)), n_resamples)
    return blocks, workers, worker_reason


def _parallel_blocks(
    task: _Task, resamples: list[_Resample], workers: int, progress: Callable[[int], None]
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Refit blocks of resamples in `workers` processes (fork where the platform has it: no re-imports)."""
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else None)
    chunks = [chunk for chunk in np.array_split(np.arange(len(resamples)), 4 * workers) if len(chunk)]
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        futures = [pool.submit(_refit_block, task, [resamples[i] for i in chunk]) for chunk in chunks]
        results, done = [], 0
        for future, chunk in zip(futures, chunks):  # in submission order: the draws do not depend on timing
            results.append(future.result())
            done += len(chunk)
            progress(done)
        return results


@dataclass(frozen=True)
class _Task:
    log_n: np.ndarray
    log_d: np.ndarray
    log_loss: np.ndarray
    variant: Variant
    delta: float
    optimizer: str
    options: dict | None
    starts: np.ndarray
    flops_per_param_token: float
    targets: np.ndarray
    grad_tolerance: float
    warm_start: bool = True
    weights: np.ndarray | None = None  # the fit's precision weight of each point (None: all 1)
    deltas: np.ndarray | float | None = None  # its Huber threshold of each point (None: ``delta``)

    def point_weights(self) -> np.ndarray:
        return np.ones(self.log_n.size) if self.weights is None else self.weights

    def point_deltas(self) -> np.ndarray | float:
        return self.delta if self.deltas is None else self.deltas


#: One resample: the indices of its points (with repeats) and its drawn log losses (None: the observed ones).
_Resample = tuple[np.ndarray, np.ndarray | None]


def _refit_block(
    task: _Task, resamples: list[_Resample], progress: Callable[[int], None] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Refit every resample of one block; rows of parameters and frontier values, and converged flags.

    Warm-started blocks are first solved together by :func:`batched_newton.fit_batch`; the resamples it
    does not bring to the gradient tolerance are refitted one by one with scipy.
    """
    width = len(PARAMETER_COLUMNS) + 3 * len(task.targets)
    values = np.full((len(resamples), width), np.nan)
    converged = np.zeros(len(resamples), dtype=bool)
    solutions: list[np.ndarray | None] = [None] * len(resamples)
    if task.warm_start and len(task.starts) and task.variant.n_free == task.starts.shape[1] and resamples:
        weights = np.zeros((len(resamples), task.log_n.size))
        for row, (index, _) in enumerate(resamples):
            np.add.at(weights[row], index, 1.0)
        drawn = any(row is not None for _, row in resamples)
        log_loss = np.array([task.log_loss if row is None else row for _, row in resamples]) if drawn else task.log_loss
        batch = fit_batch(
            task.starts[0],
            task.variant,
            task.log_n,
            task.log_d,
            log_loss,
            weights * task.point_weights(),
            task.point_deltas(),
            task.grad_tolerance,
            progress=progress,
        )
        for row in np.flatnonzero(batch.converged):
            solutions[row] = batch.x[row]
            converged[row] = True
    bounds = task.variant.bounds()
    for row, (index, drawn_loss) in enumerate(resamples):
        if solutions[row] is None:
            best = _refit_one(task, index, drawn_loss, bounds)
            if best is None or not np.isfinite(best.fun):
                continue
            solutions[row] = best.x
            converged[row] = best.grad_norm <= task.grad_tolerance
        with np.errstate(all="ignore"):  # a resample that ran off to A or B = inf is kept as such (se() says inf)
            params = theta_to_params(task.variant.theta(solutions[row]))
            a, b = frontier_exponents(params["alpha"], params["beta"])
            front = compute_optimal(task.targets, **params, flops_per_param_token=task.flops_per_param_token)
        frontier_values = np.column_stack([front.n_opt, front.d_opt, front.loss]).ravel()
        values[row] = [params[k] for k in PARAMETER_COLUMNS[:5]] + [a, b] + frontier_values.tolist()
    return values, converged


def _refit_one(task: _Task, index: np.ndarray, drawn_loss: np.ndarray | None, bounds):
    """One resample with scipy: from the warm start (then the other starts if it does not converge), or from all."""
    distinct, counts = np.unique(index, return_counts=True)
    log_n, log_d = task.log_n[distinct], task.log_d[distinct]
    log_loss = (task.log_loss if drawn_loss is None else drawn_loss)[distinct]
    weights = counts * task.point_weights()[distinct]
    deltas = np.broadcast_to(task.point_deltas(), task.log_n.shape)[distinct]

    def objective(free: np.ndarray) -> tuple[float, np.ndarray]:
        return huber_objective(free, log_n, log_d, log_loss, task.variant, deltas, weights)

    first = task.starts[:1] if task.warm_start else task.starts
    best = minimize_from_starts(objective, first, task.optimizer, task.options, bounds).best
    if task.warm_start and (best is None or not best.grad_norm <= task.grad_tolerance) and len(task.starts) > 1:
        others = minimize_from_starts(objective, task.starts[1:], task.optimizer, task.options, bounds).best
        if others is not None and (best is None or others.fun < best.fun):
            best = others
    return best


def _clusters(groups: Sequence | None, n_points: int) -> tuple[list[np.ndarray], str]:
    if groups is None:
        return [np.array([i]) for i in range(n_points)], "point (each point is its own case)"
    labels = np.asarray(groups)
    if labels.shape != (n_points,):
        raise InputError(f"groups has {labels.size} labels for {n_points} points")
    _, inverse = np.unique(labels, return_inverse=True)
    return [
        np.flatnonzero(inverse == k) for k in range(inverse.max() + 1)
    ], "run (all points of a run resampled together)"


def _clusters_are_the_design(log_n: np.ndarray, log_d: np.ndarray, member: np.ndarray) -> bool:
    """One run per model size: every size belongs to one run alone, which gives points at several budgets.

    Resampling such runs resamples the sizes themselves (a grid's or an IsoFLOP sweep's runs give one
    point each, and many runs share a size or neighbour it).
    """
    sizes = np.unique(np.round(log_n, 9), return_inverse=True)[1]
    runs_per_size = [np.unique(member[sizes == k]).size for k in range(sizes.max() + 1)]
    budgets_per_run = [np.unique(np.round(log_d[member == k], 9)).size for k in range(member.max() + 1)]
    return max(runs_per_size) == 1 and min(budgets_per_run) >= 2 and member.max() >= 1


def _resample_starts(law: ComputeOptimalLaw, n_grid_starts: int) -> np.ndarray:
    candidates = [row for row in law.local_optima_] + [row for row in law.top_grid_starts_[:n_grid_starts]]
    unique: list[np.ndarray] = []
    for row in candidates:
        if np.all(np.isfinite(row)) and not any(np.allclose(row, other) for other in unique):
            unique.append(np.asarray(row, dtype=float))
    return np.array(unique)


def _worker_count(n_jobs: int | None, serial_seconds: float) -> tuple[int, str]:
    """Workers to use and why: processes only when the serial estimate is long and cores are idle."""
    if n_jobs is not None:
        if n_jobs < 1:
            raise InputError(f"n_jobs must be at least 1, got {n_jobs!r}")
        return n_jobs, "given"
    available = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    idle = available - load + 1.0  # this process is part of the load
    reason = f"measured: serial estimate {serial_seconds:.1f} s, load {load:.2f} on {available} cores"
    if available < 2 or serial_seconds <= PARALLEL_MIN_SECONDS:
        return 1, reason
    return max(1, min(available, 8, int(idle + 0.5))), reason


def _estimates(law: ComputeOptimalLaw, targets: np.ndarray) -> dict[str, float]:
    out = {**law.params_, "a": law.a_, "b": law.b_}
    if len(targets):
        front = law.frontier(targets)
        for _, row in front.iterrows():
            for quantity in ("n_opt", "d_opt", "loss"):
                out[frontier_column(quantity, row["flops"])] = float(row[quantity])
    return out
