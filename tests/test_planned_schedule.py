"""Planned LRs from a copy of the scheduler, Lightning's stepping rule, and recorded+planned merging."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from scaling_callback.callback.planned_schedule import PlannedSchedule, combined_lrs, lightning_stepping_rule, plan_lrs


def _optimizer(lr: float = 1e-3) -> torch.optim.Optimizer:
    return torch.optim.AdamW([torch.nn.Parameter(torch.zeros(3))], lr=lr)


def _real_lrs(optimizer, scheduler, n: int) -> list[float]:
    lrs = []
    for _ in range(n):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return lrs


@pytest.mark.parametrize("kind", ["warmup_cosine", "onecycle", "lambda"])
def test_plan_from_mid_run_matches_the_real_schedule(kind):
    optimizer = _optimizer()
    if kind == "warmup_cosine":
        warm = torch.optim.lr_scheduler.LinearLR(optimizer, 0.01, 1.0, total_iters=10)
        cosine = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=90, eta_min=1e-5)
        scheduler = torch.optim.lr_scheduler.SequentialLR(optimizer, [warm, cosine], milestones=[10])
    elif kind == "onecycle":
        scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=1e-2, total_steps=100)
    else:
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda i: 1 / math.sqrt(i + 1))
    _real_lrs(optimizer, scheduler, 7)
    weights_before = optimizer.param_groups[0]["params"][0].clone()
    plan = plan_lrs(scheduler, optimizer, start_step=7, end_step=100)
    assert plan.first_step == 8 and plan.lrs.size == 93
    np.testing.assert_array_equal(plan.lrs, _real_lrs(optimizer, scheduler, 93))
    assert torch.equal(weights_before, optimizer.param_groups[0]["params"][0])


def test_lambda_closed_form_follows_the_stepping_rule_exactly():
    optimizer = _optimizer()
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda i: 0.5**i)
    _real_lrs(optimizer, scheduler, 3)
    every_third = lambda step: step % 3 == 0  # noqa: E731 - a stepping rule
    plan = plan_lrs(scheduler, optimizer, start_step=3, end_step=12, steps_scheduler_after=every_third)
    assert "closed form" in plan.note
    expected = []
    for step in range(4, 13):
        expected.append(optimizer.param_groups[0]["lr"])
        if every_third(step):
            scheduler.step()
    assert plan.lrs.tolist() == expected


def test_plan_without_scheduler_or_with_plateau_holds_the_lr():
    optimizer = _optimizer(3e-4)
    assert plan_lrs(None, optimizer, start_step=0, end_step=5).lrs.tolist() == [3e-4] * 5
    plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer)
    plan = plan_lrs(plateau, optimizer, start_step=2, end_step=4)
    assert plan.lrs.tolist() == [3e-4] * 2 and "ReduceLROnPlateau" in plan.note


def test_uncopyable_scheduler_holds_the_lr():
    optimizer = _optimizer()
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
    scheduler.uncopyable = (x for x in [])  # generators cannot be deep-copied
    plan = plan_lrs(scheduler, optimizer, start_step=0, end_step=3)
    assert plan.lrs.tolist() == [1e-3] * 3 and "could not be copied" in plan.note


def test_lightning_stepping_rule():
    every_step = lightning_stepping_rule("step", 1, batches_per_epoch=10, accumulate=2)
    assert all(every_step(s) for s in range(1, 20))
    per_epoch = lightning_stepping_rule("epoch", 1, batches_per_epoch=10, accumulate=2)  # 5 steps per epoch
    assert [s for s in range(1, 16) if per_epoch(s)] == [5, 10, 15]
    every_other = lightning_stepping_rule("step", 2, batches_per_epoch=5, accumulate=1)  # batch index 2, 4 of 5
    assert [s for s in range(1, 11) if every_other(s)] == [2, 4, 7, 9]
    endless = lightning_stepping_rule("epoch", 1, batches_per_epoch=math.inf, accumulate=1)
    assert not any(endless(s) for s in range(1, 100))


def test_combined_lrs_prefers_recorded_and_fills_gaps():
    plan = PlannedSchedule(first_step=3, lrs=np.array([3.0, 40.0, 5.0, 6.0]), note="")
    merged = combined_lrs(np.array([1.0, np.nan, 3.0, 4.0]), plan, total_steps=6)
    np.testing.assert_array_equal(merged, [1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    np.testing.assert_array_equal(combined_lrs(np.array([1.0, 2.0]), None, None), [1.0, 2.0])
