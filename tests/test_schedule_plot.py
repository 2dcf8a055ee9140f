"""schedules.png: distinct planned schedules, one line each."""

from __future__ import annotations

import numpy as np
import pandas as pd

from scaling_callback.report.schedule_plot import distinct_schedules, plot_schedules


def test_schedules_alike_in_kind_peak_and_length_are_still_two_lines(tmp_path):
    config = {"schedule": "cosine", "peak_lr": 0.01}
    runs = pd.DataFrame({"name": ["a", "b"], "config": [config, config]})
    steps = np.arange(1, 101)
    schedules = {"a": 0.01 * np.minimum(steps / 10, 1.0), "b": 0.01 * np.minimum(steps / 30, 1.0)}  # warmups differ
    assert len(distinct_schedules(runs, schedules)) == 2
    plot_schedules(runs, schedules, tmp_path / "schedules.png")
    assert (tmp_path / "schedules.png").stat().st_size > 0
