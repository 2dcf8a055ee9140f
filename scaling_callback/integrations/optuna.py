"""Optuna trials as Lightning runs: report the training loss to the trial, stop when the study's pruner says so.

With :class:`~scaling_callback.stopping.optuna_pruner.PolicyPruner` as the study's pruner, the law
policy (or any other) decides from the curves every process reported into the study's storage, so
several processes (or machines) optimising one study on an RDB storage share their runs::

    pruner = PolicyPruner(make_policy("law"), budget=MAX_STEPS, lr_schedule=planned_lrs)
    study = optuna.create_study(storage=URL, study_name="width", load_if_exists=True, pruner=pruner)

    def objective(trial):
        reporter = OptunaReporter(trial, report_every_n_steps=10)
        callback = ScalingLawCallback(store=URL, run_name=run_name(trial), sweep=trial.study.study_name)
        trainer = pl.Trainer(max_steps=MAX_STEPS, callbacks=[callback, reporter])
        trainer.fit(model_for(trial.params))
        reporter.raise_if_pruned(store=URL)   # records the stop in the sweep store, raises optuna.TrialPruned
        return final_loss

    study.optimize(objective, n_trials=10)    # in every process, on every machine

The store URL may be the Optuna storage's own URL: the store's tables sit beside Optuna's. See
docs/cluster.md for the recipe. Needs the optional ``optuna`` extra.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import lightning.pytorch as pl

try:
    import optuna
except ImportError as error:  # pragma: no cover - depends on the environment
    raise ImportError(
        "scaling_callback.integrations.optuna needs optuna: pip install 'scaling-callback[optuna]'"
    ) from error

from scaling_callback.errors import InputError

if TYPE_CHECKING:
    from pathlib import Path

    from scaling_callback.store import SweepStore

__all__ = ["OptunaReporter", "run_name"]


def run_name(trial: optuna.trial.BaseTrial) -> str:
    """The store's name for a trial's run: the name :class:`PolicyPruner` gives it (``trial-<number>``)."""
    return f"trial-{trial.number}"


class OptunaReporter(pl.Callback):
    """Report the loss of every ``report_every_n_steps``-th optimizer step to ``trial``; stop training when pruned.

    The value reported is the training step's loss as Lightning hands it to callbacks, times the
    gradient-accumulation factor (automatic optimisation divides it by that). NaN losses are not
    reported. After ``trainer.fit``, :meth:`raise_if_pruned` ends the objective the Optuna way.
    """

    def __init__(self, trial: optuna.trial.Trial, report_every_n_steps: int = 10) -> None:
        if int(report_every_n_steps) != report_every_n_steps or report_every_n_steps < 1:
            raise InputError(f"report_every_n_steps must be a positive integer, got {report_every_n_steps!r}")
        self.trial = trial
        self.report_every_n_steps = int(report_every_n_steps)
        self.pruned_at: int | None = None
        self.reason: str | None = None
        self._last_step = -1

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        step = trainer.global_step
        if step == self._last_step or step % self.report_every_n_steps or self.pruned_at is not None:
            return
        self._last_step = step
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        if loss is None:
            return
        value = float(loss) * (trainer.accumulate_grad_batches if pl_module.automatic_optimization else 1)
        if not math.isfinite(value):
            return
        self.trial.report(value, step)
        if self.trial.should_prune():
            self.pruned_at, self.reason = step, _reason(self.trial)
            trainer.should_stop = True

    def raise_if_pruned(self, store: SweepStore | str | Path | None = None, run: str | None = None) -> None:
        """If pruned: mark the run stopped in ``store`` with the pruner's reason, then raise ``TrialPruned``."""
        if self.pruned_at is None:
            return
        if store is not None:
            from scaling_callback.store import SweepStore

            opened = store if isinstance(store, SweepStore) else SweepStore(store)
            name = run or run_name(self.trial)
            opened.add_decision(name, self.pruned_at, True, reason=self.reason or "", policy=_pruner_name(self.trial))
            opened.mark_stopped(name, self.pruned_at, self.reason or "pruned")
            if opened is not store:
                opened.close()
        raise optuna.TrialPruned(self.reason)


def _pruner_name(trial: optuna.trial.Trial) -> str:
    pruner = trial.study.pruner
    policy = getattr(pruner, "policy", None)
    return (
        f"{type(pruner).__name__}:{getattr(policy, 'name', type(policy).__name__)}"
        if policy is not None
        else type(pruner).__name__
    )


def _reason(trial: optuna.trial.Trial) -> str:
    """The pruner's reason for the stop (a :class:`PolicyPruner` keeps its decisions), else its name."""
    decisions = getattr(trial.study.pruner, "decisions", None)
    decision = decisions.get(trial.number) if isinstance(decisions, dict) else None
    reason = getattr(decision, "reason", None)
    return reason or f"pruned by {type(trial.study.pruner).__name__}"
