"""``scaling-callback report DIR``: (re)write a sweep's report from its store."""

from __future__ import annotations

import argparse

from scaling_callback.errors import InputError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dir", help="the sweep's output folder (holds sweep.sqlite)")
    parser.add_argument("--store", default=None, help="SQLAlchemy URL or path of the store (default DIR/sweep.sqlite)")
    parser.add_argument("--sweep", default=None, help="sweep name (default: the store's latest)")
    parser.add_argument("--bootstrap", type=int, default=200, help="bootstrap resamples for the frontier (default 200)")
    parser.add_argument("--n-convention", choices=("total", "non_embedding"), default="total")
    parser.add_argument("--target-flops", type=float, nargs="*", default=None, help="budgets for the recommendation")
    parser.add_argument("--tie-exponents", action="store_true", help="fit the alpha = beta variant")


def run(args: argparse.Namespace) -> int:
    if args.bootstrap < 0:
        raise InputError(f"--bootstrap must be >= 0, got {args.bootstrap}")
    from scaling_callback.report.writer import write_report

    store = args.store
    if store and "://" not in store:
        from pathlib import Path

        store = f"sqlite:///{Path(store).resolve()}"
    summary = write_report(args.dir, store, args.sweep, bootstrap=args.bootstrap, n_convention=args.n_convention,
                           target_flops=args.target_flops, tie_exponents=args.tie_exponents)
    print(f"report written to {args.dir}/report: {summary['runs']} runs, {summary['stopped']} stopped, "
          f"frontier a = {summary['frontier']['a']}")
    return 0
