"""A sweep with a held-out evaluation: every run evaluated at its cadence and at its end, and those are its finals."""

from __future__ import annotations

import pytest
import yaml

from scaling_callback.cli import main
from scaling_callback.report.sweep_data import final_points
from scaling_callback.store import SweepStore

CONFIG = {
    "name": "evaluated",
    "model": {"factory": "tiny_lm", "args": {"vocab_size": 16, "seq_len": 8, "batch_size": 4}},
    "grid": {"sizes": [{"d_model": 8, "n_layers": 1}], "tokens": [1120], "seeds": [0, 1]},
    "optimizer": {"peak_lr": 0.01, "warmup_steps": 4},
    "evaluation": {"tokens": 700, "every_n_steps": 15},
    "callback": {"fit_every_n_steps": 10},
    "stopping": {"policy": "none"},
    "workers": 1,
}


@pytest.mark.slow
def test_every_run_is_evaluated_on_the_same_held_out_tokens_and_its_final_is_that_evaluation(tmp_path):
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(CONFIG))
    out = tmp_path / "out"
    assert main(["sweep", str(path), "--out", str(out), "--no-report"]) == 0
    store = SweepStore(out / "sweep.sqlite")
    try:
        runs = store.runs("evaluated")
        finals = final_points(store, "evaluated").set_index("name")
        for run in runs.itertuples():
            evals = store.evals(run.name)
            losses = evals[evals["name"] == "val_loss"]
            assert losses["step"].tolist() == [15, 30, 35]  # the cadence, then the planned end (1120 / 32 steps)
            tokens = evals[evals["name"] == "val_loss_tokens"]["value"].unique()
            assert tokens.tolist() == [700.0]  # 100 sequences of 7 predicted tokens, for every run and step
            assert run.config["evaluation"] == {"tokens": 700, "every_n_steps": 15, "target_sd": 0.003}
            final = finals.loc[run.name]
            assert final["source"] == "evaluated" and final["loss"] == losses["value"].iloc[-1]
            assert final["loss_sd"] == evals[(evals["name"] == "val_loss_sd") & (evals["step"] == 35)]["value"].iloc[0]
    finally:
        store.close()
