"""The CLI's shared vocabulary: one option name for one idea in every subcommand, and its help formatter.

- ``--workers N``: worker *processes* (sweep runs, bootstrap resamples).
- ``--seed S``: the seed of whatever the command draws at random (bootstrap resamples, run order).
- ``--n-convention total|non-embedding``: what N counts (Kaplan et al. 2020 use non-embedding).
- ``--*-col COL``: the column holding one quantity in an input CSV.
Defaults are shown by :class:`HelpFormatter`, so help strings do not repeat them.
"""

from __future__ import annotations

import argparse

from scaling_callback.errors import InputError
from scaling_callback.progress import format_interval, format_value

N_CONVENTIONS = ("total", "non-embedding")
__all__ = [
    "HelpFormatter",
    "add_interval_options",
    "add_n_convention",
    "add_seed",
    "add_workers",
    "check_interval_options",
    "describe_frontier",
    "format_interval",
    "format_value",
]


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows '(default: X)' for options that have a real default (not None/False/empty, not already in the help)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        empty = action.default is None or action.default is False or action.default == [] or action.default == ""
        if empty or action.default is argparse.SUPPRESS or "default" in text or not action.option_strings:
            return text
        return super()._get_help_string(action)


def add_workers(parser: argparse.ArgumentParser, help_text: str, default: int | None = None) -> None:
    """``--workers N``: worker processes."""
    parser.add_argument("--workers", type=int, default=default, metavar="N", help=help_text)


def add_seed(parser: argparse.ArgumentParser, help_text: str, default: int | None = 0) -> None:
    """``--seed S``: the command's random seed."""
    parser.add_argument("--seed", type=int, default=default, metavar="S", help=help_text)


def add_interval_options(parser: argparse.ArgumentParser, bootstrap_default: int, bootstrap_help: str) -> None:
    """``--bootstrap K``, ``--seed`` (of the bootstrap), ``--level`` and ``--json``: one spelling for every fitting CLI."""
    parser.add_argument("--bootstrap", type=int, default=bootstrap_default, metavar="K", help=bootstrap_help)
    add_seed(parser, "bootstrap seed")
    parser.add_argument("--level", type=float, default=0.9, help="interval coverage (default 0.9)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def check_interval_options(args: argparse.Namespace) -> None:
    """One-line errors for a negative ``--bootstrap`` or a ``--level`` outside (0, 1)."""
    if args.bootstrap < 0:
        raise InputError(f"--bootstrap must be 0 or more, got {args.bootstrap}")
    if not 0 < args.level < 1:
        raise InputError(f"--level must be in (0, 1), got {args.level}")


def add_n_convention(parser: argparse.ArgumentParser) -> None:
    """``--n-convention total|non-embedding``: what the parameter count N counts."""
    parser.add_argument(
        "--n-convention",
        choices=N_CONVENTIONS,
        default="total",
        help="what N counts: all parameters, or without embedding weights (Kaplan et al. 2020)",
    )


def describe_frontier(summary: dict) -> str:
    """'frontier a = 0.615 (95 % interval [0.027, 0.939]; uninformative)' from a report summary."""
    front = summary.get("frontier") or {}
    if front.get("a") is None:
        return "no frontier fit (too few runs, sizes or budgets)"
    pair = front.get("a_ci")
    interval = f"[{pair[0]:.3f}, {pair[1]:.3f}]" if pair and None not in pair else ""
    notes = [f"95 % interval {interval}"] if interval else ["no bootstrap"]
    if front.get("verdict") and interval:
        notes.append("uninformative: see summary.md")
    return f"frontier a = {front['a']:.3f} ({'; '.join(notes)})"
