"""Reading the Trainer and writing to its loggers."""

from __future__ import annotations

import math

import torch

from scaling_callback.callback.lightning_io import generated_run_name, log_points, validation_values
from scaling_callback.callback.recorder import Point


class Logger:
    def __init__(self) -> None:
        self.calls = []

    def log_metrics(self, metrics, step):
        self.calls.append((step, dict(metrics)))


def _points(n: int) -> list[Point]:
    return [Point(s, 8 * s, None, 100.0 * s, 0.1, 0.1 * s, 1.0) for s in range(1, n + 1)]


def test_one_call_per_due_point_with_predictions_once_fitted():
    logger = Logger()
    last = log_points([logger], _points(10), None, lambda p: p.step % 5 == 0)
    assert last == 10 and [s for s, _ in logger.calls] == [5, 10]
    assert logger.calls[0][1] == {
        "scaling/loss": 1.0,
        "scaling/lr": 0.1,
        "scaling/lr_sum": 0.5,
        "scaling/flops": 500.0,
        "scaling/samples": 40.0,
    }
    fit = {"pred_final_loss": 2.0, "pred_final_low": 1.9, "pred_final_high": math.nan}
    log_points([logger], _points(3), fit, lambda p: p.step == 3)
    assert set(logger.calls[-1][1]) == {
        "scaling/loss",
        "scaling/lr",
        "scaling/lr_sum",
        "scaling/flops",
        "scaling/samples",
        "scaling/pred_final_loss",
        "scaling/pred_final_low",
        "scaling/pred_final_high",
    }


def test_tokens_are_logged_when_counted():
    logger = Logger()
    log_points([logger], [Point(1, 8, 1024, 100.0, 0.1, 0.1, 2.0)], None, lambda p: True)
    assert logger.calls[0][1]["scaling/tokens"] == 1024.0


def test_validation_values_and_run_names():
    metrics = {
        "val_loss": torch.tensor(0.5),
        "val/loss_ema": 0.4,
        "train_loss": torch.tensor(1.0),
        "val_acc": torch.tensor(0.9),
    }
    assert validation_values(metrics, "auto") == {"val_loss": 0.5, "val/loss_ema": 0.4}
    assert validation_values(metrics, ["val_acc"]) == {"val_acc": 0.8999999761581421}
    assert generated_run_name("width").startswith("width-") and generated_run_name(None) != generated_run_name(None)
