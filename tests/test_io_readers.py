"""Importers on files written by the real libraries: a Lightning run (CSVLogger, TensorBoardLogger), W&B, a store."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from scaling_callback.errors import InputError
from scaling_callback.io import ColumnMap, curves_from_frame, read_runs
from scaling_callback.store import SweepStore
from tests.lightning_logs_factory import EVERY, PEAK, STEPS, WARMUP, lr_factor, train


@pytest.fixture(scope="module")
def logs(tmp_path_factory):
    return train(tmp_path_factory.mktemp("lightning"))


def expected_lr(step: int) -> float:
    return PEAK * lr_factor(step - 1)  # the LR the step-th optimizer step used


@pytest.mark.parametrize("source, key", [("lightning-csv", "csv"), ("tensorboard", "tb")])
def test_lightning_logs_read_on_optimizer_steps_with_the_store_values(logs, source, key):
    frame = read_runs(logs[key], source)
    assert frame["run"].unique().tolist() == ["model/v0"]
    rows = frame[np.isfinite(frame["loss"])]
    assert rows["step"].tolist() == list(range(EVERY, STEPS + 1, EVERY))  # self.log's step + 1: optimizer steps done
    points = SweepStore(logs["store"]).points("model-v0").set_index("step").loc[rows["step"]]
    tolerance = 1e-6 if source == "tensorboard" else 1e-12  # TensorBoard stores float32
    np.testing.assert_allclose(rows["loss"], points["loss"], rtol=tolerance)
    np.testing.assert_allclose(rows["lr"], [expected_lr(s) for s in rows["step"]], rtol=tolerance)
    np.testing.assert_allclose(rows["flops"], points["flops"], rtol=tolerance)
    np.testing.assert_allclose(rows["lr_sum"], points["lr_sum"], rtol=tolerance)
    assert frame.attrs["columns"]["model/v0"]["loss"] == "train_loss" and frame.attrs["step_offset"] == 1
    assert "val_loss" in frame.columns and frame["val_loss"].notna().sum() >= 5


def test_chosen_loss_and_lr_names_and_derived_lr(logs):
    frame = read_runs(logs["csv"], "lightning-csv", ColumnMap(loss="val_loss", lr="lr-SGD"))
    rows = frame[np.isfinite(frame["loss"])]
    assert rows["step"].tolist() == list(range(40, STEPS + 1, 40))
    assert frame["lr"].notna().all()  # LR-only rows keep the schedule between validation points
    raw = pd.read_csv(logs["csv"] / "model" / "v0" / "metrics.csv")
    raw = raw.drop(columns=[c for c in raw.columns if c.startswith("lr-")] + ["scaling/lr"])
    raw.to_csv(logs["csv"].parent / "no_lr.csv", index=False)
    derived = read_runs(logs["csv"].parent / "no_lr.csv", "lightning-csv")  # LR from differences of scaling/lr_sum
    steps = derived["step"].to_numpy()
    assert derived["run"].unique().tolist() == [
        logs["csv"].parent.name
    ]  # a lone file: the run is named after its folder
    assert derived.attrs["columns"][logs["csv"].parent.name]["lr"].startswith("derived")
    smooth = steps >= WARMUP + EVERY  # interval means smooth the warmup's kink; elsewhere they track the LR
    np.testing.assert_allclose(derived["lr"][smooth], [expected_lr(s) for s in steps[smooth]], rtol=0.02)


def test_tensorboard_summary_writer_without_lightning(tmp_path):
    from torch.utils.tensorboard import SummaryWriter

    for name, scale in (("small", 1.0), ("large", 0.5)):
        with SummaryWriter(tmp_path / name) as writer:
            for step in range(0, 101, 5):
                writer.add_scalar("train/loss", scale * (2.0 + 5.0 / (step + 1)), step)
                writer.add_scalar("train/learning_rate", 1e-3, step)
    frame = read_runs(tmp_path, "tensorboard")
    assert sorted(frame["run"].unique()) == ["large", "small"] and frame.attrs["step_offset"] == 0
    small = frame[frame["run"] == "small"]
    assert small["step"].tolist() == list(range(0, 101, 5))
    np.testing.assert_allclose(small["loss"], 2.0 + 5.0 / (small["step"] + 1), rtol=1e-6)
    assert np.allclose(frame["lr"], 1e-3)


def test_wandb_history_and_chart_exports(tmp_path):
    steps = np.arange(0, 200, 10)
    history = pd.DataFrame(
        {
            "_step": np.arange(steps.size),
            "trainer/global_step": steps,
            "_runtime": steps * 0.1,
            "train/loss": 3.0 / np.sqrt(steps + 1) + 1,
            "lr-AdamW": 1e-3,
            "epoch": 0,
        }
    )
    history.to_csv(tmp_path / "run-a.csv", index=False)
    frame = read_runs(tmp_path / "run-a.csv", "wandb")
    assert frame["run"].unique().tolist() == ["run-a"]
    assert frame["step"].tolist() == (steps + 1).tolist()  # WandbLogger's trainer/global_step follows Lightning
    assert (
        frame.attrs["columns"]["run-a"]["loss"] == "train/loss" and frame.attrs["columns"]["run-a"]["lr"] == "lr-AdamW"
    )
    chart = pd.DataFrame(
        {
            "Step": steps,
            "a - train/loss": 2.0 + 1 / (steps + 1),
            "a - train/loss__MIN": 0.0,
            "a - train/loss__MAX": 9.0,
            "b - train/loss": 2.5 + 1 / (steps + 1),
        }
    )
    chart.loc[3, "b - train/loss"] = np.nan  # runs logged on different steps leave gaps
    chart.to_csv(tmp_path / "chart.csv", index=False)
    panel = read_runs(tmp_path / "chart.csv", "wandb")
    assert panel.groupby("run").size().to_dict() == {"a": steps.size, "b": steps.size - 1}
    assert panel.loc[panel["run"] == "a", "loss"].max() == pytest.approx(3.0)


def test_store_runs_with_their_evaluations(logs):
    frame = read_runs(logs["store"], "store")
    assert frame["run"].unique().tolist() == ["model-v0"] and frame["step"].tolist() == list(range(1, STEPS + 1))
    assert {"sweep", "n_params", "status"} <= set(frame.columns)
    assert frame["val_loss"].notna().sum() >= 5
    (curve,) = curves_from_frame(frame, WARMUP, "store")
    assert len(curve) == STEPS - WARMUP + 1


def _one_line_error(call) -> str:
    with pytest.raises(InputError) as caught:
        call()
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_bad_files_name_the_file_and_what_is_missing(tmp_path, logs):
    empty_dir = tmp_path / "empty"
    empty_dir.mkdir()
    assert str(empty_dir) in _one_line_error(lambda: read_runs(empty_dir, "lightning-csv"))
    assert str(empty_dir) in _one_line_error(lambda: read_runs(empty_dir, "tensorboard"))
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    assert "not a SQLite store" in _one_line_error(lambda: read_runs(text, "store"))
    assert "no such store file" in _one_line_error(lambda: read_runs(tmp_path / "absent.sqlite", "store"))
    assert not (tmp_path / "absent.sqlite").exists()  # reading never creates a store
    no_loss = tmp_path / "no_loss.csv"
    pd.DataFrame({"step": [1, 2], "accuracy": [0.1, 0.2]}).to_csv(no_loss, index=False)
    message = _one_line_error(lambda: read_runs(no_loss, "lightning-csv"))
    assert "no_loss.csv" in message and "no loss column" in message
    assert "no loss column 'nope'" in _one_line_error(
        lambda: read_runs(logs["csv"], "lightning-csv", ColumnMap(loss="nope"))
    )
    blank = tmp_path / "blank.csv"
    pd.DataFrame({"step": [1, 2], "train_loss": [np.nan, np.nan], "lr": [1.0, 1.0]}).to_csv(blank, index=False)
    assert "blank.csv" in _one_line_error(lambda: read_runs(blank, "lightning-csv"))
    header_only = tmp_path / "header.csv"
    header_only.write_text("step,loss\n")
    assert "header.csv: no rows" in _one_line_error(lambda: read_runs(header_only, "wandb"))
    store = SweepStore(tmp_path / "runs.sqlite")
    store.register_run("idle", sweep="s")
    store.close()
    assert "'idle' has no points" in _one_line_error(lambda: read_runs(tmp_path / "runs.sqlite", "store"))
    assert "no run named 'x'" in _one_line_error(lambda: read_runs(logs["csv"], "lightning-csv", run="x"))
