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
    wide = evals[evals["name"].isin(columns)].pivot_table(index="step", columns="name", values="value", aggfunc="last")
    wide = wide.reindex(columns=list(columns)).rename(columns=columns)
    return wide.dropna(subset=["loss"]).reset_index().rename_axis(columns=None)


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
