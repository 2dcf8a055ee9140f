"""``scaling-callback fit-downstream``: a downstream metric predicted at a target compute, FLP-style (Chen et al. 2024).

    scaling-callback fit-downstream POINTS.csv --compute-col C --loss-col L --metric-col M [M ...]
        [--target-flops C ...] [--chance P] [--link auto|sigmoid|bnsl] [--group-col G] [--run-col RUN]
        [--bootstrap K] [--seed S] [--level P] [--json]

One row per model (or checkpoint): its training compute, its (pre-training or validation) loss and
one column per downstream metric. Stage 1 fits compute → loss, stage 2 loss → metric
(:mod:`scaling_callback.fitting.downstream`); the interval is predictive (it should hold one
trained and evaluated model at the target). ``--group-col`` (e.g. a task column of a long file)
fits each value separately; ``--run-col`` makes the bootstrap resample whole runs.
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
from scaling_callback.fitting.downstream import LINKS, ComputeLossStage, DownstreamLaw
from scaling_callback.io.readers import read_csv_frame


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("points", metavar="POINTS.csv", help="CSV, one row per model or checkpoint")
    parser.add_argument("--compute-col", required=True, metavar="COL", help="training compute (FLOPs)")
    parser.add_argument("--loss-col", required=True, metavar="COL", help="loss (pre-training or validation)")
    parser.add_argument("--metric-col", required=True, nargs="+", metavar="COL", help="downstream metric column(s)")
    parser.add_argument(
        "--target-flops",
        type=float,
        nargs="+",
        metavar="C",
        help="budgets to predict at (default: the largest in the data)",
    )
    parser.add_argument(
        "--chance", type=float, metavar="P", help="the metric's chance level (fixes the sigmoid's floor)"
    )
    parser.add_argument("--link", choices=LINKS, default="auto", help="loss -> metric link (default auto)")
    parser.add_argument("--group-col", metavar="COL", help="fit each value of this column separately")
    parser.add_argument("--run-col", metavar="COL", help="bootstrap whole runs (rows are checkpoints)")
    add_interval_options(parser, 200, "bootstrap resamples (default 200; 0: no interval)")


def run(args: argparse.Namespace) -> int:
    check_interval_options(args)
    if args.target_flops and any(not (math.isfinite(c) and c > 0) for c in args.target_flops):
        raise InputError(f"--target-flops must be positive, got {args.target_flops}")
    frame = read_csv_frame(Path(args.points))
    columns = [args.compute_col, args.loss_col, *args.metric_col, args.group_col, args.run_col]
    missing = [c for c in columns if c is not None and c not in frame.columns]
    if missing:
        raise InputError(
            f"{args.points}: no column(s) {', '.join(map(repr, missing))}; it has {', '.join(map(str, frame.columns))}"
        )
    groups = (
        {"": frame}
        if args.group_col is None
        else {
            str(g): frame[frame[args.group_col].astype(str) == str(g)]
            for g in pd.unique(frame[args.group_col].astype(str))
        }
    )
    results = {
        group: _fit_group(part, args, args.points + (f" group {group!r}" if group else ""))
        for group, part in groups.items()
    }
    record: dict[str, Any] = results[""] if args.group_col is None else {"groups": results}
    print(dumps(record) if args.json else _text(results))
    return 0


def _column(part: pd.DataFrame, column: str, where: str, positive: bool) -> np.ndarray:
    values = pd.to_numeric(part[column], errors="coerce").to_numpy(dtype=float)
    bad = ~np.isfinite(values) | ((values <= 0) if positive else False)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        need = "positive numbers" if positive else "numbers"
        raise InputError(
            f"{where}: column {column!r} must hold {need}; row {int(part.index[row]) + 2} has "
            f"{part[column].iloc[row]!r}"
        )
    return values


def _fit_group(part: pd.DataFrame, args: argparse.Namespace, where: str) -> dict[str, Any]:
    compute = _column(part, args.compute_col, where, positive=True)
    loss = _column(part, args.loss_col, where, positive=True)
    runs = part[args.run_col].astype(str).to_numpy() if args.run_col else None
    stage1 = ComputeLossStage(n_bootstrap=args.bootstrap, random_state=args.seed).fit(compute, loss, runs)
    targets = np.asarray(args.target_flops or [float(compute.max())], dtype=float)
    loss_at = stage1.law_.predict(targets)
    record: dict[str, Any] = {
        "compute_law": {
            "E": stage1.law_.E_,
            "A": stage1.law_.A_,
            "a": stage1.law_.alpha_,
            "status": stage1.law_.status_,
        },
        "targets": [{"compute": float(c), "loss": float(v)} for c, v in zip(targets, loss_at)],
        "metrics": {},
    }
    for metric in args.metric_col:
        values = _column(part, metric, where, positive=False)
        law = DownstreamLaw(link=args.link, chance=args.chance, level=args.level).fit(
            compute, loss, values, runs, stage1=stage1
        )
        bounds = law.interval(targets)
        entry = law.to_dict()
        entry["predictions"] = [
            {"compute": float(c), "loss": float(v), "metric": float(p), "low": float(lo), "high": float(hi)}
            for c, v, p, (lo, hi) in zip(targets, loss_at, law.predict(targets), bounds)
        ]
        record["metrics"][metric] = entry
    record["choices"] = {
        "targets": "given by --target-flops" if args.target_flops else "largest compute in the data",
        "bootstrap": args.bootstrap,
        "bootstrap_unit": "runs" if runs is not None else "rows",
        "seed": args.seed,
    }
    return record


def _text(results: dict[str, dict[str, Any]]) -> str:
    lines = []
    for group, r in results.items():
        law = r["compute_law"]
        lines.append(
            f"{'group ' + repr(group) + ': ' if group else ''}loss = {law['E']:.4g} + "
            f"{law['A']:.4g}*C^-{law['a']:.4g} ({law['status']})"
        )
        for name, m in r["metrics"].items():
            params = ", ".join(f"{k} = {v:.4g}" for k, v in m["params"].items() if v is not None)
            lines.append(f"  {name}: {m['link']} link ({params}), residual sd {m['residual_sd']:.3g}")
            for p in m["predictions"]:
                interval = f"  [{p['low']:.4f}, {p['high']:.4f}]" if math.isfinite(p["low"]) else ""
                lines.append(f"    C = {p['compute']:.3g}: loss {p['loss']:.4f} -> {name} {p['metric']:.4f}{interval}")
            lines += [f"    warning: {w}" for w in m["warnings"]]
    return "\n".join(lines)
