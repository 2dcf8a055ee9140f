"""A sweep factory with deliberately poor runs (tests/test_integrations_ray.py): stops any policy must make.

``build`` is the tiny LM factory, except that a size entry may carry ``lr_factor``: runs of that size train
at ``lr_factor`` times the peak LR (the rest of the entry builds the model, so the size has the same N as
its twin without it). At 3 % of the peak LR a run falls clearly behind and the law policy stops it at its
first check, with a probability far below any threshold.
"""

from __future__ import annotations

from scaling_callback.sweep.runs import RunSetup, tiny_lm_factory


def build(size: dict, tokens: float, schedule: dict, seed: int, **args) -> RunSetup:
    size = dict(size)
    factor = float(size.pop("lr_factor", 1.0))
    schedule = schedule | {"peak_lr": schedule["peak_lr"] * factor}
    return tiny_lm_factory(size=size, tokens=tokens, schedule=schedule, seed=seed, **args)
