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


# One run per model size whose fully decayed finals follow a known L(N, D): MPL curves with
# L0(N) = E + A/N^alpha + (the saturated drop of a full decay) and the power term in S1 standing for B/D^beta.
FAMILY = {"E": 1.8, "A": 400.0, "alpha": 0.34, "B": 1000.0, "beta": 0.37}
FAMILY_DROP = {"B": 400.0, "C": 3.0, "beta": 0.5, "gamma": 0.5}
FAMILY_SIZES = (2e7, 5e7, 1.2e8, 3e8)
FAMILY_TOKENS_PER_STEP, FAMILY_WARMUP, FAMILY_STEPS, FAMILY_EVERY = 2**19, 100, 4000, 25


def family_params(n_params: float) -> dict:
    """The MPL parameters of size ``n_params`` of the family (docstring of the block above)."""
    saturated = FAMILY_DROP["B"] * PEAK * (1.0 - FINAL / PEAK)
    power = FAMILY["B"] * (PEAK / FAMILY_TOKENS_PER_STEP) ** FAMILY["beta"]
    l0 = FAMILY["E"] + FAMILY["A"] / n_params ** FAMILY["alpha"] + saturated
    return {"L0": l0, "A": power, "alpha": FAMILY["beta"], **FAMILY_DROP}


def family_loss(n_params: float, schedule: Schedule, steps: np.ndarray) -> np.ndarray:
    """Noise-free loss of size ``n_params`` at absolute ``steps`` of ``schedule``."""
    law = CURVE_LAWS["mpl"]
    params = family_params(n_params)
    return law.loss(np.array([params[n] for n in law.param_names]), lr_terms([schedule], [np.asarray(steps)]))


def family_lrs(kind: str = "wsd", total: int = FAMILY_STEPS) -> np.ndarray:
    """Per-step LRs of a family run: linear warmup, then constant or stable with a 20 % linear decay to FINAL."""
    steps = np.arange(1, total + 1)
    start = FAMILY_WARMUP + int(round(0.8 * (total - FAMILY_WARMUP)))
    if kind == "constant":
        lrs = np.full(total, PEAK)
    else:
        lrs = np.where(steps <= start, PEAK, PEAK - (PEAK - FINAL) * (steps - start) / (total - start))
    lrs[:FAMILY_WARMUP] = PEAK * steps[:FAMILY_WARMUP] / FAMILY_WARMUP
    return lrs


def family_runs(kind: str = "wsd", noise: float = 0.003, seed: int = 0, sizes=FAMILY_SIZES, total: int = FAMILY_STEPS):
    """One run per size of the family, logged every FAMILY_EVERY steps with log-normal noise."""
    from scaling_callback.fitting.decayed_finals import SizeRun

    schedule = Schedule.from_per_step(family_lrs(kind, total), FAMILY_WARMUP)
    steps = np.arange(FAMILY_WARMUP + FAMILY_EVERY, total + 1, FAMILY_EVERY)
    rng = np.random.default_rng(seed)
    runs = []
    for n in sizes:
        loss = family_loss(n, schedule, steps) * np.exp(noise * rng.standard_normal(steps.size))
        runs.append(SizeRun(f"n{n:.2g}", n, schedule, steps, loss, FAMILY_TOKENS_PER_STEP))
    return runs
