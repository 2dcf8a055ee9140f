"""``scaling-callback fit-loss-to-loss``: one loss of a sweep's models predicted from another
(Brandfonbrener et al. 2024).

    scaling-callback fit-loss-to-loss POINTS.csv --x-col L0 --y-col L1 [--compute-col C] [--group-col G]
        [--predict-x VALUES ...] [--predict-compute C ...] [--bootstrap K] [--seed S] [--level P] [--json]

One row per model (or checkpoint). Train→test: both losses on the same row. Train→train (two sweeps
on different data): rows holding only L0 and rows holding only L1, paired by equal compute, else
along each sweep's compute frontier. With ``--compute-col``, E0 and E1 come from each loss's own
compute law L(C) = E + A·C^(−a) and only K, κ are fitted (the paper's method; ``--method joint``, the
default, then refines the compute laws and the law together); without it all four are fitted and the
JSON says so. A value to map at or below E0 is reported as such (``below_E0``)
with the law's floor E1. Each ``--group-col`` value gets its own law.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from scaling_callback.cli.json_output import dumps
from scaling_callback.cli.options import add_interval_options, check_interval_options
from scaling_callback.errors import InputError
from scaling_callback.fitting.loss_to_loss import LossToLossLaw, pair_by_compute
from scaling_callback.fitting.loss_to_loss_compute import METHODS, LossToLossFromCompute
from scaling_callback.io.readers import read_csv_frame

MIN_PAIRS = 4


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("points", metavar="POINTS.csv", help="CSV, one row per model or checkpoint")
    parser.add_argument("--x-col", required=True, metavar="COL", help="the loss to map from (L0, e.g. train loss)")
    parser.add_argument("--y-col", required=True, metavar="COL", help="the loss to predict (L1, e.g. a test loss)")
    parser.add_argument(
        "--compute-col", metavar="COL", help="training compute (FLOPs): E0, E1 from compute laws (the paper's method)"
    )
    parser.add_argument("--group-col", metavar="COL", help="fit one law per value of this column")
    parser.add_argument("--predict-x", type=float, nargs="+", default=[], metavar="L0", help="L0 values to map")
    parser.add_argument(
        "--predict-compute",
        type=float,
        nargs="+",
        default=[],
        metavar="C",
        help="budgets at which to predict L1 through L0(C) (needs --compute-col)",
    )
    parser.add_argument(
        "--method",
        choices=METHODS,
        default="joint",
        help="with --compute-col: refine the compute laws and the law jointly (default), or the paper's sequential fit",
    )
    add_interval_options(parser, 0, "bootstrap resamples for intervals (needs --compute-col)")


def run(args: argparse.Namespace) -> int:
    check_interval_options(args)
    if (args.predict_compute or args.bootstrap) and not args.compute_col:
        raise InputError("--predict-compute and --bootstrap need --compute-col")
    for name, values in (("--predict-x", args.predict_x), ("--predict-compute", args.predict_compute)):
        bad = [v for v in values if not (math.isfinite(v) and v > 0)]
        if bad:
            raise InputError(f"{name} values must be positive, got {bad[0]!r}")
    frame = read_csv_frame(Path(args.points))
    for column in (args.x_col, args.y_col, args.compute_col, args.group_col):
        if column is not None and column not in frame.columns:
            raise InputError(f"{args.points}: no column {column!r}; it has {', '.join(map(str, frame.columns))}")
    groups = (
        {"": frame}
        if args.group_col is None
        else {
            str(g): frame[frame[args.group_col].astype(str) == str(g)]
            for g in pd.unique(frame[args.group_col].astype(str))
        }
    )
    results = {
        group: _fit_group(part, args, f"{args.points}" + (f" group {group!r}" if group else ""))
        for group, part in groups.items()
    }
    record: dict[str, Any] = results[""] if args.group_col is None else {"groups": results}
    print(dumps(record) if args.json else _text(results))
    return 0


def _numbers(part: pd.DataFrame, column: str | None, where: str) -> np.ndarray | None:
    if column is None:
        return None
    values = pd.to_numeric(part[column], errors="coerce").to_numpy(dtype=float)
    empty = part[column].isna().to_numpy()  # an empty cell: this row lacks the value (another sweep's row)
    bad = np.flatnonzero((np.isnan(values) & ~empty) | np.isinf(values) | (values <= 0))
    if bad.size:
        raise InputError(
            f"{where}: column {column!r} must hold positive numbers; row {int(part.index[bad[0]]) + 2} has "
            f"{part[column].iloc[bad[0]]!r}"
        )
    return values


def _pairs(
    part: pd.DataFrame, args: argparse.Namespace, where: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, str]:
    """(L0, L1, compute or None, pairing) from rows with both losses, else (train→train) by compute."""
    x, y, c = (_numbers(part, col, where) for col in (args.x_col, args.y_col, args.compute_col))
    both = np.isfinite(x) & np.isfinite(y) & (np.isfinite(c) if c is not None else True)
    if both.sum() >= MIN_PAIRS:
        return x[both], y[both], (c[both] if c is not None else None), "same models (one row each)"
    if c is None:
        raise InputError(
            f"{where}: {int(both.sum())} rows hold both {args.x_col!r} and {args.y_col!r} (need {MIN_PAIRS}); "
            "to pair two sweeps' models by compute give --compute-col"
        )
    only_x, only_y = np.isfinite(x) & np.isfinite(c), np.isfinite(y) & np.isfinite(c)
    key_x = pd.Series(x[only_x], index=np.round(np.log(c[only_x]), 9)).groupby(level=0).min()
    key_y = pd.Series(y[only_y], index=np.round(np.log(c[only_y]), 9)).groupby(level=0).min()
    common = key_x.index.intersection(key_y.index)
    if common.size >= MIN_PAIRS:
        return (
            key_x[common].to_numpy(),
            key_y[common].to_numpy(),
            np.exp(common.to_numpy()),
            "models paired by equal compute",
        )
    if only_x.sum() < 2 or only_y.sum() < 2:
        raise InputError(
            f"{where}: too few points to pair: {int(only_x.sum())} with {args.x_col!r}, {int(only_y.sum())} "
            f"with {args.y_col!r}"
        )
    budgets, paired0, paired1 = pair_by_compute(c[only_x], x[only_x], c[only_y], y[only_y])
    return (
        paired0,
        paired1,
        budgets,
        "compute frontiers of the two sweeps, interpolated at 20 shared log-spaced budgets",
    )


def _fit_group(part: pd.DataFrame, args: argparse.Namespace, where: str) -> dict[str, Any]:
    l0, l1, compute, pairing = _pairs(part, args, where)
    if compute is not None:
        fit = LossToLossFromCompute(
            method=args.method, n_bootstrap=args.bootstrap, level=args.level, random_state=args.seed
        )
        fit.fit(l0, l1, compute, pairing=pairing)
        record = fit.to_dict()
        predictor, below = fit.predict, fit.below_E0
    else:
        law = LossToLossLaw().fit(l0, l1, pairing=pairing)
        record = law.to_dict()
        record["warnings"].append(
            "no --compute-col: E0 and E1 fitted with K and kappa, not from compute laws "
            "(poorly identified; losses beyond the fitted range may fall below E0)"
        )
        predictor, below = law.predict, law.below_E0
        fit = None
    x = np.asarray(args.predict_x, dtype=float)
    rows = []
    if x.size:
        values, flags = predictor(x), below(x)
        bounds = fit.interval(loss0=x) if fit is not None else np.full((x.size, 2), np.nan)
        for value, flag, prediction, (low, high) in zip(x, flags, values, bounds):
            row = {
                "x": float(value),
                "prediction": float(prediction),
                "low": float(low),
                "high": float(high),
                "below_E0": bool(flag),
            }
            if flag:
                row["note"] = (
                    f"L0 = {value:.6g} is at or below E0 = {record['E0']:.6g}: outside the law; the floor E1 is "
                    f"reported"
                )
            rows.append(row)
    record["predictions"] = rows
    if args.predict_compute:
        budgets = np.asarray(args.predict_compute, dtype=float)
        at = fit.predict_at_compute(budgets)
        bounds = fit.interval(compute=budgets)
        record["at_compute"] = [
            {
                "compute": float(c),
                "loss0": float(a),
                "loss1": float(b),
                "loss1_direct": float(d),
                "low": float(lo),
                "high": float(hi),
            }
            for c, a, b, d, (lo, hi) in zip(budgets, at["loss0"], at["loss1"], at["loss1_direct"], bounds)
        ]
    record["x_col"], record["y_col"] = args.x_col, args.y_col
    return record


def _text(results: dict[str, dict[str, Any]]) -> str:
    lines = []
    for group, r in results.items():
        title = f"group {group!r}: " if group else ""
        lines.append(
            f"{title}{r['y_col']} = K*({r['x_col']} - E0)^kappa + E1: K = {r['K']:.4g}, kappa = {r['kappa']:.4g}, "
            f"E0 = {r['E0']:.4g}, E1 = {r['E1']:.4g} ({r['status']}, {r['n_points']} points)"
        )
        for name, law in r.get("compute_laws", {}).items():
            lines.append(
                f"  compute law of {name}: E = {law['E']:.4g}, A = {law['A']:.4g}, a = {law['a']:.4g} ({law['status']})"
            )
        for p in r["predictions"]:
            interval = f"  [{p['low']:.4f}, {p['high']:.4f}]" if math.isfinite(p["low"]) else ""
            flag = "  below E0: floor E1" if p["below_E0"] else ""
            lines.append(f"  {r['x_col']} = {p['x']:.4f} -> {r['y_col']} = {p['prediction']:.4f}{interval}{flag}")
        for p in r.get("at_compute", []):
            interval = f"  [{p['low']:.4f}, {p['high']:.4f}]" if math.isfinite(p["low"]) else ""
            lines.append(
                f"  C = {p['compute']:.3g}: {r['x_col']} {p['loss0']:.4f} -> {r['y_col']} {p['loss1']:.4f}{interval} "
                f"(its own compute law: {p['loss1_direct']:.4f})"
            )
        lines += [f"  warning: {w}" for w in r["warnings"]]
    return "\n".join(lines)
