"""Chinchilla approaches 1 and 2: the compute-optimal exponent a without a parametric L(N, D).

Hoffmann et al. 2022, Sec. 3.1 (approach 1): for each FLOP budget take the lowest loss any run
reached (the lower envelope of the loss-vs-FLOP curves) and the N of that run; regress log N_opt on
log C. Sec. 3.2 (approach 2, IsoFLOP profiles): for each fixed budget fit a parabola of loss
against log N; its vertex is N_opt(C); regress log N_opt on log C. Both give a (N_opt ∝ C^a) and
b = 1 − a under C = k·N·D, to compare side by side with approach 3.

Example:
    >>> IsoFlopFit().fit(params, flops, loss).a_
    >>> EnvelopeFit().fit(params, flops, loss, runs=run_ids).a_
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from scaling_callback.errors import InputError


def _positive(name: str, values: Sequence[float]) -> np.ndarray:
    array = np.asarray(values, dtype=float).ravel()
    bad = np.flatnonzero(~np.isfinite(array) | (array <= 0))
    if bad.size:
        raise InputError(f"{name} must be finite and positive; point {bad[0]} has {name} = {float(array[bad[0]])!r}")
    return array


def _power_law_fit(log_c: np.ndarray, log_n: np.ndarray) -> tuple[float, float, float]:
    """Least squares log N = intercept + a·log C; returns (a, intercept, standard error of a)."""
    design = np.column_stack([np.ones_like(log_c), log_c])
    coef, *_ = np.linalg.lstsq(design, log_n, rcond=None)
    dof = log_c.size - 2
    if dof <= 0:
        return float(coef[1]), float(coef[0]), float("nan")
    residual = log_n - design @ coef
    sigma2 = residual @ residual / dof
    cov = sigma2 * np.linalg.inv(design.T @ design)
    return float(coef[1]), float(coef[0]), float(np.sqrt(cov[1, 1]))


def group_budgets(flops: np.ndarray, tolerance_decades: float = 0.05) -> np.ndarray:
    """Bucket labels for FLOP budgets: sorted log10 C split wherever consecutive values differ by more than the tolerance."""
    log_c = np.log10(flops)
    order = np.argsort(log_c)
    labels = np.empty(flops.size, dtype=int)
    label = 0
    for position, index in enumerate(order):
        if position and log_c[index] - log_c[order[position - 1]] > tolerance_decades:
            label += 1
        labels[index] = label
    return labels


class _FrontierExponentFit:
    """Shared result handling: a_, b_, frontier(C), to_dict(), to_frame()."""

    approach = ""

    def _finish(self, table: pd.DataFrame, flops_per_param_token: float) -> None:
        self.k_ = flops_per_param_token
        self.points_ = table
        used = table[table["used"]]
        self.warnings_ = list(self.warnings_)
        if len(used) < 2:
            self.a_ = self.b_ = self.log_g_ = self.a_se_ = float("nan")
            self.status_ = "insufficient_data"
            self.warnings_.append(
                f"{self.approach}: {len(used)} usable budget(s); at least 2 are needed for an exponent"
            )
            return
        self.a_, self.log_g_, self.a_se_ = _power_law_fit(
            np.log(used["flops"].to_numpy()), np.log(used["n_opt"].to_numpy())
        )
        self.b_ = 1.0 - self.a_
        self.status_ = "ok"

    def frontier(self, flops: Sequence[float]) -> pd.DataFrame:
        """N_opt = exp(intercept)·C^a and D_opt = C/(k·N_opt) at budgets C."""
        flops = _positive("flops", np.atleast_1d(flops))
        n_opt = np.exp(self.log_g_ + self.a_ * np.log(flops))
        d_opt = flops / (self.k_ * n_opt)
        return pd.DataFrame({"flops": flops, "n_opt": n_opt, "d_opt": d_opt, "tokens_per_param": d_opt / n_opt})

    def to_dict(self) -> dict:
        """JSON-ready summary with the per-budget table and the choices."""
        return {
            "approach": self.approach,
            "a": _nan_to_none(self.a_),
            "b": _nan_to_none(self.b_),
            "a_se": _nan_to_none(self.a_se_),
            "status": self.status_,
            "warnings": list(self.warnings_),
            "choices": self.choices_,
            "points": self.points_.astype(object).where(self.points_.notna(), None).to_dict("records"),
        }

    def to_frame(self) -> pd.DataFrame:
        """One row: approach, a, b, standard error of a, number of budgets used, status."""
        return pd.DataFrame(
            [
                {
                    "approach": self.approach,
                    "a": self.a_,
                    "b": self.b_,
                    "a_se": self.a_se_,
                    "budgets_used": int(self.points_["used"].sum()),
                    "status": self.status_,
                }
            ]
        )


class IsoFlopFit(_FrontierExponentFit):
    """Approach 2: a parabola of loss vs log N per FLOP budget, vertex = N_opt(C)."""

    approach = "approach 2 (IsoFLOP parabolas)"

    def __init__(
        self, *, bucket_tolerance_decades: float = 0.05, min_sizes: int = 3, flops_per_param_token: float = 6.0
    ) -> None:
        self.bucket_tolerance_decades = bucket_tolerance_decades
        self.min_sizes = min_sizes
        self.flops_per_param_token = flops_per_param_token

    def fit(self, params: Sequence[float], flops: Sequence[float], loss: Sequence[float]) -> IsoFlopFit:
        """Group points into budgets found from the data, fit each parabola, regress the vertices."""
        n, c, l = _positive("params", params), _positive("flops", flops), _positive("loss", loss)
        if not n.size == c.size == l.size:
            raise InputError(f"params, flops and loss differ in length ({n.size}, {c.size}, {l.size})")
        if self.min_sizes < 3:
            raise InputError(f"min_sizes must be at least 3 for a parabola, got {self.min_sizes!r}")
        labels = group_budgets(c, self.bucket_tolerance_decades)
        self.warnings_, rows = [], []
        for label in np.unique(labels):
            members = labels == label
            rows.append(self._vertex(n[members], c[members], l[members]))
        self.choices_ = {
            "form": "loss = p0 + p1*log N + p2*(log N)^2 per budget (Hoffmann et al. 2022, approach 2)",
            "buckets": f"budgets grouped where sorted log10 C jumps by more than {self.bucket_tolerance_decades} decades",
            "min_sizes": self.min_sizes,
            "regression": "least squares log N_opt = log G + a*log C",
            "flop_convention": f"C = {self.flops_per_param_token:g}*N*D for D_opt",
            "points_used": int(n.size),
        }
        self._finish(pd.DataFrame(rows), self.flops_per_param_token)
        return self

    def _vertex(self, n: np.ndarray, c: np.ndarray, l: np.ndarray) -> dict:
        budget = float(np.exp(np.mean(np.log(c))))
        row = {
            "flops": budget,
            "n_points": int(n.size),
            "n_opt": np.nan,
            "loss_min": np.nan,
            "used": False,
            "reason": "",
        }
        x = np.log(n)
        p2, p1, p0 = np.polyfit(x, l, 2) if np.unique(n).size >= self.min_sizes else (np.nan, np.nan, np.nan)
        if np.unique(n).size < self.min_sizes:
            row["reason"] = f"{np.unique(n).size} model sizes (< {self.min_sizes})"
        elif p2 <= 0:
            row["reason"] = "parabola opens downward"
        else:
            vertex = -p1 / (2 * p2)
            row["n_opt"], row["loss_min"] = float(np.exp(vertex)), float(p0 - p1 * p1 / (4 * p2))
            inside = x.min() <= vertex <= x.max()
            row["used"], row["reason"] = inside, "" if inside else "vertex outside the sizes tried"
        if not row["used"]:
            self.warnings_.append(f"budget C = {budget:.3g} skipped: {row['reason']}")
        return row


class EnvelopeFit(_FrontierExponentFit):
    """Approach 1: lower envelope of loss-vs-FLOP curves on a log grid of budgets; its N gives N_opt(C)."""

    approach = "approach 1 (lower envelope)"

    def __init__(self, *, n_budgets: int = 40, flops_per_param_token: float = 6.0) -> None:
        self.n_budgets = n_budgets
        self.flops_per_param_token = flops_per_param_token

    def fit(
        self, params: Sequence[float], flops: Sequence[float], loss: Sequence[float], runs: Sequence
    ) -> EnvelopeFit:
        """Curves given as points (N, cumulative FLOPs, loss) labelled by run."""
        n, c, l = _positive("params", params), _positive("flops", flops), _positive("loss", loss)
        labels = np.asarray(runs)
        if not n.size == c.size == l.size == labels.size:
            raise InputError(
                f"params, flops, loss and runs differ in length ({n.size}, {c.size}, {l.size}, {labels.size})"
            )
        curves = envelope_curves(n, c, l, labels)
        low = min(curve[0].min() for curve in curves.values())
        high = max(curve[0].max() for curve in curves.values())
        budgets = np.exp(np.linspace(low, high, self.n_budgets))
        rows = []
        for budget in budgets:
            best = (np.inf, np.nan)
            for size, (log_c, best_loss) in curves.items():
                if log_c[0] <= np.log(budget) <= log_c[-1]:
                    value = float(np.interp(np.log(budget), log_c, best_loss))
                    best = min(best, (value, size))
            rows.append({"flops": budget, "n_opt": best[1], "loss_min": best[0] if np.isfinite(best[0]) else np.nan})
        table = pd.DataFrame(rows)
        table["used"] = table["n_opt"].notna()
        self.warnings_ = []
        if table["n_opt"].nunique() < 2:
            self.warnings_.append("approach 1: the envelope is held by fewer than 2 model sizes; a is not identified")
            table["used"] = False
        self.choices_ = {
            "form": "lower envelope of loss vs FLOPs over runs (Hoffmann et al. 2022, approach 1)",
            "budgets": f"{self.n_budgets} log-spaced budgets over the FLOPs covered",
            "curve": "running minimum of each run's loss, interpolated in log C",
            "regression": "least squares log N_opt = log G + a*log C",
            "flop_convention": f"C = {self.flops_per_param_token:g}*N*D for D_opt",
            "points_used": int(n.size),
            "runs": len(curves),
        }
        self._finish(table, self.flops_per_param_token)
        return self


def envelope_curves(
    n: np.ndarray, c: np.ndarray, l: np.ndarray, runs: np.ndarray
) -> dict[float, tuple[np.ndarray, np.ndarray]]:
    """Per run (keyed by its N; runs of one size stay separate curves): sorted log C and the best loss so far."""
    curves: dict[float, tuple[np.ndarray, np.ndarray]] = {}
    for run in np.unique(runs):
        members = runs == run
        order = np.argsort(c[members])
        log_c = np.log(c[members][order])
        best = np.minimum.accumulate(l[members][order])
        size = float(np.median(n[members]))
        key = size
        while key in curves:  # two runs of one size: keep both as separate curves
            key = np.nextafter(key, np.inf)
        curves[key] = (log_c, best)
    return curves


def _nan_to_none(value: float):
    return None if value is None or not np.isfinite(value) else float(value)
