"""The ``scaling-callback`` command: one module per subcommand, imported only when used.

Each subcommand module defines ``add_arguments(parser)`` and ``run(args) -> int``. An
:class:`~scaling_callback.errors.InputError` raised by ``run`` becomes a one-line message on
stderr and exit status 2. Options shared by several subcommands are defined once in
:mod:`scaling_callback.cli.options` (the vocabulary), and every ``--help`` shows the defaults.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from pathlib import Path
from typing import Sequence

from scaling_callback.cli.options import HelpFormatter
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
    parser = argparse.ArgumentParser(prog=f"scaling-callback {name}", description=COMMANDS[name][1],
                                     formatter_class=HelpFormatter)
    module.add_arguments(parser)
    args = parser.parse_args(args_list[1:])
    try:
        return int(module.run(args) or 0)
    except InputError as error:
        print(f"scaling-callback {name}: error: {_one_line(str(error))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"scaling-callback {name}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader of our output went away (``| head``): nothing left to say
        return 0
    except Exception as error:  # noqa: BLE001 - a bug: one line here, the whole traceback in a file
        where = _write_traceback(name)
        print(f"scaling-callback {name}: internal error: {type(error).__name__}: {_one_line(str(error))} "
              f"(full traceback in {where}; please report it)", file=sys.stderr)
        return 1


def _one_line(text: str) -> str:
    """The first line of a message (errors from libraries can span many)."""
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[0] if lines else text


def _write_traceback(command: str) -> str:
    """Write the current exception's traceback to a file in the temp folder; return its path."""
    import tempfile
    import time
    import traceback

    folder = Path(tempfile.gettempdir()) / "scaling-callback-errors"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{command}-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.txt"
        path.write_text(f"scaling-callback {command} {' '.join(sys.argv[2:])}\n\n{traceback.format_exc()}")
        return str(path)
    except OSError as error:
        return f"nowhere: writing it failed ({error})"


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
