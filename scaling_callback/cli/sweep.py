"""``scaling-callback sweep CONFIG.yaml``: train a grid of runs with the callback, then write the report."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from scaling_callback.cli.options import describe_frontier
from scaling_callback.errors import InputError
from scaling_callback.sweep.config import load_config, read_config_mapping


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="sweep YAML (see configs/quickstart.yaml)")
    parser.add_argument("--out", default=None, help="output folder (default: runs/<sweep name>)")
    parser.add_argument("--workers", type=int, default=None, metavar="N", help="worker processes, one run each (default: the config's workers)")
    parser.add_argument("--resume", action="store_true", help="skip finished runs, resume interrupted ones")
    parser.add_argument("--no-report", action="store_true", help="do not write the report at the end")
    parser.add_argument("--backend", choices=("local", "ray"), default="local",
                        help="who places the runs: local worker processes, or Ray (needs the ray extra; docs/cluster.md)")
    parser.add_argument("--address", default=None, help="with --backend ray: the Ray cluster to join (auto or HOST:PORT); "
                        "default a local Ray instance")


def run(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    if args.workers is not None and args.workers < 1:
        raise InputError(f"--workers must be >= 1, got {args.workers}")
    raw = read_config_mapping(args.config)
    out_dir = Path(args.out or Path("runs") / config.name)
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"{out_dir}: is a file, expected the sweep's output folder")
    if args.address and args.backend != "ray":
        raise InputError(f"--address {args.address!r} needs --backend ray")
    if args.backend == "ray":
        try:
            from scaling_callback.integrations.ray import run_sweep_on_ray as run_sweep
        except ImportError as error:
            raise InputError(f"--backend ray: {error}") from None
        extra = {"address": args.address}
    else:
        from scaling_callback.sweep.runner import run_sweep

        extra = {}
    try:
        outcome = run_sweep(config, raw, out_dir, workers=args.workers, resume=args.resume, **extra)
    except KeyboardInterrupt:
        return 130  # the runner said how to continue (--resume); the shell's code for Ctrl-C
    for name, error in outcome.failed.items():
        print(f"run {name} failed: {error}")
    if not args.no_report:
        from scaling_callback.progress import ReportProgress
        from scaling_callback.report.writer import write_report
        from scaling_callback.sweep.runner import store_url

        with ReportProgress(sys.stderr) as progress:
            summary = write_report(out_dir, store_url(config, out_dir), config.name, bootstrap=config.frontier.bootstrap,
                                   n_convention=config.frontier.n_convention,
                                   target_flops=config.frontier.target_flops or None,
                                   tie_exponents=config.frontier.tie_exponents, progress=progress.update)
        print(f"report: {out_dir / 'report'} | runs {summary['runs']}, stopped {summary['stopped']}, "
              f"compute saved {summary['compute_saved']:.1%}, {describe_frontier(summary)}")
    return 1 if outcome.failed else 0
