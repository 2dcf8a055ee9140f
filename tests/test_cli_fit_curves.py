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


def _fit_json(capsys, args):
    assert main(["fit-curves", "--warmup-steps", str(WARMUP), *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_a_curve_in_fit_and_predict_is_used_once(files, capsys):
    both = ["--fit", str(files["constant"]), str(files["two_stage"]), "--predict", str(files["two_stage"])]
    once = _fit_json(capsys, [*both, "--prefix", "0.5"])
    alone = _fit_json(capsys, ["--fit", str(files["constant"]), "--predict", str(files["two_stage"]), "--prefix", "0.5"])
    assert once["n_points"] == alone["n_points"] == 96 + 48  # the prefix only, not the whole curve and its prefix
    assert once["params"] == pytest.approx(alone["params"], rel=1e-9)
    assert once["warnings"] and once["predictions"][0]["in_sample"] is False
    whole = _fit_json(capsys, both)
    assert whole["n_points"] == 2 * 96 and whole["predictions"][0]["in_sample"] is True


def test_table_explains_columns_and_bound_warnings(files, capsys):
    assert main(["fit-curves", "--law", "opl", "--warmup-steps", str(WARMUP), "--fit", str(files["constant"]),
                 "--predict", str(files["cosine"])]) == 0
    out = capsys.readouterr().out
    assert "predE" in out and "columns:" in out and "worstE" in out
    from scaling_callback.cli.fit_curves import _bound_warnings

    assert _bound_warnings({"beta": 1 - 1e-3, "alpha": 0.5, "L0": 2.0}) == [
        "beta = 0.999 sits on its upper bound: not determined by these curves"]


def test_lightning_and_tensorboard_logs_give_the_fit_of_our_csv(tmp_path, capsys):
    from tests.lightning_logs_factory import EVERY, STEPS, train
    from tests.lightning_logs_factory import WARMUP as RUN_WARMUP

    pytest.importorskip("tbparse")
    logs = train(tmp_path)
    assert main(["export", str(logs["store"]), "--all", "--output", str(tmp_path / "export.csv")]) == 0
    points = pd.read_csv(tmp_path / "export.csv")
    ours = points[points["step"] % EVERY == 0][["step", "lr", "loss"]]  # the rows the loggers saw, in our CSV format
    ours.to_csv(tmp_path / "ours.csv", index=False)
    common = ["--warmup-steps", str(RUN_WARMUP)]
    reference = _fit_json(capsys, [*common, "--fit", str(tmp_path / "ours.csv"), "--predict", str(tmp_path / "ours.csv")])
    from_csv = _fit_json(capsys, [*common, "--from", "lightning-csv", "--fit", str(logs["csv"])])
    from_tb = _fit_json(capsys, [*common, "--from", "tensorboard", "--fit", str(logs["tb"]), "--predict", str(logs["tb"])])
    assert reference["status"] == "ok" and reference["n_points"] == (STEPS - RUN_WARMUP) // EVERY + 1
    assert from_csv["n_points"] == from_tb["n_points"] == reference["n_points"]
    assert from_csv["params"] == pytest.approx(reference["params"], rel=1e-6)
    # float32 events: the same curve up to 1e-7, so the same predictions (poorly identified parameters may move)
    for key in ("final_pred", "mae", "rmse"):
        assert from_tb["predictions"][0][key] == pytest.approx(reference["predictions"][0][key], rel=1e-3, abs=1e-6)


@pytest.mark.parametrize("source", ["lightning-csv", "tensorboard", "wandb", "store"])
def test_bad_log_sources_exit_2_naming_the_path(tmp_path, capsys, source):
    pytest.importorskip("tbparse")
    empty = tmp_path / "empty"
    empty.mkdir()
    err = _error(capsys, ["--from", source, "--fit", str(empty)])
    assert str(empty) in err


def test_a_log_without_lr_names_what_is_missing(tmp_path, capsys):
    path = tmp_path / "metrics.csv"
    pd.DataFrame({"step": np.arange(300, 600, 10), "train_loss": np.linspace(3, 2, 30)}).to_csv(path, index=False)
    err = _error(capsys, ["--from", "lightning-csv", "--fit", str(path)])
    assert "metrics.csv: missing column(s) lr" in err and "--lr-col" in err
