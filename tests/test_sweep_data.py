"""What the progress line and the report take from a sweep's rows: each run's final, the best forecast, and when it is too wide to rank."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from scaling_callback.report.sweep_data import _best_forecast, finals_summary, forecast_wider_than_finals, run_final


def rows(*running: tuple[str, float, float, float]) -> pd.DataFrame:
    done = [
        {
            "name": f"done{i}",
            "status": "finished",
            "source": "observed",
            "loss": loss,
            "pred_final_loss": None,
            "pred_final_low": None,
            "pred_final_high": None,
        }
        for i, loss in enumerate((3.0, 3.1, 3.2))
    ]
    live = [
        {
            "name": name,
            "status": "running",
            "source": "predicted",
            "loss": mean,
            "pred_final_loss": mean,
            "pred_final_low": low,
            "pred_final_high": high,
        }
        for name, mean, low, high in running
    ]
    return pd.DataFrame(done + live)


def test_the_best_forecast_is_the_lowest_one_narrow_enough_to_rank():
    points = rows(("wide", 2.5, 1.5, 3.5), ("narrow", 2.9, 2.85, 2.95))
    _, low, high, name = _best_forecast(points)
    assert name == "narrow" and not forecast_wider_than_finals(points, low, high)


def test_a_best_forecast_wider_than_the_finals_spread_says_so():
    points = rows(("wide", 2.5, 1.5, 3.5))
    _, low, high, name = _best_forecast(points)
    assert name == "wide" and forecast_wider_than_finals(points, low, high)


def curve(steps: int = 200, level: float = 3.0) -> pd.DataFrame:
    noise = np.random.default_rng(0).normal(0, 0.05, steps)
    return pd.DataFrame({"step": np.arange(1, steps + 1), "loss": level + noise})


def test_a_finished_run_with_an_evaluation_at_its_end_reports_the_evaluation():
    evals = pd.DataFrame({"step": [200, 200], "name": ["val_loss", "val_loss_sd"], "value": [2.95, 0.003]})
    final = run_final(curve(), evals, "finished", None)
    assert (final.loss, final.sd, final.source) == (2.95, 0.003, "evaluated")


def test_without_an_evaluation_a_finished_run_falls_back_to_its_smoothed_training_loss_with_its_error():
    early = pd.DataFrame({"step": [100], "name": ["val_loss"], "value": [2.5]})  # not at the end: not its final
    final = run_final(curve(), early, "finished", None)
    assert final.source == "observed" and abs(final.loss - 3.0) < 3 * final.sd
    assert final.sd == pytest.approx(2 * 0.05 / math.sqrt(40), rel=0.25)  # ≈ 2σ/√n, the last 40 of 200 steps


def test_a_stopped_run_reports_its_forecast_with_the_forecast_sd():
    fit = {"pred_final_loss": 3.3, "forecast": {"sd": 0.02}}
    final = run_final(curve(), None, "stopped", fit)
    assert (final.loss, final.sd, final.source) == (3.3, 0.02, "predicted")
    assert run_final(curve(), None, "stopped", None) is None


def test_finals_summary_says_how_many_tokens_would_reach_the_target():
    finals = pd.DataFrame(
        {
            "status": ["finished", "finished", "finished", "stopped"],
            "source": ["evaluated", "evaluated", "observed", "predicted"],
            "loss_sd": [0.004, 0.002, 0.01, 0.03],
            "eval_tokens": [50_000, 50_000, None, None],
            "eval_target_sd": [0.003, 0.003, None, None],
        }
    )
    summary = finals_summary(finals)
    assert summary["by_source"] == {"evaluated": 2, "observed": 1}
    evaluated = summary["evaluated"]
    assert evaluated["sd_max"] == 0.004 and evaluated["meets_target"] is False
    assert evaluated["tokens_for_target"] == math.ceil(0.004**2 * 50_000 / 0.003**2)
    assert summary["observed"]["n"] == 1 and "tokens_for_target" not in summary["observed"]
