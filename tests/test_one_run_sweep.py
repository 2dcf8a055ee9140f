"""A one-run-per-size sweep end to end: one WSD run per size, forecast points in the report, compute against the grid."""

from __future__ import annotations

import json

import pytest
import yaml
from test_cli_sweep import TINY

from scaling_callback.cli import main

ONE_RUN = TINY | {
    "name": "one_run",
    "grid": {
        "design": "one_run_per_size",
        "sizes": [{"d_model": 8, "n_layers": 1}, {"d_model": 16, "n_layers": 1}, {"d_model": 24, "n_layers": 1}],
        "tokens": [1280, 2560, 5120],
        "schedules": ["wsd"],
    },
    "callback": {"fit_every_n_steps": 40},
    "workers": 2,
    "checkpoint_every_n_steps": 100,
}


@pytest.mark.slow
def test_one_run_per_size_sweep_reports_forecast_points(tmp_path, capsys):
    config = tmp_path / "one_run.yaml"
    config.write_text(yaml.safe_dump(ONE_RUN))
    out = tmp_path / "out"
    assert main(["sweep", str(config), "--out", str(out)]) == 0
    from scaling_callback.store import SweepStore

    store = SweepStore(f"sqlite:///{out / 'sweep.sqlite'}")
    runs = store.runs("one_run")
    store.close()
    assert len(runs) == 3 and set(runs["status"]) == {"finished"}
    assert all(name.endswith("_t5.12e03_wsd_s0") for name in runs["name"])
    details = json.loads((out / "report" / "details.json").read_text())
    design = details["design"]
    assert design["design"] == "one_run_per_size" and design["n_points"] == 9 and not design["failures"]
    assert design["compute_ratio"] == pytest.approx(5120 / (1280 + 2560 + 5120), rel=1e-3)
    assert details["frontier_fit"]["n_points"] == 9
    assert (out / "report" / "frontier.png").stat().st_size > 0
    capsys.readouterr()
