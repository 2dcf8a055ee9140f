"""The ``random-features`` suite: which experiments run at which sizes, and where the figures go.

``QUICK`` keeps every experiment under about two minutes on two CPU cores; ``FULL`` uses more
seeds and larger sizes for tighter intervals.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from scaling_callback.reproduce import plots
from scaling_callback.reproduce.common import ExperimentResult, Row
from scaling_callback.reproduce.exact_experiments import (
    FrontierConfig,
    MRSConfig,
    run_gradient_flow,
    run_mrs,
    run_sgd_recursion,
)
from scaling_callback.reproduce.lightning_experiment import LightningConfig, run_lightning_plrf

EXPERIMENTS = ("E1", "E2", "E3", "E4")


@dataclass(frozen=True)
class SuiteConfig:
    """Sizes and seeds of every experiment."""

    mrs: MRSConfig
    gradient_flow: FrontierConfig
    sgd: FrontierConfig
    lightning: LightningConfig
    sgd_steps: int = 10_000


QUICK = SuiteConfig(
    mrs=MRSConfig(seeds=6, n_bootstrap=100),
    gradient_flow=FrontierConfig(low=16, high=512, v_factor=4, seeds=12, n_bootstrap=100),
    sgd=FrontierConfig(low=16, high=512, v_factor=4, seeds=48, n_bootstrap=100),
    lightning=LightningConfig(n_bootstrap=100),
)
FULL = SuiteConfig(
    mrs=MRSConfig(high=1024, seeds=8, n_bootstrap=400),
    gradient_flow=FrontierConfig(low=16, high=1024, v_factor=4, seeds=24, n_bootstrap=400),
    sgd=FrontierConfig(low=16, high=1024, v_factor=4, seeds=64, n_bootstrap=400),
    sgd_steps=20_000,
    lightning=LightningConfig(sizes=(8, 16, 32, 64, 128, 256, 512), steps=4000),
)
CONFIGS = {"quick": QUICK, "full": FULL}


def _runners(config: SuiteConfig) -> dict[str, Callable[[], ExperimentResult]]:
    return {
        "E1": lambda: run_mrs(config.mrs),
        "E2": lambda: run_gradient_flow(config.gradient_flow),
        "E3": lambda: run_sgd_recursion(config.sgd, steps=config.sgd_steps),
        "E4": lambda: run_lightning_plrf(config.lightning),
    }


def _plot(name: str, result: ExperimentResult, out_dir: Path) -> Path:
    path = (
        out_dir
        / {
            "E1": "e1_mrs.png",
            "E2": "e2_gradient_flow.png",
            "E3": "e3_sgd_recursion.png",
            "E4": "e4_lightning_plrf.png",
        }[name]
    )
    if name == "E1":
        plots.plot_mrs(result, path)
    elif name == "E2":
        plots.plot_frontiers(result, path, "t", "gradient flow")
    elif name == "E3":
        plots.plot_frontiers(result, path, "r", "one-pass SGD (exact recursion)")
    else:
        plots.plot_lightning(result, path)
    return path


def run_suite(
    config: SuiteConfig,
    only: tuple[str, ...] = EXPERIMENTS,
    out_dir: Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> tuple[list[Row], float, list[Path]]:
    """Run the chosen experiments in order; returns the rows, the total seconds and the figures written."""
    start = time.perf_counter()
    rows: list[Row] = []
    figures: list[Path] = []
    runners = _runners(config)
    for name in only:
        if progress is not None:
            progress(name)
        result = runners[name]()
        rows.extend(result.rows)
        if out_dir is not None and result.plot_data:
            out_dir.mkdir(parents=True, exist_ok=True)
            figures.append(_plot(name, result, out_dir))
    return rows, time.perf_counter() - start, figures
