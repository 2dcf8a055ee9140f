"""Synthetic compute sweeps from a known L(N, D): check that a fit recovers what generated the data.

Why: a fitting procedure earns trust by recovering known parameters at the sweep sizes and noise
levels users actually have (tens to hundreds of runs, 1–2 % loss noise). The design follows
Hoffmann et al. 2022's IsoFLOP sweeps: several budgets, model sizes log-spaced around each budget's
optimum, multiplicative log-normal noise on the loss.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from scaling_callback.laws.chinchilla import REPLICATION_PARAMS, chinchilla_loss, compute_optimal

#: Chinchilla's IsoFLOP budgets (Hoffmann et al. 2022, Fig. 3): 6e18 … 3e21 FLOPs.
CHINCHILLA_BUDGETS = (6e18, 1e19, 3e19, 6e19, 1e20, 3e20, 6e20, 1e21, 3e21)


def isoflop_sweep(
    n_runs: int,
    params: Mapping[str, float] = REPLICATION_PARAMS,
    budgets: tuple[float, ...] = CHINCHILLA_BUDGETS,
    half_width: float = 1.8,
    noise: float = 0.015,
    seed: int = 0,
    flops_per_param_token: float = 6.0,
) -> pd.DataFrame:
    """`n_runs` runs spread over `budgets`; each budget's sizes span ±`half_width` in ln N around its optimum.

    Returns columns run, params, tokens, flops, loss (loss = L(N, D)·exp(ε), ε ~ N(0, noise²)).
    """
    rng = np.random.default_rng(seed)
    per_budget = np.diff(np.linspace(0, n_runs, len(budgets) + 1).round().astype(int))
    rows = []
    for budget, count in zip(budgets, per_budget):
        if count == 0:
            continue
        centre = np.log(compute_optimal(budget, **params, flops_per_param_token=flops_per_param_token).n_opt)
        offsets = np.linspace(-half_width, half_width, count) if count > 1 else np.zeros(1)
        for n in np.exp(centre + offsets):
            rows.append((budget, n, budget / (flops_per_param_token * n)))
    flops, n, d = (np.array(column) for column in zip(*rows))
    loss = chinchilla_loss(n, d, **params) * np.exp(rng.normal(0.0, noise, n.size))
    return pd.DataFrame({"run": np.arange(n.size), "params": n, "tokens": d, "flops": flops, "loss": loss})


def training_curves(
    sizes: np.ndarray,
    max_tokens: float,
    n_checkpoints: int = 30,
    params: Mapping[str, float] = REPLICATION_PARAMS,
    noise: float = 0.003,
    seed: int = 0,
    flops_per_param_token: float = 6.0,
) -> pd.DataFrame:
    """Loss along training for each size (checkpoints log-spaced up to `max_tokens`), as L(N, D_t)·exp(ε).

    A stand-in for real curves (it ignores learning-rate schedule effects); columns run, params,
    tokens, flops, loss.
    """
    rng = np.random.default_rng(seed)
    tokens = np.exp(np.linspace(np.log(max_tokens / 300.0), np.log(max_tokens), n_checkpoints))
    frames = []
    for run, n in enumerate(np.asarray(sizes, dtype=float)):
        loss = chinchilla_loss(n, tokens, **params) * np.exp(rng.normal(0.0, noise, tokens.size))
        frames.append(
            pd.DataFrame(
                {"run": run, "params": n, "tokens": tokens, "flops": flops_per_param_token * n * tokens, "loss": loss}
            )
        )
    return pd.concat(frames, ignore_index=True)
