"""What the progress line and the report take from a sweep's rows: the best forecast, and when it is too wide to rank."""

from __future__ import annotations

import pandas as pd

from scaling_callback.report.sweep_data import _best_forecast, forecast_wider_than_finals


def rows(*running: tuple[str, float, float, float]) -> pd.DataFrame:
    done = [{"name": f"done{i}", "status": "finished", "source": "observed", "loss": loss, "pred_final_loss": None,
             "pred_final_low": None, "pred_final_high": None} for i, loss in enumerate((3.0, 3.1, 3.2))]
    live = [{"name": name, "status": "running", "source": "predicted", "loss": mean, "pred_final_loss": mean,
             "pred_final_low": low, "pred_final_high": high} for name, mean, low, high in running]
    return pd.DataFrame(done + live)


def test_the_best_forecast_is_the_lowest_one_narrow_enough_to_rank():
    points = rows(("wide", 2.5, 1.5, 3.5), ("narrow", 2.9, 2.85, 2.95))
    loss, low, high, name = _best_forecast(points)
    assert name == "narrow" and not forecast_wider_than_finals(points, low, high)


def test_a_best_forecast_wider_than_the_finals_spread_says_so():
    points = rows(("wide", 2.5, 1.5, 3.5))
    loss, low, high, name = _best_forecast(points)
    assert name == "wide" and forecast_wider_than_finals(points, low, high)
