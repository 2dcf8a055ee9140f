"""The ``scaling-callback`` command: one module per subcommand, imported only when used.

Each subcommand module defines ``add_arguments(parser)`` and ``run(args) -> int``. An
:class:`~scaling_callback.errors.InputError` raised by ``run`` becomes a one-line message on
stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Sequence

from scaling_callback.errors import InputError

# name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "fit-curves": ("scaling_callback.cli.fit_curves", "fit a per-run loss-curve law (MPL and baselines) and predict schedules"),
    "sweep": ("scaling_callback.cli.sweep", "train a grid of runs from a YAML config, fit laws online, write the report"),
    "report": ("scaling_callback.cli.report", "write a sweep's report (plots, summary.json, summary.md) from its store"),
    "fit-compute": ("scaling_callback.cli.fit_compute", "fit Chinchilla's L(N, D) across runs: compute-optimal frontier with bootstrap intervals"),
    "fit-downstream": ("scaling_callback.cli.fit_downstream", "predict a downstream metric at a target compute: compute -> loss -> metric (FLP)"),
    "fit-loss-to-loss": ("scaling_callback.cli.fit_loss_to_loss", "predict one loss from another (train->test, train->train) with offsets from compute laws"),
    "reproduce": ("scaling_callback.cli.reproduce", "fit exponents of solvable random-feature models and compare them with theory"),
    "export": ("scaling_callback.cli.export", "write a store's runs (or one sweep or run) in the long format, CSV or Parquet"),
    "replay-stopping": ("scaling_callback.cli.replay_stopping", "replay recorded curves under early-stopping policies (law, median, ASHA, fixed budget)"),
}


def _top_level_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="scaling-callback",
        description="Fit scaling laws while a training sweep runs.",
        epilog="commands:\n" + "\n".join(f"  {name:<18}{text}" for name, (_, text) in COMMANDS.items()),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("command", choices=sorted(COMMANDS), metavar="COMMAND", help="one of: " + ", ".join(COMMANDS))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the exit status."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    if not args_list or args_list[0] not in COMMANDS:
        _top_level_parser().parse_args(args_list[:1] or ["--help"])
        return 2
    name = args_list[0]
    module = importlib.import_module(COMMANDS[name][0])
    parser = argparse.ArgumentParser(prog=f"scaling-callback {name}", description=COMMANDS[name][1])
    module.add_arguments(parser)
    args = parser.parse_args(args_list[1:])
    try:
        return int(module.run(args) or 0)
    except InputError as error:
        print(f"scaling-callback {name}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
