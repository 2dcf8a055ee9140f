"""``scaling-callback fit-compute``: Chinchilla approach 3 on a CSV of runs, frontier and bootstrap intervals.

    scaling-callback fit-compute POINTS.csv --params-col N (--tokens-col D | --flops-col C) --loss-col L
        [--loss-sd-col SD] [--bootstrap K] [--seed S] [--target-flops C ...] [--json]
        [--run-col RUN] [--tie-exponents] [--fixed-E VALUE] [--compare] ...
    scaling-callback fit-compute --from-curves CURVES.csv --run-col RUN --params-col N --tokens-col D
        --lr-col LR --loss-col LOSS [--warmup-steps W] [--decay wsd|cosine] [--target-tokens D ...] ...

With ``--flops-col`` only, D = C/(6·N). ``--json`` prints one object with E, A, B, alpha, beta, a, b,
fit_seconds, converged, warnings, ci, se, frontier, choices and n_points. ``--from-curves`` reads one
run per model size in the long format (one row per logged point) and fits the points that forecasts
of fully decayed runs give (:mod:`scaling_callback.fitting.decayed_finals`); the JSON adds ``points``
(run, n, d, loss, loss_sd, source) and ``design`` (the compute the runs used against the equivalent grid).
"""

from __future__ import annotations

import argparse
import json
import math

import numpy as np
import pandas as pd

from scaling_callback.cli.options import add_n_convention, add_seed, add_workers
from scaling_callback.errors import InputError
from scaling_callback.fitting.bootstrap import bootstrap_compute_optimal, frontier_column
from scaling_callback.fitting.compute_optimal import ComputeOptimalLaw
from scaling_callback.fitting.decayed_finals import DEFAULT_DECAY_FRACTION, TARGET_KINDS, DecayedFinals, DecayTarget
from scaling_callback.fitting.isoflop import EnvelopeFit, IsoFlopFit


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of the fit-compute subcommand."""
    parser.add_argument(
        "points", metavar="POINTS.csv", nargs="?", help="CSV with one row per (run or checkpoint) point"
    )
    parser.add_argument(
        "--from-curves",
        metavar="CURVES.csv",
        help="instead of points: one WSD or constant-LR run per model size, one row per logged point; each run "
        "gives forecast finals of fully decayed runs at several D",
    )
    parser.add_argument("--params-col", required=True, metavar="COL", help="column of parameter counts N")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--tokens-col", metavar="COL", help="column of training tokens (or samples) D")
    source.add_argument("--flops-col", metavar="COL", help="column of training FLOPs C; D is derived as C/(6N)")
    parser.add_argument("--loss-col", required=True, metavar="COL", help="column of final losses")
    parser.add_argument(
        "--loss-sd-col", metavar="COL", help="column of each final's standard error: points count by their precision"
    )
    parser.add_argument("--run-col", metavar="COL", help="column of run ids: the bootstrap resamples whole runs")
    parser.add_argument("--bootstrap", type=int, default=0, metavar="K", help="number of bootstrap resamples (0: none)")
    add_seed(parser, "bootstrap seed")
    parser.add_argument("--level", type=float, default=0.95, help="interval level")
    add_workers(parser, "bootstrap worker processes (default: measured, only when it pays)")
    parser.add_argument(
        "--target-flops",
        type=float,
        nargs="+",
        metavar="C",
        help="budgets for the frontier (default: the largest in the data)",
    )
    parser.add_argument("--tie-exponents", action="store_true", help="fit the alpha = beta variant")
    parser.add_argument("--fixed-E", type=float, metavar="VALUE", help="fix the irreducible loss E")
    parser.add_argument("--delta", type=float, default=1e-3, help="Huber delta")
    parser.add_argument("--starts", type=int, default=8, metavar="K", help="grid starts optimised after cheap scoring")
    add_n_convention(parser)
    parser.add_argument(
        "--compare", action="store_true", help="also report approach 2 (IsoFLOP) and, with --run-col, approach 1"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    curves = parser.add_argument_group("--from-curves")
    curves.add_argument("--lr-col", metavar="COL", help="column of the LR at each logged point (default: detected)")
    curves.add_argument("--step-col", metavar="COL", help="column of the optimizer step (default: detected)")
    curves.add_argument(
        "--warmup-steps",
        type=int,
        metavar="W",
        help="linear warmup length (default: each run's first step at its peak LR)",
    )
    curves.add_argument(
        "--decay", choices=TARGET_KINDS, default="wsd", help="the fully decayed run each forecast point stands for"
    )
    curves.add_argument(
        "--decay-fraction",
        type=float,
        default=DEFAULT_DECAY_FRACTION,
        metavar="F",
        help="wsd: linear decay over the last F of the post-warmup steps",
    )
    curves.add_argument(
        "--target-tokens",
        type=float,
        nargs="+",
        metavar="D",
        help="budgets to forecast every run at (past a run's end: extrapolated); default: 7 log-spaced over 8x "
        "below the longest run, each run up to its end",
    )


def run(args: argparse.Namespace) -> int:
    """Read the points (or forecast them from curves), fit, optionally bootstrap and compare, print the result."""
    if args.bootstrap < 0:
        raise InputError(f"--bootstrap must be 0 or more, got {args.bootstrap}")
    if args.target_flops and any(not (math.isfinite(c) and c > 0) for c in args.target_flops):
        raise InputError(f"--target-flops must be positive, got {args.target_flops}")
    if (args.points is None) == (args.from_curves is None):
        raise InputError("give either POINTS.csv or --from-curves CURVES.csv")
    design = None
    if args.from_curves:
        values, runs, design = _points_from_curves(args)
    else:
        values, runs = _points_from_file(args)

    law = ComputeOptimalLaw(
        delta=args.delta,
        tie_exponents=args.tie_exponents,
        fixed_E=args.fixed_E,
        n_best_starts=args.starts,
        n_convention=args.n_convention,
    )
    law.fit(
        values["params"], values.get("tokens"), values["loss"], flops=values.get("flops"), loss_sd=values.get("loss_sd")
    )
    targets = args.target_flops or [law.max_flops_]
    result = law.to_dict(targets)
    result["choices"]["frontier_budgets"] = (
        "given by --target-flops" if args.target_flops else "largest budget in the data"
    )
    result["ci"], result["se"] = {}, {}
    if args.bootstrap:
        boot = bootstrap_compute_optimal(
            law,
            groups=runs,
            n_resamples=args.bootstrap,
            seed=args.seed,
            target_flops=targets,
            level=args.level,
            n_jobs=args.workers,
        )
        _attach_bootstrap(result, boot.to_dict(), targets)
    if args.compare:
        result["approaches"] = _compare(law, values, runs)
    if design is not None:
        result["points"], result["design"] = design.pop("points"), design
    print(json.dumps(result, indent=2) if args.json else _text(result))
    return 0


def _points_from_file(args: argparse.Namespace) -> tuple[dict, np.ndarray | None]:
    frame = _read(args.points)
    columns = {
        "params": args.params_col,
        "tokens": args.tokens_col,
        "flops": args.flops_col,
        "loss": args.loss_col,
        "loss_sd": args.loss_sd_col,
    }
    try:
        if frame.empty:
            raise InputError("no rows")
        values = {role: _positive_column(frame, column) for role, column in columns.items() if column}
        runs = _run_labels(frame, args.run_col) if args.run_col else None
    except InputError as error:
        raise InputError(f"{args.points}: {error}") from None
    return values, runs


def _points_from_curves(args: argparse.Namespace) -> tuple[dict, np.ndarray, dict]:
    """Forecast points of fully decayed runs from one run per size (``--from-curves``), with the design's compute."""
    from scaling_callback.io import ColumnMap, read_runs, size_runs_from_frame

    if args.flops_col or args.loss_sd_col:
        raise InputError("--from-curves reads tokens (--tokens-col) and forecasts each point's SD itself")
    if args.warmup_steps is not None and args.warmup_steps < 0:
        raise InputError(f"--warmup-steps must be >= 0, got {args.warmup_steps}")
    if args.target_tokens and any(not (math.isfinite(d) and d > 0) for d in args.target_tokens):
        raise InputError(f"--target-tokens must be positive, got {args.target_tokens}")
    columns = ColumnMap(
        run=args.run_col, step=args.step_col, loss=args.loss_col, lr=args.lr_col, tokens=args.tokens_col
    )
    frame = read_runs(args.from_curves, "csv", columns)
    size_runs = size_runs_from_frame(frame, args.params_col, args.warmup_steps, args.from_curves)
    target = DecayTarget(args.decay, args.decay_fraction)
    finals = DecayedFinals(target).fit(size_runs, args.target_tokens)
    points = finals.frame()
    if len(points) < 5:
        raise InputError(f"{args.from_curves}: {len(points)} forecast points cannot determine 5 parameters")
    values = {
        "params": points["n"].to_numpy(dtype=float),
        "tokens": points["d"].to_numpy(dtype=float),
        "loss": points["loss"].to_numpy(dtype=float),
        "loss_sd": points["loss_sd"].to_numpy(dtype=float),
    }
    design = {
        "points": points.to_dict("records"),
        "compute_used": finals.compute_used_,
        "compute_equivalent_grid": finals.compute_grid_,
        "compute_ratio": finals.compute_used_ / finals.compute_grid_ if finals.compute_grid_ else None,
        "failures": finals.failures_,
        "choices": finals.choices_,
    }
    return values, points["run"].astype(str).to_numpy(), design


def _read(path: str) -> pd.DataFrame:
    from scaling_callback.files import check_table_file

    check_table_file(path)
    try:
        return pd.read_csv(path)
    except FileNotFoundError:
        raise InputError(f"no such file: {path}") from None
    except (OSError, ValueError, pd.errors.ParserError) as error:
        raise InputError(f"cannot read {path}: {(str(error).splitlines() or [type(error).__name__])[0]}") from None


def _positive_column(frame: pd.DataFrame, column: str) -> np.ndarray:
    if column not in frame.columns:
        raise InputError(f"column {column!r} not found; columns are {list(frame.columns)}")
    numeric = pd.to_numeric(frame[column], errors="coerce")
    bad = numeric.isna() | ~np.isfinite(numeric) | (numeric <= 0)
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        value = frame[column].iloc[row]
        value = value.item() if hasattr(value, "item") else value
        raise InputError(f"column {column!r} must hold positive numbers; row {row + 1} has {value!r}")
    return numeric.to_numpy(dtype=float)


def _run_labels(frame: pd.DataFrame, column: str) -> np.ndarray:
    if column not in frame.columns:
        raise InputError(f"column {column!r} not found; columns are {list(frame.columns)}")
    if frame[column].isna().any():
        raise InputError(f"column {column!r} has empty run ids")
    return frame[column].astype(str).to_numpy()


def _attach_bootstrap(result: dict, boot: dict, targets: list[float]) -> None:
    result["ci"] = {k: v for k, v in boot["ci"].items() if "@" not in k}
    result["se"] = {k: v for k, v in boot["se"].items() if "@" not in k}
    for row, flops in zip(result["frontier"], targets):
        for quantity in ("n_opt", "d_opt", "loss"):
            row[f"{quantity}_ci"] = boot["ci"].get(frontier_column(quantity, flops))
    result["warnings"] += boot["warnings"]
    result["bootstrap"] = {k: boot[k] for k in ("level", "n_failed", "n_not_converged", "seconds")}
    result["choices"]["bootstrap"] = boot["choices"]


def _compare(law: ComputeOptimalLaw, values: dict, runs: np.ndarray | None) -> list[dict]:
    n = values["params"]
    flops = values.get("flops")
    if flops is None:
        flops = law.flops_per_param_token_ * n * values["tokens"]
    k = law.flops_per_param_token_
    rows = [{"approach": "approach 3 (parametric L(N, D))", "a": law.a_, "b": law.b_, "status": law.status_}]
    rows.append(IsoFlopFit(flops_per_param_token=k).fit(n, flops, values["loss"]).to_dict())
    if runs is not None and len(np.unique(runs)) < len(runs):
        rows.append(EnvelopeFit(flops_per_param_token=k).fit(n, flops, values["loss"], runs).to_dict())
    else:
        reason = "one point per run" if runs is not None else "no --run-col"
        rows.append(
            {"approach": EnvelopeFit.approach, "a": None, "status": f"not applicable: {reason} (needs training curves)"}
        )
    return rows


def _text(result: dict) -> str:
    def interval(name: str) -> str:
        ci = result["ci"].get(name)
        return f"  [{ci[0]:.4g}, {ci[1]:.4g}]" if ci else ""

    lines = [
        f"compute-optimal fit ({result['choices']['variant']}), {result['n_points']} points, "
        f"{result['status']} in {result['fit_seconds']:.2f} s"
    ]
    for name in ("E", "A", "B", "alpha", "beta", "a", "b"):
        value = result[name]
        lines.append(f"  {name:<6}{value:.4g}{interval(name)}" if value is not None else f"  {name:<6}n/a")
    lines.append(f"  FLOPs: {result['choices']['flop_convention']}; N: {result['choices']['n_convention']}")
    for row in result["frontier"]:
        if row["n_opt"] is not None:
            lines.append(
                f"  C = {row['flops']:.3g}: N_opt = {row['n_opt']:.3g}, D_opt = {row['d_opt']:.3g}, "
                f"{row['tokens_per_param']:.3g} tokens/param, loss {row['loss']:.4g}"
            )
    for row in result.get("approaches", []):
        a = row.get("a")
        lines.append(f"  {row['approach']}: a = {a:.3f}" if a is not None else f"  {row['approach']}: {row['status']}")
    design = result.get("design")
    if design:
        runs = {point["run"] for point in result["points"]}
        lines.append(
            f"  {len(result['points'])} forecast points ({design['choices']['target']}) from {len(runs)} runs; the runs "
            f"used {design['compute_ratio']:.0%} of the compute of the equivalent grid of fully decayed runs"
        )
    lines += [f"warning: {text}" for text in result["warnings"]]
    return "\n".join(lines)
