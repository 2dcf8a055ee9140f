"""``scaling-callback replay-stopping``: replay recorded curves under early-stopping policies and measure them.

    scaling-callback replay-stopping PATH [--from csv|lightning-csv|tensorboard|wandb|store]
        [--run-col COL] [--x-col COL] [--loss-col COL] [--lr-col COL|none] [--group-col COL]
        [--policy law median asha fixed] [--json]

PATH holds the runs in the ``--from`` format (default: a long-format CSV, one row per logged point;
see :mod:`scaling_callback.io` for the others and the detected column names); x is the resource
(step, tokens, samples; default step) and each run's last x is its planned budget. Runs are replayed interleaved, as a sweep on
``--parallel-runs`` slots would run them (see :mod:`scaling_callback.stopping.replay`); each
``--group-col`` value is a separate sweep. With an LR (``--lr-col``, or a detected one) the law
policy forecasts with the multi-power law on each run's rebuilt schedule; with ``--lr-col none``,
with a saturating power law in x.
``--json`` prints ``{"policies": {NAME: {"compute_saved", "best_kept", "regret", "stopped": [...]}}}``;
with groups, the top level sums compute over all groups (best_kept: in every group; regret and
relative_regret: the worst group) and ``"groups"`` holds each group's own result.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from typing import Any

import numpy as np
import pandas as pd

from scaling_callback.cli.curve_source import add_source_arguments
from scaling_callback.cli.options import add_seed
from scaling_callback.errors import InputError
from scaling_callback.io import ColumnMap, column_of, read_runs
from scaling_callback.progress import LiveProgress
from scaling_callback.stopping import POLICIES, make_policy
from scaling_callback.stopping.law_policy import OBJECTIVES
from scaling_callback.stopping.recorded import runs_from_frame
from scaling_callback.stopping.replay import DEFAULT_WORKERS, ReplayResult, replay


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("curves", metavar="PATH", help="the recorded runs, in the --from format")
    parser.add_argument(
        "--x-col", metavar="COL", help="resource column: step (default), tokens, samples, or a column of the file"
    )
    parser.add_argument("--group-col", metavar="COL", help="replay each value of this column as a separate sweep")
    add_source_arguments(parser, ("run", "step", "loss", "lr", "tokens", "samples"))
    parser.add_argument(
        "--compute-col", metavar="COL", help="cumulative compute (e.g. flops, FLOPs), for --objective frontier"
    )
    parser.add_argument(
        "--policy",
        nargs="+",
        choices=POLICIES,
        default=list(POLICIES),
        metavar="NAME",
        help=f"policies to replay (default: all of {', '.join(POLICIES)})",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--objective",
        choices=OBJECTIVES,
        default="final",
        help="law policy: compare final losses; losses at equal planned compute (frontier); or only runs of the "
        "same size (compute per x, from --compute-col) and planned budget (same_size_and_budget)",
    )
    parser.add_argument("--threshold", type=float, default=0.05, help="law policy: stop when P(beats best) < this")
    parser.add_argument(
        "--parallel-runs",
        type=int,
        default=DEFAULT_WORKERS,
        metavar="K",
        help="runs the replayed sweep trains at once (slots, not processes)",
    )
    add_seed(
        parser, "start runs in the order of this random permutation (default: order of first appearance)", default=None
    )
    parser.add_argument(
        "--warmup-steps", type=int, metavar="W", help="linear LR warmup length, when the logs start after it"
    )


def run(args: argparse.Namespace) -> int:
    if args.parallel_runs < 1:
        raise InputError(f"--parallel-runs must be >= 1, got {args.parallel_runs}")
    if not 0 < args.threshold < 1:
        raise InputError(f"--threshold must be in (0, 1), got {args.threshold}")
    frame, x_col, lr_col, compute_col = _read(args)
    groups = _groups(frame, args.group_col)
    results: dict[str, dict[str, ReplayResult]] = {}
    policies = list(dict.fromkeys(args.policy))
    live = LiveProgress("replay-stopping", len(groups) * len(policies), "replays", sys.stderr)
    for group, part in groups.items():
        runs = runs_from_frame(part, "run", x_col, "loss", lr_col, compute_col, args.warmup_steps)
        order = None
        if args.seed is not None:
            order = list(np.random.default_rng(args.seed).permutation([r.name for r in runs]))
        results[group] = {}
        for name in policies:
            live.update(
                sum(map(len, results.values())),
                f"{(group + ': ') if group else ''}{name} ({len(runs)} runs)",
                force=True,
            )
            policy = make_policy(name, objective=args.objective, threshold=args.threshold)
            results[group][name] = outcome = replay(runs, policy, args.parallel_runs, order)
            live.write(
                f"{(group + ': ') if group else ''}{name}: {len(outcome.stopped)} of {len(runs)} runs stopped, "
                f"compute saved {outcome.compute_saved:.1%}, best final {outcome.best_final:.4g}"
            )
    live.update(live.total, "done", force=True)
    live.close()
    record = _record(results, grouped=args.group_col is not None)
    print(json.dumps(_finite(record), allow_nan=False) if args.json else _table(results))
    return 0


def _read(args: argparse.Namespace) -> tuple[pd.DataFrame, str, str | None, str | None]:
    """The runs' rows with a finite loss, and the frame's x, LR and compute columns."""
    no_lr = args.lr_col is not None and args.lr_col.lower() == "none"
    columns = ColumnMap.from_args(args)
    columns = ColumnMap(**{**columns.__dict__, "lr": None if no_lr else columns.lr, "flops": args.compute_col})
    frame = read_runs(args.curves, args.source, columns)
    where = str(args.curves)
    x_col = column_of(frame, args.x_col or "step", where)
    compute_col = column_of(frame, args.compute_col, where) if args.compute_col else None
    lr_col = None if no_lr or not np.isfinite(frame["lr"].to_numpy(dtype=float)).any() else "lr"
    if args.lr_col and not no_lr and lr_col is None:
        raise InputError(f"{where}: no LR values in column {args.lr_col!r}")
    frame = frame[np.isfinite(frame["loss"].to_numpy(dtype=float))]
    return frame.reset_index(drop=True), x_col, lr_col, compute_col


def _groups(frame: pd.DataFrame, group_col: str | None) -> dict[str, pd.DataFrame]:
    if group_col is None:
        return {"": frame}
    if group_col not in frame.columns:
        raise InputError(f"missing column {group_col!r}; the file has {', '.join(map(str, frame.columns))}")
    labels = frame[group_col].astype(str)
    return {str(g): frame[labels == g] for g in pd.unique(labels)}


def _summary(result: ReplayResult, group: str | None = None) -> dict[str, Any]:
    stopped = [{"run": s["run"], "x": s["x"]} | ({"group": group} if group is not None else {}) for s in result.stopped]
    return {
        "compute_saved": result.compute_saved,
        "best_kept": result.best_kept,
        "regret": result.regret,
        "relative_regret": result.relative_regret,
        "stopped": stopped,
        "best_run": result.best_run,
        "best_final": result.best_final,
        "spent": result.spent,
        "total": result.total,
        "seconds": result.seconds,
    }


def _record(results: dict[str, dict[str, ReplayResult]], grouped: bool) -> dict[str, Any]:
    if not grouped:
        return {"policies": {name: _summary(r) for name, r in results[""].items()}}
    policies = {}
    for name in next(iter(results.values())):
        parts = [(group, by_policy[name]) for group, by_policy in results.items()]
        spent, total = sum(r.spent for _, r in parts), sum(r.total for _, r in parts)
        policies[name] = {
            "compute_saved": 1.0 - spent / total,
            "best_kept": all(r.best_kept for _, r in parts),
            "regret": max(r.regret for _, r in parts),
            "relative_regret": max(r.relative_regret for _, r in parts),
            "stopped": [s for group, r in parts for s in _summary(r, group)["stopped"]],
            "spent": spent,
            "total": total,
            "seconds": sum(r.seconds for _, r in parts),
        }
    groups = {
        group: {"policies": {name: _summary(r) for name, r in by_policy.items()}}
        for group, by_policy in results.items()
    }
    return {"policies": policies, "groups": groups}


def _table(results: dict[str, dict[str, ReplayResult]]) -> str:
    lines = []
    for group, by_policy in results.items():
        first = next(iter(by_policy.values()))
        title = f"sweep {group!r}: " if group else ""
        lines.append(f"{title}best run {first.best_run} (final {first.best_final:.5g}), total x {first.total:.6g}")
        lines.append(f"{'policy':<8}{'saved':>8}{'best kept':>11}{'regret':>11}{'rel.':>9}{'stopped':>9}{'seconds':>9}")
        for name, r in by_policy.items():
            lines.append(
                f"{name:<8}{r.compute_saved:>8.1%}{r.best_kept!s:>11}{r.regret:>11.4g}{r.relative_regret:>9.2%}"
                f"{len(r.stopped):>9}{r.seconds:>9.1f}"
            )
        for name, r in by_policy.items():
            if r.stopped:
                lines.append(f"  {name} stopped: " + ", ".join(f"{s['run']}@{s['x']:g}" for s in r.stopped))
        lines.append("")
    return "\n".join(lines).rstrip()


def _finite(value: Any) -> Any:
    """JSON-safe: NaN and infinities become None."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    if isinstance(value, (np.floating, np.integer, np.bool_)):
        return _finite(value.item())
    return value
