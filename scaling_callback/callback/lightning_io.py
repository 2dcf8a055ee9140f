"""What the callback reads from and writes to Lightning: planned length, the LR plan, validation metrics,
logger calls, run names."""

from __future__ import annotations

import math
import secrets
import time
from typing import Any, Mapping, Sequence

import torch
from lightning.pytorch import Trainer

from scaling_callback.callback.planned_schedule import PlannedSchedule, lightning_stepping_rule, plan_lrs
from scaling_callback.callback.recorder import Point

PREDICTIONS = ("pred_final_loss", "pred_final_low", "pred_final_high")


def planned_total_steps(trainer: Trainer) -> int | None:
    """Planned optimizer steps of the run (``max_steps``, or epochs × steps per epoch); None when unbounded."""
    try:
        total = trainer.estimated_stepping_batches
    except Exception:  # noqa: BLE001 - e.g. accumulation that changes by epoch
        total = trainer.max_steps
    return int(total) if total is not None and math.isfinite(total) and total > 0 else None


def first_optimizer(trainer: Trainer) -> torch.optim.Optimizer | None:
    """The first optimizer, or None (also for Lightning's stand-in when ``configure_optimizers`` returns None)."""
    optimizer = trainer.optimizers[0] if trainer.optimizers else None
    return optimizer if optimizer is not None and optimizer.param_groups else None


def plan_schedule(trainer: Trainer, optimizer: torch.optim.Optimizer | None, total: int | None, group: int) -> PlannedSchedule | None:
    """LRs of the steps still to come, stepping a copy of the optimizer's scheduler as Lightning would."""
    if optimizer is None or total is None:
        return None
    config = next((c for c in trainer.lr_scheduler_configs if getattr(c.scheduler, "optimizer", None) is optimizer), None)
    if config is None:
        return plan_lrs(None, optimizer, start_step=trainer.global_step, end_step=total, group=group)
    rule = lightning_stepping_rule(config.interval, config.frequency, trainer.num_training_batches, trainer.accumulate_grad_batches)
    return plan_lrs(config.scheduler, optimizer, start_step=trainer.global_step, end_step=total, group=group,
                    steps_scheduler_after=rule)


def optimization_note(automatic: bool, n_optimizers: int, lr_group: int) -> str | None:
    """What the callback records when it cannot follow Lightning's automatic loop with one optimizer, else None.

    Lightning's ``global_step`` counts ``optimizer.step()`` calls of every optimizer, and a scheduler
    is stepped by Lightning only under automatic optimization.
    """
    if automatic and n_optimizers <= 1:
        return None
    parts = []
    if not automatic:
        parts.append("manual optimization: a point is recorded per training batch at trainer.global_step, the loss "
                     "is outputs['loss'] as returned (no accumulation scaling), and the planned LR schedule is the "
                     "first scheduler stepped as configured (Lightning does not step it for you: the plan is right "
                     "only if you call scheduler.step() at that cadence)")
    if n_optimizers > 1:
        parts.append(f"{n_optimizers} optimizers: global_step advances once per optimizer.step() of each, so steps "
                     f"are recorded {n_optimizers} apart (e.g. {n_optimizers}, {2 * n_optimizers}, ...); the LR recorded "
                     f"and planned is that of the first optimizer's param group {lr_group}")
    return "ScalingLawCallback: " + "; ".join(parts) + "."


def validation_values(metrics: Mapping[str, Any], wanted: str | list[str]) -> dict[str, float]:
    """Scalar metrics to record after validation; ``"auto"`` picks names containing both "val" and "loss"."""
    if wanted == "auto":
        names = [k for k in metrics if "val" in k.lower() and "loss" in k.lower()]
    else:
        names = [wanted] if isinstance(wanted, str) else list(wanted)
    values = {}
    for name in names:
        value = metrics.get(name)
        if isinstance(value, torch.Tensor) and value.numel() == 1:
            values[name] = float(value.item())
        elif isinstance(value, (int, float)):
            values[name] = float(value)
    return values


def generated_run_name(sweep: str | None) -> str:
    """A unique run name: sweep (or "run"), UTC time, random suffix."""
    return f"{sweep or 'run'}-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}-{secrets.token_hex(3)}"


def log_points(loggers: Sequence[Any], points: Sequence[Point], fit: Mapping[str, Any] | None, due: Any) -> int:
    """One ``log_metrics`` call per point ``due(point)`` accepts: ``scaling/loss``, ``scaling/lr``, ``scaling/lr_sum``,
    ``scaling/flops``, ``scaling/samples``, ``scaling/tokens`` (when counted) and, once a fit exists,
    ``scaling/pred_final_loss/low/high``. Returns the last logged step (0 if none).

    Why the step's own loss and LR: with them on one row, a logger's file alone (a ``CSVLogger``'s
    ``metrics.csv``, a TensorBoard directory) is enough to fit the run later (``scaling_callback.io``).
    """
    last = 0
    for point in points:
        if not due(point):
            continue
        metrics = {"scaling/loss": point.loss, "scaling/lr": point.lr, "scaling/lr_sum": point.lr_sum,
                   "scaling/flops": point.flops, "scaling/samples": float(point.samples)}
        if point.tokens is not None:
            metrics["scaling/tokens"] = float(point.tokens)
        if fit is not None:
            metrics |= {f"scaling/{key}": float(fit.get(key, math.nan)) for key in PREDICTIONS}
        for logger in loggers:
            logger.log_metrics(metrics, step=point.step)
        last = point.step
    return last
