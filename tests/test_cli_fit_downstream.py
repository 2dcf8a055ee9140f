"""``scaling-callback fit-downstream``: JSON contract, several metrics, errors."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from scaling_callback.cli import main
from tests.test_downstream import sweep


@pytest.fixture
def points(tmp_path):
    compute, loss, accuracy = sweep(2)
    _, _, other = sweep(3, mid=2.9)
    path = tmp_path / "points.csv"
    pd.DataFrame({"C": compute[:10], "L": loss[:10], "arc": accuracy[:10], "mmlu": other[:10]}).to_csv(path, index=False)
    return path, compute[10:], accuracy[10:]


def test_two_metrics_at_two_budgets(points, capsys):
    path, targets, truth = points
    code = main(["fit-downstream", str(path), "--compute-col", "C", "--loss-col", "L", "--metric-col", "arc", "mmlu",
                 "--target-flops", *map(str, targets), "--chance", "0.25", "--bootstrap", "30", "--json"])
    assert code == 0
    record = json.loads(capsys.readouterr().out)
    assert set(record["metrics"]) == {"arc", "mmlu"} and record["compute_law"]["status"] == "ok"
    arc = record["metrics"]["arc"]
    assert arc["link"] == "sigmoid" and arc["params"]["floor"] == pytest.approx(0.25)
    for prediction, true in zip(arc["predictions"], truth):
        assert prediction["low"] < prediction["metric"] < prediction["high"]
        assert abs(prediction["metric"] - true) < 0.05
    assert [t["compute"] for t in record["targets"]] == pytest.approx(list(targets))


def test_table_and_errors(points, capsys):
    path, *_ = points
    assert main(["fit-downstream", str(path), "--compute-col", "C", "--loss-col", "L", "--metric-col", "arc",
                 "--bootstrap", "0"]) == 0
    assert "sigmoid link" in capsys.readouterr().out
    assert main(["fit-downstream", str(path), "--compute-col", "C", "--loss-col", "L", "--metric-col", "hellaswag"]) == 2
    err = capsys.readouterr().err
    assert "'hellaswag'" in err and len(err.strip().splitlines()) == 1
    assert main(["fit-downstream", str(path), "--compute-col", "L", "--loss-col", "C", "--metric-col", "arc",
                 "--target-flops", "0"]) == 2
