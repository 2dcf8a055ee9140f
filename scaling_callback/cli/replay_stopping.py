"""``scaling-callback replay-stopping``: replay recorded curves under early-stopping policies and measure them.

    scaling-callback replay-stopping CURVES.csv --run-col run --x-col step --loss-col loss \\
        [--lr-col lr] [--group-col group] [--policy law median asha fixed] [--json]

CURVES.csv is long format, one row per logged point; x is the resource (step, tokens, samples)
and each run's last x is its planned budget. Runs are replayed interleaved, as a sweep on
``--parallel-runs`` slots would run them (see :mod:`scaling_callback.stopping.replay`); each
``--group-col`` value is a separate sweep. With ``--lr-col`` the law policy forecasts with the
multi-power law on each run's rebuilt schedule; without, with a saturating power law in x.
``--json`` prints ``{"policies": {NAME: {"compute_saved", "best_kept", "regret", "stopped": [...]}}}``;
with groups, the top level sums compute over all groups (best_kept: in every group; regret and
relative_regret: the worst group) and ``"groups"`` holds each group's own result.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from scaling_callback.cli.options import add_seed
from scaling_callback.errors import InputError
from scaling_callback.progress import LiveProgress
from scaling_callback.stopping import POLICIES, make_policy
from scaling_callback.stopping.recorded import runs_from_frame
from scaling_callback.stopping.replay import DEFAULT_WORKERS, ReplayResult, replay


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("curves", metavar="CURVES.csv", help="long-format CSV, one row per logged point")
    parser.add_argument("--run-col", required=True, metavar="COL", help="column naming the run")
    parser.add_argument("--x-col", required=True, metavar="COL", help="resource column: step, tokens or samples")
    parser.add_argument("--loss-col", required=True, metavar="COL", help="loss column")
    parser.add_argument("--lr-col", metavar="COL", help="learning-rate column (enables the multi-power law)")
    parser.add_argument("--group-col", metavar="COL", help="replay each value of this column as a separate sweep")
    parser.add_argument("--policy", nargs="+", choices=POLICIES, default=list(POLICIES), metavar="NAME",
                        help=f"policies to replay (default: all of {', '.join(POLICIES)})")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--compute-col", metavar="COL", help="cumulative compute (e.g. FLOPs), for --objective frontier")
    parser.add_argument("--objective", choices=("final", "frontier"), default="final",
                        help="law policy: compare final losses, or losses at equal planned compute")
    parser.add_argument("--threshold", type=float, default=0.05, help="law policy: stop when P(beats best) < this")
    parser.add_argument("--parallel-runs", type=int, default=DEFAULT_WORKERS, metavar="K",
                        help="runs the replayed sweep trains at once (slots, not processes)")
    add_seed(parser, "start runs in the order of this random permutation (default: order of first appearance)",
             default=None)
    parser.add_argument("--warmup-steps", type=int, metavar="W", help="linear LR warmup length, when the logs start after it")


def run(args: argparse.Namespace) -> int:
    if args.parallel_runs < 1:
        raise InputError(f"--parallel-runs must be >= 1, got {args.parallel_runs}")
    if not 0 < args.threshold < 1:
        raise InputError(f"--threshold must be in (0, 1), got {args.threshold}")
    frame = _read(Path(args.curves))
    groups = _groups(frame, args.group_col)
    results: dict[str, dict[str, ReplayResult]] = {}
    policies = list(dict.fromkeys(args.policy))
    live = LiveProgress("replay-stopping", len(groups) * len(policies), "replays", sys.stderr)
    for group, part in groups.items():
        runs = runs_from_frame(part, args.run_col, args.x_col, args.loss_col, args.lr_col, args.compute_col, args.warmup_steps)
        order = None
        if args.seed is not None:
            order = list(np.random.default_rng(args.seed).permutation([r.name for r in runs]))
        results[group] = {}
        for name in policies:
            live.update(sum(map(len, results.values())), f"{(group + ': ') if group else ''}{name} ({len(runs)} runs)",
                        force=True)
            policy = make_policy(name, objective=args.objective, threshold=args.threshold)
            results[group][name] = outcome = replay(runs, policy, args.parallel_runs, order)
            live.write(f"{(group + ': ') if group else ''}{name}: {len(outcome.stopped)} of {len(runs)} runs stopped, "
                       f"compute saved {outcome.compute_saved:.1%}, best final {outcome.best_final:.4g}")
    live.update(live.total, "done", force=True)
    live.close()
    record = _record(results, grouped=args.group_col is not None)
    print(json.dumps(_finite(record), allow_nan=False) if args.json else _table(results))
    return 0


def _read(path: Path) -> pd.DataFrame:
    try:
        return pd.read_csv(path)
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, IsADirectoryError) as error:
        raise InputError(f"{path}: not a readable CSV ({type(error).__name__})") from None


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
        "compute_saved": result.compute_saved, "best_kept": result.best_kept, "regret": result.regret,
        "relative_regret": result.relative_regret, "stopped": stopped, "best_run": result.best_run,
        "best_final": result.best_final, "spent": result.spent, "total": result.total, "seconds": result.seconds,
    }


def _record(results: dict[str, dict[str, ReplayResult]], grouped: bool) -> dict[str, Any]:
    if not grouped:
        return {"policies": {name: _summary(r) for name, r in results[""].items()}}
    policies = {}
    for name in next(iter(results.values())):
        parts = [(group, by_policy[name]) for group, by_policy in results.items()]
        spent, total = sum(r.spent for _, r in parts), sum(r.total for _, r in parts)
        policies[name] = {
            "compute_saved": 1.0 - spent / total, "best_kept": all(r.best_kept for _, r in parts),
            "regret": max(r.regret for _, r in parts), "relative_regret": max(r.relative_regret for _, r in parts),
            "stopped": [s for group, r in parts for s in _summary(r, group)["stopped"]],
            "spent": spent, "total": total, "seconds": sum(r.seconds for _, r in parts),
        }
    groups = {group: {"policies": {name: _summary(r) for name, r in by_policy.items()}} for group, by_policy in results.items()}
    return {"policies": policies, "groups": groups}


def _table(results: dict[str, dict[str, ReplayResult]]) -> str:
    lines = []
    for group, by_policy in results.items():
        first = next(iter(by_policy.values()))
        title = f"sweep {group!r}: " if group else ""
        lines.append(f"{title}best run {first.best_run} (final {first.best_final:.5g}), total x {first.total:.6g}")
        lines.append(f"{'policy':<8}{'saved':>8}{'best kept':>11}{'regret':>11}{'rel.':>9}{'stopped':>9}{'seconds':>9}")
        for name, r in by_policy.items():
            lines.append(f"{name:<8}{r.compute_saved:>8.1%}{str(r.best_kept):>11}{r.regret:>11.4g}{r.relative_regret:>9.2%}"
                         f"{len(r.stopped):>9}{r.seconds:>9.1f}")
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
