"""fit-compute --from-curves: one run per size in the long format → forecast points and their frontier; bad input."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from curve_factory import family_runs

from scaling_callback.cli import main

BASE = ["--run-col", "run", "--params-col", "N", "--tokens-col", "D", "--lr-col", "lr", "--loss-col", "loss"]


def long_frame(runs) -> pd.DataFrame:
    rows = []
    for run in runs:
        t = run.steps.astype(int) - run.schedule.warmup_steps
        lrs = run.schedule.lr_at(t)
        rows.append(
            pd.DataFrame(
                {
                    "run": run.name,
                    "step": run.steps.astype(int),
                    "lr": lrs,
                    "loss": run.loss,
                    "D": run.steps * run.tokens_per_step,
                    "N": run.n_params,
                }
            )
        )
    return pd.concat(rows, ignore_index=True)


@pytest.fixture(scope="module")
def curves_csv(tmp_path_factory):
    path = tmp_path_factory.mktemp("curves") / "curves.csv"
    long_frame(family_runs()).to_csv(path, index=False)
    return path


def test_points_and_frontier_from_one_run_per_size(curves_csv, capsys):
    args = ["fit-compute", "--from-curves", str(curves_csv), *BASE, "--warmup-steps", "100", "--bootstrap", "40"]
    assert main([*args, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert len(out["points"]) == 28 and out["n_points"] == 28
    assert set(out["points"][0]) == {"run", "n", "d", "loss", "loss_sd", "source"}
    assert all(p["loss_sd"] > 0 and p["source"] == "forecast" for p in out["points"])
    assert out["choices"]["weights"].startswith("each log residual")
    assert out["choices"]["bootstrap"]["clustered_by"].startswith("run")
    assert out["choices"]["bootstrap"]["predictive_draws"].startswith("each resample")
    assert 0.3 < out["design"]["compute_ratio"] < 0.34
    low, high = out["ci"]["a"]
    assert low < out["a"] < high and 0.45 < out["a"] < 0.62
    assert main(args[:-2]) == 0
    assert "forecast points" in capsys.readouterr().out


def write(tmp_path, frame: pd.DataFrame):
    path = tmp_path / "curves.csv"
    frame.to_csv(path, index=False)
    return path


@pytest.mark.parametrize(
    "change, extra, message",
    [
        (lambda f: f.assign(lr=np.where(f["run"] == f["run"].iloc[0], np.nan, f["lr"])), [], "lr"),
        (lambda f: f[f["run"] == f["run"].iloc[0]], [], "one model size"),
        (lambda f: f.drop(columns="lr"), [], "lr"),
        (lambda f: f, ["--target-tokens", "1e12"], "before the smallest target budget"),
        (lambda f: f[(f["run"] != f["run"].iloc[0]) | (f["step"] <= 400)], [], "before the smallest target budget"),
    ],
    ids=["run without LR", "one size", "no LR column", "target past every run", "a run shorter than the smallest D"],
)
def test_bad_curves_are_one_line_and_exit_2(tmp_path, capsys, change, extra, message):
    path = write(tmp_path, change(long_frame(family_runs())))
    assert main(["fit-compute", "--from-curves", str(path), *BASE, *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err


def test_points_file_and_curves_are_exclusive(curves_csv, capsys):
    assert main(["fit-compute", str(curves_csv), "--from-curves", str(curves_csv), *BASE]) == 2
    assert "either POINTS.csv or --from-curves" in capsys.readouterr().err
