"""The sweep's final held-out evaluation: Lightning runs its validation loop after the planned last step.

Lightning validates every ``val_check_interval`` steps and whenever ``trainer.should_stop`` is set
(its early-stopping path). Setting it at the planned last step, where training ends anyway, gets
the final evaluation whatever the run's length; a run stopped early is evaluated at its stop by
the same rule. The callback records what the evaluation logs (``scaling_callback.store.held_out``).
"""

from __future__ import annotations

from typing import Any

from lightning.pytorch import Callback, LightningModule, Trainer


class EvaluateAtPlannedEnd(Callback):
    """Ask Lightning to stop, and so to validate, once ``global_step`` reaches ``max_steps``."""

    def on_train_batch_end(
        self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if trainer.max_steps is not None and 0 < trainer.max_steps <= trainer.global_step:
            trainer.should_stop = True
