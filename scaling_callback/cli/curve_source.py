"""The curve-reading flags every CLI that reads logged curves shares: ``--from`` and the ``--*-col`` names.

A path may end in ``#RUN`` to take one run of a file, directory or store that holds several.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from scaling_callback.io import SOURCES, ColumnMap, read_runs

ROLE_HELP = {
    "run": "run names (long CSV, W&B history)",
    "step": "optimizer step",
    "loss": "loss to fit",
    "lr": "learning rate (else lr-<Optimizer>, scaling/lr, or derived from scaling/lr_sum)",
    "lr_sum": "cumulative LR sum",
    "tokens": "cumulative tokens",
    "flops": "cumulative FLOPs",
    "samples": "cumulative samples",
}


def add_source_arguments(parser: argparse.ArgumentParser, roles: tuple[str, ...] = tuple(ROLE_HELP)) -> None:
    """``--from`` and one ``--<role>-col`` flag per role (default: detected from common names)."""
    parser.add_argument(
        "--from",
        dest="source",
        choices=SOURCES,
        default="csv",
        help="log format: our long CSV (default), a Lightning CSVLogger file or directory, a TensorBoard "
        "directory, a W&B history or chart CSV export, or a sweep store",
    )
    for role in roles:
        parser.add_argument(
            f"--{role.replace('_', '-')}-col",
            metavar="NAME",
            help=f"column or tag of the {ROLE_HELP[role]} (default: detected)",
        )
    parser.add_argument(
        "--step-offset",
        type=int,
        metavar="K",
        help="add K to the steps of metrics not named scaling/* (default: 1 for files Lightning wrote, "
        "whose self.log steps lag the optimizer-step count by one; else 0)",
    )


def split_run(spec: str) -> tuple[str, str | None]:
    """``PATH#RUN`` → (PATH, RUN); a plain path → (path, None)."""
    if "#" in spec and not Path(spec).exists():
        path, run = spec.rsplit("#", 1)
        return path, run or None
    return spec, None


def read_spec(spec: str, args: argparse.Namespace) -> pd.DataFrame:
    """The runs named by one ``PATH[#RUN]`` argument, read with the command's ``--from`` and column flags."""
    path, run = split_run(spec)
    return read_runs(path, args.source, ColumnMap.from_args(args), run=run)


def curve_label(spec: str, run: str, n_runs: int) -> str:
    """How a curve is named in output: the file for a one-run file, else ``FILE#RUN``."""
    path, chosen = split_run(spec)
    name = Path(path).name or path
    return name if n_runs == 1 and chosen is None else f"{name}#{run}"
