"""Learning-rate schedules as the per-run laws see them.

Convention of Luo et al. 2025 (MPL, §3): optimizer steps 1..W are warmup and enter the laws only
through their LR sum S_W; t = 1 is the first post-warmup step and η_0 is the peak LR. A step
number elsewhere in this package is the *absolute* optimizer step (warmup included), as Lightning's
``global_step`` and logged CSVs count it: t = step − W.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from scaling_callback.errors import InputError


@dataclass(frozen=True)
class Schedule:
    """Per-step LRs after warmup (``lrs[t-1]`` is η_t), the peak LR η_0 and the warmup sum S_W."""

    lrs: np.ndarray
    peak_lr: float
    warmup_sum: float
    warmup_steps: int = 0

    def __post_init__(self) -> None:
        lrs = np.asarray(self.lrs, dtype=float)
        if lrs.ndim != 1:
            raise InputError(f"schedule LRs must be one-dimensional, got shape {lrs.shape}")
        if not np.all(np.isfinite(lrs)) or np.any(lrs < 0):
            raise InputError("schedule LRs must be finite and non-negative")
        if not (np.isfinite(self.peak_lr) and self.peak_lr > 0):
            raise InputError(f"peak LR must be positive, got {self.peak_lr!r}")
        if not (np.isfinite(self.warmup_sum) and self.warmup_sum >= 0):
            raise InputError(f"warmup LR sum S_W must be non-negative, got {self.warmup_sum!r}")
        if self.warmup_steps < 0:
            raise InputError(f"warmup steps must be non-negative, got {self.warmup_steps!r}")
        object.__setattr__(self, "lrs", lrs)

    @property
    def total_steps(self) -> int:
        """Absolute step of the schedule's last step (warmup included)."""
        return self.warmup_steps + len(self.lrs)

    @property
    def lr_sum(self) -> np.ndarray:
        """S1(t) for t = 0..T (post-warmup sums; index 0 is 0)."""
        return np.concatenate([[0.0], np.cumsum(self.lrs)])

    def decrease_until(self, steps: np.ndarray | int) -> np.ndarray:
        """LR decreases summed (rises do not count) up to absolute ``steps``, as a fraction of the peak LR.

        What identifies a drop term: the MPL's loss drop is B times LR decreases (Luo et al. 2025, eq. 2).
        """
        previous = np.concatenate([[self.peak_lr], self.lrs[:-1]])
        fallen = np.concatenate([[0.0], np.cumsum(np.maximum(previous - self.lrs, 0.0))]) / self.peak_lr
        index = np.clip(np.asarray(steps, dtype=np.int64) - self.warmup_steps, 0, len(self.lrs))
        return fallen[index]

    def truncated(self, total_steps: int) -> "Schedule":
        """The same schedule ending at absolute step ``total_steps``."""
        return Schedule(self.lrs[: max(total_steps - self.warmup_steps, 0)], self.peak_lr, self.warmup_sum, self.warmup_steps)

    def post_warmup_steps(self, steps: np.ndarray) -> np.ndarray:
        """Convert absolute steps to post-warmup t, checking they lie inside the schedule."""
        t = np.asarray(steps, dtype=np.int64) - self.warmup_steps
        if t.size and (t.min() < 0 or t.max() > len(self.lrs)):
            raise InputError(
                f"steps {int(np.min(steps))}..{int(np.max(steps))} fall outside the schedule "
                f"(warmup {self.warmup_steps}, last step {self.total_steps})"
            )
        return t

    @classmethod
    def from_per_step(cls, lrs: np.ndarray, warmup_steps: int | None = None) -> "Schedule":
        """Build from the LR used by every absolute step 1..T (``lrs[i]`` is the LR of step i+1).

        ``warmup_steps=None`` detects a warmup as the rising run of LRs up to the first peak.
        """
        lrs = np.asarray(lrs, dtype=float)
        if lrs.size == 0:
            raise InputError("an LR schedule needs at least one step")
        if warmup_steps is None:
            warmup_steps = _detect_warmup(lrs)
        if not 0 <= warmup_steps <= lrs.size:
            raise InputError(f"warmup_steps={warmup_steps} is outside 0..{lrs.size}")
        warmup = lrs[:warmup_steps]
        peak = float(warmup[-1]) if warmup_steps else float(lrs[0])
        if peak <= 0:
            peak = float(lrs.max())
        return cls(lrs[warmup_steps:], peak, float(warmup.sum()), warmup_steps)

    @classmethod
    def from_logged(
        cls,
        steps: np.ndarray,
        lrs: np.ndarray,
        warmup_steps: int = 0,
        warmup_sum: float | None = None,
        total_steps: int | None = None,
    ) -> "Schedule":
        """Rebuild per-step LRs from sparse logged ``(step, lr)`` pairs by linear interpolation.

        The warmup is linear from 0 to the first logged LR over ``warmup_steps`` steps, unless
        ``warmup_sum`` gives S_W directly. LRs before the first or after the last logged step
        are held constant. ``total_steps`` defaults to the last logged step.
        """
        steps = np.asarray(steps, dtype=float)
        lrs = np.asarray(lrs, dtype=float)
        if steps.size == 0 or steps.shape != lrs.shape:
            raise InputError("logged schedule needs matching, non-empty step and LR arrays")
        order = np.argsort(steps, kind="stable")
        steps, lrs = steps[order], lrs[order]
        if np.any(np.diff(steps) == 0):
            raise InputError(f"logged schedule repeats step {int(steps[np.flatnonzero(np.diff(steps) == 0)[0]])}")
        end = int(steps[-1]) if total_steps is None else int(total_steps)
        if end <= warmup_steps:
            raise InputError(f"schedule ends at step {end}, not after the warmup of {warmup_steps} steps")
        after = np.arange(warmup_steps + 1, end + 1, dtype=float)
        post = np.interp(after, steps, lrs)
        peak = float(np.interp(float(warmup_steps), steps, lrs)) if warmup_steps else float(post[0])
        if warmup_sum is None:
            warmup_sum = linear_warmup_sum(peak, warmup_steps)
        return cls(post, peak, float(warmup_sum), warmup_steps)


def linear_warmup_sum(peak_lr: float, warmup_steps: int) -> float:
    """S_W of a linear warmup whose step i (1..W) uses η_max·i/W: η_max·(W+1)/2."""
    return float(peak_lr) * (warmup_steps + 1) / 2.0 if warmup_steps > 0 else 0.0


def _detect_warmup(lrs: np.ndarray) -> int:
    """Number of leading steps whose LR strictly rises before the first peak (0 when it does not rise)."""
    rises = np.diff(lrs) > 0
    if lrs.size < 2 or not rises[0]:
        return 0
    first_flat_or_fall = np.flatnonzero(~rises)
    return int(first_flat_or_fall[0] + 1) if first_flat_or_fall.size else int(lrs.size)
