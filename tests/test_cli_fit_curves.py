import json

import numpy as np
import pandas as pd
import pytest

from scaling_callback.cli import main
from tests.curve_factory import WARMUP, per_step_lrs, synthetic_curve


def _write(tmp_path, kind, noise=0.002, seed=0):
    curve = synthetic_curve(kind, noise, seed)
    lrs = per_step_lrs(kind)
    frame = pd.DataFrame({"step": curve.steps, "lr": lrs[curve.steps - 1], "loss": curve.loss, "extra": 1})
    path = tmp_path / f"{kind}.csv"
    frame.to_csv(path, index=False)
    return path


@pytest.fixture
def files(tmp_path):
    return {kind: _write(tmp_path, kind, seed=i) for i, kind in enumerate(("constant", "cosine", "wsd", "two_stage"))}


def test_json_contract_with_prefix(files, capsys):
    code = main([
        "fit-curves", "--law", "mpl", "--warmup-steps", str(WARMUP),
        "--fit", str(files["constant"]), str(files["cosine"]), str(files["wsd"]),
        "--predict", str(files["two_stage"]), "--prefix", "0.5", "--json",
    ])
    assert code == 0
    record = json.loads(capsys.readouterr().out)
    assert {"law", "params", "fit_seconds", "converged", "choices", "predictions"} <= set(record)
    assert record["choices"]["prefix"] == 0.5 and record["choices"]["delta"] == 1e-3
    (prediction,) = record["predictions"]
    assert set(prediction) >= {"file", "mae", "rmse", "r2", "pred_e", "worst_e", "final_true", "final_pred", "final_low", "final_high"}
    assert prediction["points_scored"] == 96 - 48  # 96 rows, the first half joined the fit
    assert prediction["mae"] < 0.01
    assert prediction["final_low"] <= prediction["final_pred"] <= prediction["final_high"]


@pytest.mark.parametrize("law", ["opl", "lldl", "momentum"])
def test_table_output_for_each_law(files, capsys, law):
    code = main(["fit-curves", "--law", law, "--warmup-steps", str(WARMUP), "--fit", str(files["cosine"]),
                 "--predict", str(files["wsd"])])
    assert code == 0
    out = capsys.readouterr().out
    assert f"law {law}" in out and "wsd.csv" in out


def _error(capsys, args):
    code = main(["fit-curves", "--warmup-steps", str(WARMUP), *args])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    return err


def test_missing_column_is_named(tmp_path, capsys):
    path = tmp_path / "bad.csv"
    pd.DataFrame({"step": [1, 2], "loss": [3.0, 2.9]}).to_csv(path, index=False)
    assert "bad.csv: missing column(s) lr" in _error(capsys, ["--fit", str(path)])


def test_non_finite_value_is_named(files, tmp_path, capsys):
    frame = pd.read_csv(files["cosine"])
    frame.loc[5, "loss"] = np.nan
    path = tmp_path / "nan.csv"
    frame.to_csv(path, index=False)
    assert "nan.csv: non-finite or non-numeric loss in row 7" in _error(capsys, ["--fit", str(path)])


def test_missing_and_unreadable_files_are_named(tmp_path, capsys):
    assert "nope.csv: no such file" in _error(capsys, ["--fit", str(tmp_path / "nope.csv")])
    binary = tmp_path / "binary.csv"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    assert "binary.csv" in _error(capsys, ["--fit", str(binary)])


def test_too_few_usable_points_is_named(tmp_path, capsys):
    path = tmp_path / "short.csv"
    pd.DataFrame({"step": [WARMUP, WARMUP + 10], "lr": [3e-4, 3e-4], "loss": [3.0, 2.9]}).to_csv(path, index=False)
    assert "short.csv: 2 usable point(s)" in _error(capsys, ["--fit", str(path)])


def test_bad_prefix_is_named(files, capsys):
    assert "--prefix must be in (0, 1], got 1.5" in _error(capsys, ["--fit", str(files["cosine"]), "--prefix", "1.5"])
