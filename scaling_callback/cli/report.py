"""``scaling-callback report DIR``: (re)write a sweep's report from its store."""

from __future__ import annotations

import argparse
import sys

from scaling_callback.cli.options import add_n_convention, add_seed, describe_frontier
from scaling_callback.errors import InputError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dir", help="the sweep's output folder (holds sweep.sqlite)")
    parser.add_argument("--store", default=None, help="SQLAlchemy URL or path of the store (default: DIR/sweep.sqlite)")
    parser.add_argument("--sweep", default=None, help="sweep name (default: the store's latest)")
    parser.add_argument(
        "--bootstrap", type=int, default=200, metavar="K", help="bootstrap resamples for the frontier (0: none)"
    )
    add_seed(parser, "bootstrap seed")
    add_n_convention(parser)
    parser.add_argument(
        "--target-flops",
        type=float,
        nargs="+",
        default=None,
        metavar="C",
        help="budgets for the recommendation (default: 10x the largest run's compute)",
    )
    parser.add_argument("--tie-exponents", action="store_true", help="fit the alpha = beta variant")


def run(args: argparse.Namespace) -> int:
    if args.bootstrap < 0:
        raise InputError(f"--bootstrap must be >= 0, got {args.bootstrap}")
    from pathlib import Path

    from scaling_callback.progress import ReportProgress
    from scaling_callback.report.writer import write_report

    if not Path(args.dir).is_dir():
        raise InputError(f"{args.dir}: no such folder")
    store = args.store
    if store and "://" not in store:
        store = f"sqlite:///{Path(store).absolute()}"
    with ReportProgress(sys.stderr) as progress:
        summary = write_report(
            args.dir,
            store,
            args.sweep,
            bootstrap=args.bootstrap,
            n_convention=args.n_convention,
            target_flops=args.target_flops,
            tie_exponents=args.tie_exponents,
            seed=args.seed,
            progress=progress.update,
        )
    print(
        f"report written to {Path(args.dir) / 'report'}: {summary['runs']} runs, {summary['stopped']} stopped, "
        f"compute saved {summary['compute_saved']:.1%}, {describe_frontier(summary)}"
    )
    return 0
