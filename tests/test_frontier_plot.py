"""frontier.png: the fit drawn when it gives a frontier, and said in words when it does not."""

from __future__ import annotations

import pandas as pd

from scaling_callback.report.frontier_plot import frontier_verdict, plot_frontier


def test_a_degenerate_fit_is_named_not_drawn(tmp_path):
    points = pd.DataFrame({"n": [1e3, 4e3, 1.6e4], "tokens": [1e4, 2e4, 4e4], "compute": [6e7, 4.8e8, 3.8e9]})
    degenerate = {  # as fit_frontier_points returns it when α is 0: no N_opt, no D_opt
        "status": "degenerate",
        "E": 2.9,
        "A": 1.0,
        "B": 5.0,
        "alpha": 0.0,
        "beta": 0.03,
        "a": 1.0,
        "b": 0.0,
        "recommendation": {"flops": 7.5e9, "n_opt": 0.0, "d_opt": None},
    }
    assert frontier_verdict(degenerate, points) is not None
    plot_frontier(points, degenerate, {}, tmp_path / "frontier.png")
    assert (tmp_path / "frontier.png").stat().st_size > 0
