import pandas as pd

from scaling_callback.report.frontier import usable_points


def test_one_point_per_size_and_budget_and_observed_finals_outrank_forecasts():
    points = pd.DataFrame(
        [
            {"name": "finished", "n_params": 100, "tokens": 1e4, "loss": 3.5, "source": "observed"},
            {"name": "stopped", "n_params": 100, "tokens": 1e4, "loss": 3.2, "source": "predicted"},  # far-off forecast
            {"name": "worse twin", "n_params": 100, "tokens": 2e4, "loss": 3.4, "source": "observed"},
            {"name": "better twin", "n_params": 100, "tokens": 2e4, "loss": 3.3, "source": "observed"},
            {"name": "only forecast", "n_params": 200, "tokens": 1e4, "loss": 3.1, "source": "predicted"},
            {"name": "no loss", "n_params": 300, "tokens": 1e4, "loss": float("nan"), "source": "predicted"},
        ]
    )
    kept = usable_points(points)
    assert list(kept["name"]) == ["finished", "better twin", "only forecast"]
