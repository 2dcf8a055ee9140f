"""Train one run of a sweep in the current process: a fresh Trainer with the scaling callback.

Runs in a worker process of :mod:`scaling_callback.sweep.runner`. Every run has its own logger
version and checkpoint folder, so an interrupted run resumes from its last checkpoint and its
curve continues without gaps (the callback truncates points past the restored step).
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import warnings
from pathlib import Path

from scaling_callback.store.held_out import HELD_OUT_METRICS
from scaling_callback.sweep.config import SweepConfig, parse_config
from scaling_callback.sweep.runs import RunSpec, build_run
from scaling_callback.sweep.stopping_setup import policy_from_config

LAST_CHECKPOINT = "last.ckpt"
_interrupted = False  # this worker process got Ctrl-C: it starts no further run


def _quiet_lightning() -> None:
    """Keep the sweep's terminal for its progress line: Lightning's info lines and known warnings go."""
    for name in ("lightning.pytorch", "lightning.fabric", "lightning"):
        logging.getLogger(name).setLevel(logging.WARNING)
    for pattern in (".*does not have many workers.*", ".*IterableDataset.*", ".*LeafSpec.*", ".*litlogger.*"):
        warnings.filterwarnings("ignore", message=pattern)


def _interrupt_once(signum: int, frame: object) -> None:
    """First Ctrl-C: stop training (Lightning marks the run and exits); later ones must not cut that short.

    The process also starts no further run: the local runner's pool has already queued the next run
    in this worker (a queued call cannot be cancelled), which would otherwise train to its end with
    Ctrl-C ignored while the sweep waits to exit. Measured with 200-step tiny runs under a load of 3
    busy processes on 2 cores: 34.5 s from Ctrl-C to exit before, 13.1 s with this and
    ``FitWorker.abandon`` (unloaded: 6.2 s, 3.1 s); over 120 s once in a CI-like run.
    """
    global _interrupted
    _interrupted = True
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    raise KeyboardInterrupt


def checkpoint_dir(out_dir: Path, run: RunSpec) -> Path:
    return Path(out_dir) / "checkpoints" / run.name


def train_run(
    raw_config: dict, run: RunSpec, out_dir: str, store_url: str, resume: bool, extra_callbacks: list | None = None
) -> str:
    """Train ``run`` to its budget (or until its policy stops it); returns the run's name.

    ``extra_callbacks`` join the Trainer's (e.g. the Ray backend's reporter to Tune).
    """
    if _interrupted:
        raise KeyboardInterrupt(f"run {run.name} not started: the sweep was interrupted (rerun with --resume)")
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    if threading.current_thread() is threading.main_thread():  # a Ray Tune trial runs its function on a thread
        signal.signal(signal.SIGINT, _interrupt_once)  # Ctrl-C reaches a worker from the terminal and from the runner
    import lightning.pytorch as pl
    import torch
    from lightning.pytorch.callbacks import ModelCheckpoint
    from lightning.pytorch.loggers import CSVLogger

    from scaling_callback.callback.scaling_law_callback import ScalingLawCallback
    from scaling_callback.sweep.evaluation import EvaluateAtPlannedEnd

    torch.set_num_threads(1)  # one core per worker: the sweep runs `workers` runs side by side
    _quiet_lightning()
    config: SweepConfig = parse_config(raw_config)
    setup = build_run(config, run)
    directory = checkpoint_dir(Path(out_dir), run)
    last = directory / LAST_CHECKPOINT
    evaluation = config.evaluation
    evaluated = evaluation.tokens > 0
    recorded = setup.recorded | {"max_steps": setup.max_steps, "tokens_per_step": setup.tokens_per_step}
    if evaluated:
        recorded["evaluation"] = {
            "tokens": setup.eval_tokens,
            "every_n_steps": evaluation.every_n_steps,
            "target_sd": evaluation.target_sd,
        }
    callback = ScalingLawCallback(
        store=store_url,
        run_name=run.name,
        sweep=config.name,
        fit_every_n_steps=config.callback.fit_every_n_steps,
        early_stopping=policy_from_config(config.stopping),
        synchronous_stopping=config.stopping.synchronous,
        law=config.callback.law,
        config=run.config() | recorded,
        max_fit_fraction=config.callback.max_fit_fraction,
        fit_niceness=config.callback.fit_niceness,
        tokens_per_sample=None,
        val_metrics=HELD_OUT_METRICS if evaluated else None,
    )
    checkpoints = ModelCheckpoint(
        dirpath=directory, every_n_train_steps=config.checkpoint_every_n_steps, save_last=True, save_top_k=0
    )
    cadence = evaluation.every_n_steps if evaluated and evaluation.every_n_steps else None
    trainer = pl.Trainer(
        max_steps=setup.max_steps,
        accelerator="cpu",
        devices=1,
        callbacks=[callback, checkpoints, *([EvaluateAtPlannedEnd()] if evaluated else []), *(extra_callbacks or [])],
        logger=CSVLogger(Path(out_dir) / "logs", name=run.name, version=0),
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=None if evaluated else 0,
        val_check_interval=cadence,
        check_val_every_n_epoch=None if evaluated else 1,
        log_every_n_steps=config.callback.log_every_n_steps,
        num_sanity_val_steps=0,
    )
    ckpt_path = str(last) if resume and last.exists() else None
    trainer.fit(setup.module, datamodule=setup.datamodule, ckpt_path=ckpt_path)
    return run.name
