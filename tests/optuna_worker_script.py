"""One of several processes optimising one Optuna study on an RDB storage; used by tests/test_integrations_optuna.py.

    python tests/optuna_worker_script.py STORAGE_URL STUDY WIDTHS OUT_DIR [STORE_URL]

Each trial trains a PLRF model of width ``d`` (the comma-separated WIDTHS, one trial each, in order) with the
scaling callback (its store is STORE_URL, the storage's own database by default) and the study's PolicyPruner
running the law policy on the reported losses. The width is fixed by the trial's sampler, not by
``study.enqueue_trial``: on SQLite two processes can pop the same waiting trial (SQLite ignores the
``SELECT ... FOR UPDATE`` Optuna claims it with; optuna/optuna#4002), and then both train and report it.
"""

from __future__ import annotations

import logging
import sys
import warnings

import lightning.pytorch as pl
import numpy as np
import optuna
import torch

from scaling_callback import ScalingLawCallback
from scaling_callback.integrations.optuna import OptunaReporter, run_name
from scaling_callback.stopping import make_policy
from scaling_callback.stopping.optuna_pruner import PolicyPruner
from toy_models.plrf_module import make_plrf_module

MAX_STEPS, REPORT_EVERY, PEAK_LR, BATCH = 300, 10, 0.5, 32


def planned_lrs(trial: optuna.trial.FrozenTrial) -> np.ndarray:
    return np.full(MAX_STEPS, PEAK_LR)  # constant schedule, no warm-up


def make_pruner() -> PolicyPruner:
    return PolicyPruner(make_policy("law"), budget=MAX_STEPS, lr_schedule=planned_lrs, keep_history=True)


def objective(trial: optuna.Trial, url: str, out_dir: str) -> float:  # url: the sweep store
    d = trial.suggest_categorical("d", [4, 8, 16, 32, 64])
    module = make_plrf_module(
        d=d,
        v=256,
        batch_size=BATCH,
        max_steps=MAX_STEPS,
        kind="constant",
        peak_lr=PEAK_LR,
        feature_seed=0,
        data_seed=trial.number,
        log_every_n_steps=0,
    )
    reporter = OptunaReporter(trial, report_every_n_steps=REPORT_EVERY)
    callback = ScalingLawCallback(
        store=url, run_name=run_name(trial), sweep=trial.study.study_name, fit_every_n_steps=100, fit_worker="thread"
    )
    trainer = pl.Trainer(
        max_steps=MAX_STEPS,
        accelerator="cpu",
        devices=1,
        callbacks=[callback, reporter],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=out_dir,
    )
    trainer.fit(module)
    reporter.raise_if_pruned(store=url)
    return float(module.population_loss())


def main() -> None:
    url, study_name, out_dir = sys.argv[1], sys.argv[2], sys.argv[4]
    widths = [int(w) for w in sys.argv[3].split(",")]
    store_url = sys.argv[5] if len(sys.argv) > 5 else url  # the sweep store; the Optuna storage by default
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = optuna.storages.RDBStorage(
        url, engine_kwargs={"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {}
    )
    pruner = make_pruner()
    for width in widths:  # ask/tell: study.optimize's tell fails on a SQLite commit that landed and was retried
        sampler = optuna.samplers.PartialFixedSampler({"d": width}, optuna.samplers.RandomSampler(seed=width))
        study = optuna.load_study(study_name=study_name, storage=storage, pruner=pruner, sampler=sampler)
        trial = study.ask()
        try:
            values, state = objective(trial, store_url, out_dir), optuna.trial.TrialState.COMPLETE
        except optuna.TrialPruned:
            values, state = None, optuna.trial.TrialState.PRUNED
        try:
            study.tell(trial, values, state=state)
        except ValueError:  # "Cannot tell a ... trial": only if the storage already holds this very outcome
            stored = next(t for t in study.get_trials(deepcopy=False) if t.number == trial.number)
            if stored.state != state:
                raise


if __name__ == "__main__":
    main()
