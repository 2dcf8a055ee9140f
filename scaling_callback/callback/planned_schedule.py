"""The LRs of steps not yet taken, by stepping a deep copy of the scheduler (docs/reference.md §1).

The copy runs on a throw-away optimizer holding one dummy parameter per group (the real
optimizer, its parameters and its state are never copied or touched), so it costs a few
microseconds per planned step and no memory. ``LambdaLR`` with a plain function (what
``transformers``' warmup/cosine helpers return) is evaluated in closed form instead, as torch
does it (``base_lr * lr_lambda(last_epoch)``), ten times faster. Schedules that depend on metrics
(``ReduceLROnPlateau``) cannot be planned: the current LR is held, and the note says so.

Lightning steps a step-interval scheduler after an optimizer step when the index of the
micro-batch within the epoch (1-based) is a multiple of the scheduler's ``frequency``, and an
epoch-interval scheduler after an epoch's last step when the epoch number (1-based) is one;
:func:`lightning_stepping_rule` reproduces that.
"""

from __future__ import annotations

import copy
import functools
import math
import types
import warnings
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch

from scaling_callback.laws.schedule import Schedule


@dataclass(frozen=True)
class PlannedSchedule:
    """LRs of absolute steps ``first_step .. first_step + len(lrs) - 1`` and how they were obtained."""

    first_step: int
    lrs: np.ndarray
    note: str


class _ThrowAwayOptimizer(torch.optim.Optimizer):
    """An optimizer with the real one's hyper-parameters and one dummy parameter per group; steps do nothing."""

    def __init__(self, groups: list[dict[str, Any]]) -> None:
        super().__init__(groups, defaults={})

    def step(self, closure: Callable[[], float] | None = None) -> None:  # noqa: D102 - nothing to update
        return None


def plan_lrs(
    scheduler: Any,
    optimizer: torch.optim.Optimizer,
    *,
    start_step: int,
    end_step: int,
    group: int = 0,
    steps_scheduler_after: Callable[[int], bool] = lambda step: True,
) -> PlannedSchedule:
    """LRs of steps ``start_step + 1 .. end_step`` of param group ``group``.

    ``optimizer`` is the one ``scheduler`` drives, in its current state (its LR is the next step's);
    ``steps_scheduler_after(step)`` says whether the scheduler is stepped after optimizer step ``step``.
    Without a scheduler, or with one that cannot be copied or planned, the current LR is held.
    """
    n_steps = max(int(end_step) - int(start_step), 0)
    current = float(optimizer.param_groups[group]["lr"])
    if scheduler is None:
        return PlannedSchedule(start_step + 1, np.full(n_steps, current), "no scheduler: constant LR")
    if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
        return PlannedSchedule(start_step + 1, np.full(n_steps, current), "ReduceLROnPlateau: future LRs unknown, current LR held")
    if _closed_form_lambda(scheduler, group):
        lmbda, base, epoch = scheduler.lr_lambdas[group], scheduler.base_lrs[group], scheduler.last_epoch
        lrs = np.empty(n_steps)
        for i in range(n_steps):
            lrs[i] = base * lmbda(epoch)
            epoch += steps_scheduler_after(start_step + 1 + i)
        return PlannedSchedule(start_step + 1, lrs, "LambdaLR evaluated in closed form: base_lr * lr_lambda(epoch)")
    try:
        clone, fake = _copy_on_throw_away(scheduler, optimizer)
    except Exception as error:  # noqa: BLE001 - an uncopyable scheduler must not stop training
        note = f"scheduler could not be copied ({type(error).__name__}: {error}); current LR held"
        return PlannedSchedule(start_step + 1, np.full(n_steps, current), note)
    lrs = np.empty(n_steps)
    params = fake.param_groups[group]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "lr_scheduler.step() before optimizer.step()" and friends
        for i in range(n_steps):
            lrs[i] = float(params["lr"])
            if steps_scheduler_after(start_step + 1 + i):
                clone.step()
    return PlannedSchedule(start_step + 1, lrs, f"stepped a copy of {type(scheduler).__name__}")


def _closed_form_lambda(scheduler: Any, group: int) -> bool:
    """A LambdaLR whose lambda is a plain function and whose base LR a float: its LRs need no stepping."""
    if type(scheduler) is not torch.optim.lr_scheduler.LambdaLR:
        return False
    lmbda = scheduler.lr_lambdas[group]
    return isinstance(lmbda, (types.FunctionType, functools.partial)) and isinstance(scheduler.base_lrs[group], float)


def _copy_on_throw_away(scheduler: Any, optimizer: torch.optim.Optimizer) -> tuple[Any, torch.optim.Optimizer]:
    groups = []
    for real in optimizer.param_groups:
        hyper = {k: copy.deepcopy(v) for k, v in real.items() if k != "params"}
        groups.append({"params": [torch.zeros(1, requires_grad=True)], **hyper})
    fake = _ThrowAwayOptimizer(groups)
    memo = {id(optimizer): fake}
    for real in optimizer.param_groups:  # never copy real parameters, even via stray references
        for parameter in real["params"]:
            memo[id(parameter)] = parameter
    return copy.deepcopy(scheduler, memo), fake


def lightning_stepping_rule(
    interval: str,
    frequency: int,
    batches_per_epoch: float,
    accumulate: int,
) -> Callable[[int], bool]:
    """Whether Lightning steps the scheduler after absolute optimizer step ``step`` (epochs start at step multiples).

    Args:
        interval: the scheduler config's ``"step"`` or ``"epoch"``.
        frequency: the scheduler config's ``frequency``.
        batches_per_epoch: ``trainer.num_training_batches`` (micro-batches; may be inf).
        accumulate: ``trainer.accumulate_grad_batches``.
    """
    frequency = max(int(frequency), 1)
    if not math.isfinite(batches_per_epoch) or batches_per_epoch <= 0:
        if interval == "epoch":
            return lambda step: False  # an endless epoch never ends
        return lambda step: (step * accumulate) % frequency == 0
    batches = int(batches_per_epoch)
    steps_per_epoch = math.ceil(batches / accumulate)

    def after(step: int) -> bool:
        epoch, within = divmod(step - 1, steps_per_epoch)  # within: 0-based step inside its epoch
        if interval == "epoch":
            return within == steps_per_epoch - 1 and (epoch + 1) % frequency == 0
        micro_batch = min((within + 1) * accumulate, batches)
        return micro_batch % frequency == 0

    return after


def combined_lrs(recorded: np.ndarray, planned: PlannedSchedule | None, total_steps: int | None) -> np.ndarray:
    """Per-step LRs of steps 1..T: recorded where a step has happened, planned after it.

    ``recorded[i]`` is the LR of step i+1 (NaN where unknown, filled from the nearest known LR).
    Without a plan the schedule ends at the last recorded step.
    """
    recorded = np.asarray(recorded, dtype=float)
    if planned is None or total_steps is None:
        lrs = recorded.copy()
    else:
        end = max(int(total_steps), recorded.size)
        lrs = np.full(end, np.nan)
        lrs[: recorded.size] = recorded
        first = planned.first_step - 1
        future = slice(max(recorded.size, first), min(end, first + planned.lrs.size))
        lrs[future] = planned.lrs[future.start - first : future.stop - first]
    return _fill_gaps(lrs)


def _fill_gaps(lrs: np.ndarray) -> np.ndarray:
    known = np.flatnonzero(np.isfinite(lrs))
    if known.size == 0 or known.size == lrs.size:
        return lrs
    return np.interp(np.arange(lrs.size), known, lrs[known])


def warmup_steps_of(lrs: np.ndarray) -> int:
    """Warmup length of a per-step schedule as the per-run laws will see it (0 when unknown)."""
    try:
        return Schedule.from_per_step(lrs).warmup_steps if lrs.size and np.all(np.isfinite(lrs)) else 0
    except Exception:  # noqa: BLE001 - e.g. an all-zero schedule; the fit will report it
        return 0
