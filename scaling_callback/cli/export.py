"""``scaling-callback export``: a store's runs in the long format, as CSV or Parquet.

    scaling-callback export STORE (--run NAME | --sweep NAME | --all) [--format csv|parquet] [--output FILE]

Columns: ``run, step, loss, lr, lr_sum, tokens, flops, samples``, then each evaluation metric the
callback stored (NaN on steps without one) and the run's ``sweep, status, n_params,
n_params_nonembedding``. Without ``--output`` the CSV goes to stdout. The file is written whole or
not at all.
"""

from __future__ import annotations

import argparse

from scaling_callback.io import read_runs, write_long
from scaling_callback.io.export import FORMATS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("store", metavar="STORE", help="SQLite file or SQLAlchemy URL of a sweep store")
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--run", metavar="NAME", help="export one run")
    which.add_argument("--sweep", metavar="NAME", help="export every run of one sweep")
    which.add_argument("--all", action="store_true", help="export every run of the store")
    parser.add_argument("--format", choices=FORMATS, default="csv", help="file format (default csv)")
    parser.add_argument("--output", "-o", metavar="FILE", help="file to write (default: CSV to stdout)")


def run(args: argparse.Namespace) -> int:
    frame = read_runs(args.store, "store", run=args.run, sweep=args.sweep)
    write_long(frame, args.output, args.format)
    return 0
