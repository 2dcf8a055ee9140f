"""E4: the trainable PLRF LightningModule, trained by a plain Trainer, against the exact recursion.

A few model sizes share one feature draw (nested columns) and one data-stream seed; each is trained
with SGD under the module's LR schedule (constant after a short warmup) while a small callback
records the exact population loss at log-spaced steps. Compute is what a callback would read:
``flops_per_batch`` × steps. The recursion of :mod:`toy_models.plrf` is evaluated on the very same
features, batch size and per-step learning rates, so the two loss-vs-compute exponents (lower
envelope over sizes, fitted where neither the smallest nor the largest size is the best one)
should agree up to the noise of one SGD trajectory per size.
"""

from __future__ import annotations

import logging
import time
import warnings
from dataclasses import dataclass

import lightning.pytorch as pl
import numpy as np

from scaling_callback.fitting.power_law import PowerLawFit
from scaling_callback.reproduce.common import ExperimentResult, Row, coverage_note
from toy_models import theory
from toy_models.frontier import compute_optimal_frontier
from toy_models.plrf import PLRFProblem, nested_spectra, sgd_expected_loss
from toy_models.plrf_module import make_plrf_module
from toy_models.schedules import ScheduleSpec, lr_multiplier

MIN_WINDOW_POINTS = 5


@dataclass(frozen=True)
class LightningConfig:
    sizes: tuple[int, ...] = (8, 16, 32, 64, 128, 256)
    v: int = 512
    alpha: float = 1.0
    beta: float = 1.5
    batch_size: int = 32
    steps: int = 2000
    warmup_steps: int = 20
    feature_seed: int = 0
    data_seed: int = 0
    n_bootstrap: int = 200


@dataclass(frozen=True)
class _Run:
    population_loss: np.ndarray  # at the checkpoints
    flops_per_batch: int
    schedule: ScheduleSpec


class _PopulationLossRecorder(pl.Callback):
    """Reads ``population_loss()`` after the optimizer steps listed in ``checkpoints``."""

    def __init__(self, checkpoints: np.ndarray) -> None:
        self.index = {int(step): i for i, step in enumerate(checkpoints)}
        self.losses = np.full(len(checkpoints), np.nan)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        position = self.index.get(trainer.global_step)  # already advanced past the step just taken
        if position is not None:
            self.losses[position] = float(pl_module.population_loss())


def _train(config: LightningConfig, d: int, checkpoints: np.ndarray) -> _Run:
    module = make_plrf_module(
        d=d,
        v=config.v,
        alpha=config.alpha,
        beta=config.beta,
        batch_size=config.batch_size,
        max_steps=config.steps,
        kind="constant",
        warmup_steps=config.warmup_steps,
        feature_seed=config.feature_seed,
        data_seed=config.data_seed,
        log_every_n_steps=0,
    )
    recorder = _PopulationLossRecorder(checkpoints)
    trainer = pl.Trainer(
        max_steps=config.steps,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
        devices=1,
        callbacks=[recorder],
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit(module)
    return _Run(recorder.losses, module.flops_per_batch, module.schedule)


def _expected_log_loss(config: LightningConfig, runs: list[_Run], checkpoints: np.ndarray) -> np.ndarray:
    """log E[P] from the recursion with each run's own features, batch size and per-step LRs."""
    spectra = nested_spectra(
        PLRFProblem(config.alpha, config.beta, config.v), np.asarray(config.sizes), config.feature_seed
    )
    rows = []
    for spectrum, run in zip(spectra, runs):
        multiplier = lr_multiplier(run.schedule)
        factors = np.array([multiplier(k) for k in range(int(checkpoints[-1]))])
        rows.append(sgd_expected_loss([spectrum], checkpoints, config.batch_size, run.schedule.peak_lr, factors)[0])
    return np.log(np.stack(rows))


def run_lightning_plrf(config: LightningConfig) -> ExperimentResult:
    """E4: loss-vs-compute envelope exponent of Lightning-trained PLRF modules versus the recursion."""
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    start = time.perf_counter()
    sizes = np.asarray(config.sizes, dtype=float)
    steps = np.unique(np.round(np.logspace(0, np.log10(config.steps), 60)).astype(int))
    runs = [_train(config, int(d), steps) for d in config.sizes]
    measured = np.log(np.stack([run.population_loss for run in runs]))
    expected = _expected_log_loss(config, runs, steps)
    flops_per_step = np.array([run.flops_per_batch for run in runs], dtype=float)
    computes = np.logspace(np.log10(flops_per_step[0]), np.log10(flops_per_step[-1] * config.steps), 200)
    frontiers = {
        name: compute_optimal_frontier(sizes, steps.astype(float), curves, computes, flops_per_step, window=1)
        for name, curves in (("recursion", expected), ("Lightning", measured))
    }
    best = frontiers["recursion"].best_size_index
    window = (best > 0) & (best < sizes.size - 1)
    if window.sum() < MIN_WINDOW_POINTS:
        return ExperimentResult(
            [
                Row(
                    "E4 Lightning PLRF",
                    "eta of loss-vs-FLOPs envelope",
                    np.nan,
                    np.nan,
                    np.nan,
                    np.nan,
                    time.perf_counter() - start,
                    "fewer than 5 budgets with an interior best size: train longer or add sizes",
                )
            ]
        )
    fits = {
        name: PowerLawFit(fit_offset=False, n_bootstrap=config.n_bootstrap if name == "Lightning" else 0).fit(
            computes[window], frontier.best_loss[window]
        )
        for name, frontier in frontiers.items()
    }
    source = (
        f"95% bootstrap over {int(window.sum())} envelope points of one SGD run per size "
        "(run-to-run noise not included)"
    )
    note = coverage_note(fits["recursion"].alpha_, fits["Lightning"].alpha_, fits["Lightning"].alpha_ci_, source)
    note += (
        f"; theory column = exact recursion on the same features, batch and LRs (the asymptotic Phase-III "
        f"value {theory.plrf_frontier(config.alpha, config.beta)['loss'].value:.3f} needs far larger d)"
    )
    label = (
        f"eta of loss-vs-FLOPs envelope (d={config.sizes[0]}..{config.sizes[-1]}, B={config.batch_size}, "
        f"{config.steps} steps)"
    )
    row = Row(
        "E4 Lightning PLRF",
        label,
        fits["recursion"].alpha_,
        fits["Lightning"].alpha_,
        *fits["Lightning"].alpha_ci_,
        time.perf_counter() - start,
        note,
    )
    plot = {
        "sizes": sizes,
        "steps": steps,
        "flops_per_step": flops_per_step,
        "measured": measured,
        "expected": expected,
        "computes": computes,
        "window": window,
        "frontiers": frontiers,
        "fits": {name: (fit.A_, fit.alpha_) for name, fit in fits.items()},
    }
    return ExperimentResult([row], plot)
