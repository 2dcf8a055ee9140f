"""``scaling-callback reproduce random-features``: fit measured toy-model losses, compare with theory.

Prints one row per exponent: experiment, quantity, theory, measured, ci_low, ci_high, seconds and a
note saying whether the interval contains the theory value and, if not, which finite-size bias (with
its sign) the measurements point to. ``--json`` prints ``{"rows": [...], "total_seconds": ...}``;
``--out DIR`` writes one PNG per experiment.
"""

from __future__ import annotations

import os

# One BLAS/torch thread: the experiments are many small products that oversubscribed threads slow down.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import contextlib  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Iterator  # noqa: E402

from scaling_callback.errors import InputError  # noqa: E402

SUITES = ("random-features",)
COLUMNS = ("experiment", "quantity", "theory", "measured", "ci_low", "ci_high", "seconds", "note")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("suite", choices=SUITES, help="which reproduction to run")
    parser.add_argument("--quick", action="store_true", help="smaller sizes and fewer seeds (about 5 minutes on 2 cores)")
    parser.add_argument("--json", action="store_true", help='print {"rows": [...], "total_seconds": ...} instead of a table')
    parser.add_argument("--out", type=Path, default=None, metavar="DIR", help="write PNG figures to DIR")
    parser.add_argument("--only", default=None, metavar="E1,E2,...",
                        help="comma-separated subset of the experiments E1 (MRS), E2 (gradient flow), "
                             "E3 (SGD recursion), E4 (Lightning PLRF)")


def _selected(only: str | None) -> tuple[str, ...]:
    from scaling_callback.reproduce.suite import EXPERIMENTS

    if only is None:
        return EXPERIMENTS
    names = tuple(name.strip().upper() for name in only.split(",") if name.strip())
    unknown = [name for name in names if name not in EXPERIMENTS]
    if unknown or not names:
        raise InputError(f"--only must name experiments among {', '.join(EXPERIMENTS)}; got {only!r}")
    return tuple(name for name in EXPERIMENTS if name in names)


@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    """One torch and one BLAS thread while the suite runs (the variables above act only before numpy loads)."""
    import torch

    torch_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        limits = contextlib.nullcontext()
    else:
        limits = threadpool_limits(1)
    try:
        with limits:
            yield
    finally:
        torch.set_num_threads(torch_threads)


def _format(value: object) -> str:
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.3f}" if abs(value) < 100 else f"{value:.1f}"
    return str(value)


def format_table(rows: list, total_seconds: float) -> str:
    """A plain-text table, columns padded to their widest cell; the note column last and unpadded."""
    cells = [list(COLUMNS)] + [[_format(getattr(row, column)) for column in COLUMNS] for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(COLUMNS) - 1)]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(line[:-1], widths)) + "  " + line[-1] for line in cells]
    return "\n".join(lines + [f"total_seconds: {total_seconds:.1f}"])


def run(args: argparse.Namespace) -> int:
    from scaling_callback.reproduce.suite import CONFIGS, run_suite

    only = _selected(args.only)
    if args.out is not None and args.out.exists() and not args.out.is_dir():
        raise InputError(f"--out must be a directory; {str(args.out)!r} is a file")
    from scaling_callback.progress import LiveProgress

    live = LiveProgress("reproduce", len(only), "experiments", sys.stderr)
    started: list[str] = []

    def progress(name: str) -> None:  # called as each experiment starts
        live.update(len(started), f"running {name}", force=True)
        started.append(name)

    with _one_thread():
        rows, total_seconds, figures = run_suite(CONFIGS["quick" if args.quick else "full"], only, args.out, progress)
    live.update(len(only), "done", force=True)
    live.close()
    if args.json:
        print(json.dumps({"rows": [row.to_dict() for row in rows], "total_seconds": total_seconds}, indent=2))
    else:
        print(format_table(rows, total_seconds))
        for path in figures:
            print(f"wrote {path}")
    return 0
