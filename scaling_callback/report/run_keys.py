"""How the report tells runs apart: schedule kind, peak LR and planned budget of each run."""

from __future__ import annotations

import math

import numpy as np


def peak_lr(config: dict | None, planned_lrs: np.ndarray | None) -> float | None:
    """The run's peak LR: the config's ``peak_lr`` (sweep runner), else the largest planned LR."""
    value = (config or {}).get("peak_lr")
    if isinstance(value, (int, float)) and math.isfinite(value) and value > 0:
        return float(value)
    if planned_lrs is not None and len(planned_lrs) and np.nanmax(planned_lrs) > 0:
        return float(np.nanmax(planned_lrs))
    return None


def schedule_kind(config: dict | None) -> str:
    """The schedule's name from the run config (``schedule``), or 'schedule' when it was not recorded."""
    kind = (config or {}).get("schedule")
    return str(kind) if kind else "schedule"


def planned_tokens(config: dict | None, max_steps: int, last_step: int, last_tokens: float | None) -> float | None:
    """Planned token (or sample) budget: the config's ``tokens``, else the curve's tokens per step × max_steps."""
    value = (config or {}).get("tokens")
    if isinstance(value, (int, float)) and math.isfinite(value) and value > 0:
        return float(value)
    if last_tokens is not None and math.isfinite(last_tokens) and last_tokens > 0 and last_step > 0 and max_steps:
        return float(last_tokens) / last_step * max_steps
    return None
