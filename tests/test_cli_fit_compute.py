"""The fit-compute command: JSON contract, conventions, variants, bootstrap, and one-line errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from scaling_callback.cli import main
from scaling_callback.fitting.synthetic_sweeps import isoflop_sweep, training_curves

CONTRACT_KEYS = {"E", "A", "B", "alpha", "beta", "a", "b", "fit_seconds", "converged", "warnings", "ci", "se",
                 "frontier", "choices", "n_points"}


@pytest.fixture(scope="module")
def points_csv(tmp_path_factory):
    path = tmp_path_factory.mktemp("points") / "points.csv"
    isoflop_sweep(45, noise=0.008, seed=11).rename(columns={"params": "N", "tokens": "D", "flops": "C"}).to_csv(path, index=False)
    return path


def run_json(capsys, *args: str) -> dict:
    assert main(["fit-compute", *args, "--json", "--starts", "4"]) == 0
    return json.loads(capsys.readouterr().out)


def test_json_contract_with_tokens(points_csv, capsys):
    out = run_json(capsys, str(points_csv), "--params-col", "N", "--tokens-col", "D", "--loss-col", "loss",
                   "--target-flops", "1e21", "1e23")
    assert CONTRACT_KEYS <= set(out)
    assert out["n_points"] == 45 and out["converged"] is True and out["ci"] == {} and out["se"] == {}
    assert [row["flops"] for row in out["frontier"]] == [1e21, 1e23]
    assert {"flops", "n_opt", "d_opt", "loss"} <= set(out["frontier"][0])
    assert out["choices"]["flop_convention"].startswith("C = 6*N*D")


def test_flops_column_derives_tokens_and_bootstrap_fills_intervals(points_csv, capsys):
    out = run_json(capsys, str(points_csv), "--params-col", "N", "--flops-col", "C", "--loss-col", "loss",
                   "--bootstrap", "12", "--seed", "3", "--run-col", "run", "--workers", "1")
    assert "D = C/(6*N)" in out["choices"]["flop_convention"]
    assert out["choices"]["frontier_budgets"] == "largest budget in the data"
    for name in ("E", "A", "B", "alpha", "beta", "a", "b"):
        low, high = out["ci"][name]
        assert low < high
        assert out["se"][name] > 0
    assert out["choices"]["bootstrap"]["n_resamples"] == 12
    assert out["frontier"][0]["n_opt_ci"][0] < out["frontier"][0]["n_opt_ci"][1]


def test_variants_are_one_flag_away(points_csv, capsys):
    base = [str(points_csv), "--params-col", "N", "--tokens-col", "D", "--loss-col", "loss"]
    tied = run_json(capsys, *base, "--tie-exponents")
    assert tied["alpha"] == tied["beta"] and tied["choices"]["variant"] == "alpha = beta"
    fixed = run_json(capsys, *base, "--fixed-E", "1.8")
    assert fixed["E"] == pytest.approx(1.8)
    compared = run_json(capsys, *base, "--compare")
    assert [row["approach"][:10] for row in compared["approaches"]] == ["approach 3", "approach 2", "approach 1"]
    assert compared["approaches"][2]["status"].startswith("not applicable")


def test_text_output(points_csv, capsys):
    assert main(["fit-compute", str(points_csv), "--params-col", "N", "--tokens-col", "D", "--loss-col", "loss", "--starts", "3"]) == 0
    text = capsys.readouterr().out
    assert "compute-optimal fit (free)" in text and "N_opt" in text


@pytest.mark.parametrize(
    "rows, args, message",
    [
        ("N,D,loss\n1e8,1e9,3.0\n", ["--params-col", "X", "--tokens-col", "D", "--loss-col", "loss"], "column 'X' not found"),
        ("N,D,loss\n1e8,1e9,3.0\n-2,1e9,3.0\n", ["--params-col", "N", "--tokens-col", "D", "--loss-col", "loss"], "row 2 has -2"),
        ("N,D,loss\n1e8,1e9,0\n", ["--params-col", "N", "--tokens-col", "D", "--loss-col", "loss"], "column 'loss' must hold positive"),
        ("N,D,loss\n1e8,abc,3\n", ["--params-col", "N", "--tokens-col", "D", "--loss-col", "loss"], "'abc'"),
        ("N,D,loss\n1e8,1e9,3\n2e8,1e9,2.9\n", ["--params-col", "N", "--tokens-col", "D", "--loss-col", "loss"], "2 points cannot determine 5"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, rows, args, message):
    path = tmp_path / "bad.csv"
    path.write_text(rows)
    assert main(["fit-compute", str(path), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err


def test_missing_file_and_bad_flags(tmp_path, capsys):
    args = ["--params-col", "N", "--tokens-col", "D", "--loss-col", "loss"]
    assert main(["fit-compute", str(tmp_path / "none.csv"), *args]) == 2
    assert "no such file" in capsys.readouterr().err
    path = tmp_path / "ok.csv"
    path.write_text("N,D,loss\n1e8,1e9,3\n")
    assert main(["fit-compute", str(path), *args, "--bootstrap", "-1"]) == 2
    assert main(["fit-compute", str(path), *args, "--target-flops", "0"]) == 2
    with pytest.raises(SystemExit) as exit_info:
        main(["fit-compute", str(path), "--params-col", "N", "--tokens-col", "D", "--flops-col", "C", "--loss-col", "loss"])
    assert exit_info.value.code == 2


def test_compare_on_training_curves_adds_approach_1(tmp_path, capsys):
    path = tmp_path / "curves.csv"
    training_curves(np.geomspace(4e7, 4e9, 8), max_tokens=2e11, n_checkpoints=12).to_csv(path, index=False)
    out = run_json(capsys, str(path), "--params-col", "params", "--flops-col", "flops", "--loss-col", "loss",
                   "--run-col", "run", "--compare")
    envelope = out["approaches"][2]
    assert envelope["approach"].startswith("approach 1") and envelope["status"] == "ok" and 0.3 < envelope["a"] < 0.7
