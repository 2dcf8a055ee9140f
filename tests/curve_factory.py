"""Synthetic loss curves from known law parameters, for the per-run law tests."""

from __future__ import annotations

import numpy as np

from scaling_callback.fitting.curves import Curve
from scaling_callback.laws.loss_curves import CURVE_LAWS
from scaling_callback.laws.lr_terms import lr_terms
from scaling_callback.laws.schedule import Schedule

PEAK, FINAL, WARMUP, TOTAL, EVERY = 3e-4, 3e-5, 200, 4000, 40
TRUE_MPL = {"L0": 3.0, "A": 0.6, "alpha": 0.45, "B": 500.0, "C": 2.0, "beta": 0.55, "gamma": 0.5}


def per_step_lrs(kind: str, total: int = TOTAL, warmup: int = WARMUP) -> np.ndarray:
    """LR used by each absolute step 1..total: linear warmup, then the named schedule."""
    steps = np.arange(1, total + 1)
    t = np.clip(steps - warmup, 0, None)
    span = total - warmup
    if kind == "constant":
        lrs = np.full(total, PEAK)
    elif kind == "cosine":
        lrs = FINAL + 0.5 * (PEAK - FINAL) * (1 + np.cos(np.pi * t / span))
    elif kind == "wsd":  # stable, then a linear decay over the last 20 %
        start = warmup + int(0.8 * span)
        lrs = np.where(steps <= start, PEAK, PEAK + (FINAL - PEAK) * (steps - start) / (total - start))
    elif kind == "two_stage":
        lrs = np.where(steps <= warmup + span // 3, PEAK, 0.3 * PEAK)
    else:
        raise ValueError(kind)
    lrs = lrs.astype(float)
    lrs[:warmup] = PEAK * steps[:warmup] / warmup
    return lrs


def synthetic_curve(
    kind: str, noise: float = 0.0, seed: int = 0, law: str = "mpl", params: dict | None = None
) -> Curve:
    """A curve of ``law`` with ``params`` on schedule ``kind``, observed every EVERY steps, with log-normal noise."""
    schedule = Schedule.from_per_step(per_step_lrs(kind), WARMUP)
    steps = np.arange(WARMUP, TOTAL + 1, EVERY)
    chosen = CURVE_LAWS[law]
    values = params or TRUE_MPL
    loss = chosen.loss(np.array([values[n] for n in chosen.param_names]), lr_terms([schedule], [steps]))
    loss = loss * np.exp(noise * np.random.default_rng(seed).standard_normal(loss.size))
    return Curve(schedule, steps, loss, kind)
