"""Learning-rate schedules shared by the toy LightningModules (PLRF and tiny LM).

A schedule is a :class:`ScheduleSpec`; :func:`lr_multiplier` turns it into the per-step factor of
the peak LR that ``torch.optim.lr_scheduler.LambdaLR`` expects, and :func:`make_scheduler` wraps it
for an optimizer whose LR is the peak LR. Step ``k`` (0-based, = Lightning's ``global_step`` when
the step runs) uses ``peak_lr * lr_multiplier(spec)(k)``:

- warmup (``k < warmup_steps``): linear, ``(k + 1) / warmup_steps`` (no wasted zero-LR step);
- after warmup, with progress ``p = (k - W) / (max_steps - W - 1)`` clipped to [0, 1] (so the last
  step, ``k = max_steps - 1``, runs at the final LR):
  ``constant``: 1; ``cosine``: ``f + (1 - f)·(1 + cos πp)/2``; ``wsd`` (warmup-stable-decay): 1, then
  a linear decay to ``f`` over the last ``decay_fraction`` of the post-warmup steps; ``two_stage``:
  1 until step ``switch_fraction·max_steps``, then ``f`` (as the MPL paper's two-stage runs),
  with ``f = final_lr_fraction``.
Steps past ``max_steps`` keep the LR of the last step.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

KINDS = ("cosine", "wsd", "constant", "two_stage")


@dataclass(frozen=True)
class ScheduleSpec:
    """What a run's LR does over ``max_steps`` optimizer steps (see the module docstring)."""

    kind: str = "cosine"
    peak_lr: float = 1e-3
    max_steps: int = 1000
    warmup_steps: int = 0
    final_lr_fraction: float = 0.1
    decay_fraction: float = 0.2
    switch_fraction: float = 0.5

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"schedule kind must be one of {', '.join(KINDS)}; got {self.kind!r}")
        if not (self.peak_lr > 0 and math.isfinite(self.peak_lr)):
            raise ValueError(f"peak_lr must be positive and finite; got {self.peak_lr!r}")
        if int(self.max_steps) != self.max_steps or self.max_steps < 1:
            raise ValueError(f"max_steps must be a positive integer; got {self.max_steps!r}")
        if int(self.warmup_steps) != self.warmup_steps or not (0 <= self.warmup_steps < self.max_steps):
            raise ValueError(f"warmup_steps must be an integer in [0, max_steps); got {self.warmup_steps!r}")
        if not (0.0 <= self.final_lr_fraction <= 1.0):
            raise ValueError(f"final_lr_fraction must lie in [0, 1]; got {self.final_lr_fraction!r}")
        if not (0.0 < self.decay_fraction <= 1.0):
            raise ValueError(f"decay_fraction must lie in (0, 1]; got {self.decay_fraction!r}")
        if not (0.0 < self.switch_fraction < 1.0):
            raise ValueError(f"switch_fraction must lie in (0, 1); got {self.switch_fraction!r}")


class LRMultiplier:
    """Picklable per-step factor of the peak LR (a callable object, so ``LambdaLR`` saves it).

    Its state (what ``LambdaLR.state_dict`` saves into checkpoints) holds Python primitives only:
    torch >= 2.6 loads checkpoints with ``weights_only=True``, which refuses a dataclass.
    """

    def __init__(self, spec: ScheduleSpec) -> None:
        self.spec_fields = dataclasses.asdict(spec)
        self._span = max(1, spec.max_steps - spec.warmup_steps - 1)
        self._switch_step = int(round(spec.switch_fraction * spec.max_steps))

    @property
    def spec(self) -> ScheduleSpec:
        return ScheduleSpec(**self.spec_fields)

    def __call__(self, step: int) -> float:
        spec = self.spec
        step = min(int(step), spec.max_steps - 1)
        if step < spec.warmup_steps:
            return (step + 1) / spec.warmup_steps
        progress = min(1.0, (step - spec.warmup_steps) / self._span)
        final = spec.final_lr_fraction
        if spec.kind == "constant":
            return 1.0
        if spec.kind == "cosine":
            return final + (1.0 - final) * 0.5 * (1.0 + math.cos(math.pi * progress))
        if spec.kind == "wsd":
            decay_start = 1.0 - spec.decay_fraction
            if progress <= decay_start:
                return 1.0
            return 1.0 - (1.0 - final) * (progress - decay_start) / spec.decay_fraction
        return 1.0 if step < self._switch_step else final  # two_stage


def lr_multiplier(spec: ScheduleSpec) -> Callable[[int], float]:
    """The factor of ``spec.peak_lr`` used by optimizer step ``k`` (0-based)."""
    return LRMultiplier(spec)


def lr_at(spec: ScheduleSpec, steps: int) -> list[float]:
    """The LRs of the first ``steps`` optimizer steps, e.g. for an exact recursion or a plot."""
    multiplier = lr_multiplier(spec)
    return [spec.peak_lr * multiplier(k) for k in range(steps)]


def make_scheduler(optimizer: torch.optim.Optimizer, spec: ScheduleSpec) -> torch.optim.lr_scheduler.LambdaLR:
    """A per-step ``LambdaLR`` over ``optimizer`` (whose LR must be ``spec.peak_lr``)."""
    for group in optimizer.param_groups:
        if not math.isclose(group["lr"], spec.peak_lr, rel_tol=1e-12):
            raise ValueError(f"optimizer lr {group['lr']!r} differs from the schedule's peak_lr {spec.peak_lr!r}")
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lr_multiplier(spec))


def lightning_optimizer_config(optimizer: torch.optim.Optimizer, spec: ScheduleSpec) -> dict:
    """What ``configure_optimizers`` returns: the optimizer and a scheduler stepped every step."""
    return {
        "optimizer": optimizer,
        "lr_scheduler": {"scheduler": make_scheduler(optimizer, spec), "interval": "step", "frequency": 1},
    }
