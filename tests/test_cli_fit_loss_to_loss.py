"""``scaling-callback fit-loss-to-loss``: JSON contract, pairings, below-E0 reports, errors."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from scaling_callback.cli import main
from tests.test_loss_to_loss_compute import sweep


@pytest.fixture
def points(tmp_path):
    compute, l0, l1, x, truth, target = sweep(1, noise=0.002)
    path = tmp_path / "points.csv"
    pd.DataFrame({"C": compute, "train": l0, "test": l1, "task": "web"}).to_csv(path, index=False)
    return path, x, truth, target


def run(capsys, *args):
    code = main(["fit-loss-to-loss", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_train_to_test_with_compute_offsets(points, capsys):
    path, x, truth, target = points
    code, out, _ = run(capsys, str(path), "--x-col", "train", "--y-col", "test", "--compute-col", "C",
                       "--predict-x", str(x), "1.0", "--predict-compute", str(target), "--bootstrap", "20", "--json")
    assert code == 0
    record = json.loads(out)
    near, below = record["predictions"]
    assert near["below_E0"] is False and near["prediction"] == pytest.approx(truth, rel=0.01)
    assert near["low"] < near["prediction"] < near["high"]
    assert below["below_E0"] is True and below["prediction"] == pytest.approx(record["E1"]) and "below E0" in below["note"]
    assert record["at_compute"][0]["loss1"] == pytest.approx(truth, rel=0.02)
    assert set(record["compute_laws"]) == {"L0", "L1"} and record["choices"]["pairing"].startswith("same models")


def test_train_to_train_pairs_two_sweeps_by_compute(points, tmp_path, capsys):
    path, *_ = points
    frame = pd.read_csv(path)
    rows = pd.concat([frame.assign(test=np.nan), frame.assign(train=np.nan)])  # each sweep on its own rows
    split = tmp_path / "two_sweeps.csv"
    rows.to_csv(split, index=False)
    code, out, _ = run(capsys, str(split), "--x-col", "train", "--y-col", "test", "--compute-col", "C", "--json")
    assert code == 0 and json.loads(out)["choices"]["pairing"] == "models paired by equal compute"


def test_without_compute_the_free_fit_says_so_and_groups(points, capsys):
    path, x, *_ = points
    code, out, _ = run(capsys, str(path), "--x-col", "train", "--y-col", "test", "--group-col", "task", "--predict-x", str(x))
    assert code == 0 and "group 'web'" in out and "no --compute-col" in out


@pytest.mark.parametrize("args, needle", [
    (["--x-col", "nope", "--y-col", "test"], "no column 'nope'"),
    (["--x-col", "train", "--y-col", "test", "--bootstrap", "5"], "need --compute-col"),
    (["--x-col", "train", "--y-col", "test", "--predict-x", "-1"], "must be positive"),
])
def test_bad_arguments_exit_2(points, capsys, args, needle):
    path, *_ = points
    code, _, err = run(capsys, str(path), *args)
    assert code == 2 and needle in err and len(err.strip().splitlines()) == 1


def test_bad_values_and_files_exit_2(points, tmp_path, capsys):
    path, *_ = points
    frame = pd.read_csv(path).astype({"train": object})
    frame.loc[3, "train"] = "abc"
    bad = tmp_path / "bad.csv"
    frame.to_csv(bad, index=False)
    code, _, err = run(capsys, str(bad), "--x-col", "train", "--y-col", "test")
    assert code == 2 and "row 5" in err
    code, _, err = run(capsys, str(tmp_path / "none.csv"), "--x-col", "a", "--y-col", "b")
    assert code == 2 and "none.csv: no such file" in err
