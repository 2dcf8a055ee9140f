"""A run's held-out evaluations from the store's evals table, and the one at its last step as its final."""

from __future__ import annotations

import math

import pandas as pd

from scaling_callback.store import SweepStore
from scaling_callback.store.held_out import held_out_curve, held_out_final


def test_the_evaluation_at_the_last_step_is_the_final_with_its_standard_error(tmp_path):
    store = SweepStore(tmp_path / "s.sqlite")
    store.register_run("r", sweep="s")
    store.add_evals("r", 50, {"val_loss": 3.9, "val_loss_sd": 0.004, "val_loss_tokens": 20_000})
    store.add_evals("r", 100, {"val_loss": 3.7, "val_loss_sd": 0.003, "val_loss_tokens": 20_000, "val_acc": 0.4})
    evals = store.evals("r")
    store.close()
    curve = held_out_curve(evals)
    assert curve["step"].tolist() == [50, 100] and curve["loss"].tolist() == [3.9, 3.7]
    final = held_out_final(evals, 100)
    assert (final.loss, final.sd, final.source) == (3.7, 0.003, "evaluated") and "20,000" in final.method
    assert held_out_final(evals, 120) is None  # no evaluation at the run's last step: no evaluated final


def test_a_model_that_logs_only_val_loss_gives_a_final_without_standard_error():
    evals = pd.DataFrame({"step": [10], "name": ["val_loss"], "value": [2.5]})
    final = held_out_final(evals, 10)
    assert final.loss == 2.5 and final.sd is None
    other = pd.DataFrame({"step": [10], "name": ["val_perplexity"], "value": [12.0]})
    assert held_out_final(other, 10) is None and held_out_curve(other).empty
    assert held_out_final(pd.DataFrame(columns=["step", "name", "value"]), 10) is None
    nan = pd.DataFrame({"step": [10], "name": ["val_loss"], "value": [math.nan]})
    assert held_out_final(nan, 10) is None
