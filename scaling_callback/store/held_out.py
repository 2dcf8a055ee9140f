"""A run's held-out evaluations as the store keeps them (table ``evals``), and its evaluated final.

The callback records each evaluation's metrics by name at the optimizer step it ran after. A
held-out evaluation is three of them: ``val_loss`` (mean loss over the held-out tokens),
``val_loss_sd`` (its standard error, measured by the evaluation) and ``val_loss_tokens`` (how many
tokens it scored). The sweep's toy models log exactly these; a model of your own that logs
``val_loss`` alone still gives evaluated finals, without their standard error.
"""

from __future__ import annotations

import math

import pandas as pd

from scaling_callback.fitting.run_final import RunFinal

HELD_OUT_LOSS = "val_loss"
HELD_OUT_SD = "val_loss_sd"
HELD_OUT_TOKENS = "val_loss_tokens"
HELD_OUT_METRICS = [HELD_OUT_LOSS, HELD_OUT_SD, HELD_OUT_TOKENS]


def held_out_curve(evals: pd.DataFrame) -> pd.DataFrame:
    """One row per evaluation step: ``step, loss, sd, tokens`` (NaN where a metric was not recorded)."""
    columns = {HELD_OUT_LOSS: "loss", HELD_OUT_SD: "sd", HELD_OUT_TOKENS: "tokens"}
    if evals is None or evals.empty or HELD_OUT_LOSS not in set(evals["name"]):
        return pd.DataFrame(columns=["step", *columns.values()])
    # a run has a handful of evaluations: plain loops, where pandas' pivot_table cost 11 ms a run (the sweep's
    # progress line reads every run's every 2 s); the last recorded finite value of each metric at each step wins
    by_step: dict[int, dict[str, float]] = {}
    for step, name, value in zip(evals["step"], evals["name"], evals["value"]):
        if name in columns and value is not None and math.isfinite(float(value)):
            by_step.setdefault(int(step), {})[columns[name]] = float(value)
    rows = [
        {"step": step, **{c: metrics.get(c, math.nan) for c in columns.values()}}
        for step, metrics in sorted(by_step.items())
        if "loss" in metrics
    ]
    return pd.DataFrame(rows, columns=["step", *columns.values()])


def held_out_final(evals: pd.DataFrame, last_step: int) -> RunFinal | None:
    """The evaluation at the run's ``last_step`` as its final (None when there is none at that step)."""
    curve = held_out_curve(evals)
    at_end = curve[curve["step"] == int(last_step)]
    if at_end.empty:
        return None
    row = at_end.iloc[-1]
    loss, sd, tokens = float(row["loss"]), float(row["sd"]), float(row["tokens"])
    if not math.isfinite(loss):
        return None
    scored = f"{int(tokens):,} held-out tokens" if math.isfinite(tokens) else "held-out tokens"
    return RunFinal(loss, sd if math.isfinite(sd) else None, "evaluated", f"mean loss on {scored} at step {last_step}")
