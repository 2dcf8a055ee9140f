"""``scaling-callback replay-stopping``: the JSON contract, groups, the power-law path and one-line errors."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from curve_factory import TRUE_MPL, per_step_lrs, synthetic_curve

from scaling_callback.cli import main

LEVELS = {"a": 3.0, "b": 3.4, "c": 3.2, "d": 3.6}


def sweep_frame(kind: str = "cosine", group: str = "g1", every: int = 4) -> pd.DataFrame:
    """Four MPL runs on ``kind``, one logged point every 40·``every`` steps (long format, with LRs)."""
    rows = []
    lrs = per_step_lrs(kind)
    for name, level in LEVELS.items():
        curve = synthetic_curve(kind, noise=0.001, params=TRUE_MPL | {"L0": level})
        keep = np.arange(len(curve))[::-1][::every][::-1]
        for step, loss in zip(curve.steps[keep], curve.loss[keep]):
            rows.append(
                {"group": group, "name": f"{group}-{name}", "step": int(step), "lr": lrs[int(step) - 1], "loss": loss}
            )
    return pd.DataFrame(rows)


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["replay-stopping", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_json_contract_of_one_sweep(tmp_path, capsys):
    path = tmp_path / "curves.csv"
    sweep_frame("constant", every=8).to_csv(path, index=False)
    code, out, _ = run_cli(
        capsys,
        str(path),
        "--run-col",
        "name",
        "--x-col",
        "step",
        "--loss-col",
        "loss",
        "--lr-col",
        "lr",
        "--policy",
        "law",
        "asha",
        "--json",
    )
    assert code == 0
    record = json.loads(out)
    assert set(record) == {"policies"} and list(record["policies"]) == ["law", "asha"]
    for result in record["policies"].values():
        assert {"compute_saved", "best_kept", "regret", "stopped"} <= set(result)
        assert all(set(s) == {"run", "x"} for s in result["stopped"])
        assert 0.0 <= result["compute_saved"] < 1.0 and result["regret"] >= 0.0
    law = record["policies"]["law"]
    assert law["best_kept"] and law["regret"] == 0.0 and law["best_run"] == "g1-a"
    assert {s["run"] for s in law["stopped"]} and "g1-a" not in {s["run"] for s in law["stopped"]}


def test_same_size_and_budget_compares_only_runs_of_one_size(tmp_path, capsys):
    """Runs a, b are one size, c, d another (twice the FLOPs per step): c is worse than a, but the best of its size."""
    frame = sweep_frame("constant", every=8)
    per_step = np.where(frame["name"].isin(["g1-a", "g1-b"]), 1.0, 2.0)
    path = tmp_path / "curves.csv"
    frame.assign(flops=frame["step"] * per_step).to_csv(path, index=False)
    common = [str(path), "--run-col", "name", "--x-col", "step", "--loss-col", "loss", "--lr-col", "lr"]
    common += ["--compute-col", "flops", "--policy", "law", "--json"]
    code, out, _ = run_cli(capsys, *common, "--objective", "same_size_and_budget")
    assert code == 0
    stopped = {s["run"] for s in json.loads(out)["policies"]["law"]["stopped"]}
    assert stopped == {"g1-b", "g1-d"}
    code, out, _ = run_cli(capsys, *common, "--objective", "final")
    assert "g1-c" in {s["run"] for s in json.loads(out)["policies"]["law"]["stopped"]}


def test_groups_are_separate_sweeps_and_the_top_level_sums_them(tmp_path, capsys):
    path = tmp_path / "curves.csv"
    pd.concat([sweep_frame("constant", "g1"), sweep_frame("constant", "g2")]).to_csv(path, index=False)
    code, out, _ = run_cli(
        capsys,
        str(path),
        "--run-col",
        "name",
        "--x-col",
        "step",
        "--loss-col",
        "loss",
        "--group-col",
        "group",
        "--policy",
        "median",
        "fixed",
        "--parallel-runs",
        "2",
        "--json",
    )
    record = json.loads(out)
    assert code == 0 and set(record["groups"]) == {"g1", "g2"}
    for name in ("median", "fixed"):
        top, parts = record["policies"][name], [record["groups"][g]["policies"][name] for g in ("g1", "g2")]
        assert top["compute_saved"] == pytest.approx(
            1 - sum(p["spent"] for p in parts) / sum(p["total"] for p in parts)
        )
        assert top["best_kept"] == all(p["best_kept"] for p in parts)
        assert top["regret"] == max(p["regret"] for p in parts)
        assert all("group" in s for s in top["stopped"])
        assert len(top["stopped"]) == sum(len(p["stopped"]) for p in parts)


def test_without_lr_column_the_law_policy_uses_the_power_law_and_prints_a_table(tmp_path, capsys):
    x = np.arange(200, 2001, 200)
    frame = pd.DataFrame(
        [
            {"run": name, "tokens": t * 1000, "loss": level - 1.0 + 3.0 * (t / 100.0) ** -0.5}
            for name, level in LEVELS.items()
            for t in x
        ]
    )
    path = tmp_path / "curves.csv"
    frame.to_csv(path, index=False)
    code, out, _ = run_cli(
        capsys,
        str(path),
        "--run-col",
        "run",
        "--x-col",
        "tokens",
        "--loss-col",
        "loss",
        "--policy",
        "law",
        "median",
        "--seed",
        "3",
    )
    assert code == 0
    assert "best run a" in out and "law" in out and "median" in out


@pytest.mark.parametrize(
    "mutate, args, message",
    [
        (lambda f: f.drop(columns=["loss"]), [], "missing column(s) loss"),
        (lambda f: f.assign(loss=f["loss"].astype(object).where(f.index != 3, "oops")), [], "non-numeric"),
        (lambda f: f.assign(loss=-f["loss"]), [], "losses must be positive"),
        (lambda f: f, ["--group-col", "nope"], "missing column 'nope'"),
        (lambda f: f, ["--parallel-runs", "0"], "--parallel-runs"),
        (lambda f: f, ["--threshold", "1.5"], "--threshold"),
    ],
)
def test_bad_input_is_one_line_on_stderr_and_exit_2(tmp_path, capsys, mutate, args, message):
    path = tmp_path / "curves.csv"
    mutate(sweep_frame()).to_csv(path, index=False)
    code, out, err = run_cli(
        capsys, str(path), "--run-col", "name", "--x-col", "step", "--loss-col", "loss", "--policy", "median", *args
    )
    assert code == 2 and out == "" and message in err and len(err.strip().splitlines()) == 1


def test_a_missing_file_is_named(tmp_path, capsys):
    code, _, err = run_cli(capsys, str(tmp_path / "none.csv"), "--run-col", "r", "--x-col", "x", "--loss-col", "l")
    assert code == 2 and "none.csv: no such file" in err


def test_wandb_history_with_detected_columns_replays_as_the_long_csv(tmp_path, capsys):
    frame = sweep_frame("constant", every=8)
    frame.to_csv(tmp_path / "long.csv", index=False)
    history = pd.DataFrame(
        {
            "run": frame["name"],
            "trainer/global_step": frame["step"] - 1,  # WandbLogger's steps
            "train/loss": frame["loss"],
            "lr-AdamW": frame["lr"],
            "_runtime": 1.0,
        }
    )
    history.to_csv(tmp_path / "history.csv", index=False)
    base = ["--policy", "asha", "median", "--json"]
    code, out, _ = run_cli(capsys, str(tmp_path / "long.csv"), "--run-col", "name", *base)
    code_w, out_w, _ = run_cli(capsys, str(tmp_path / "history.csv"), "--from", "wandb", *base)
    assert code == code_w == 0

    def decisions(text):
        return {
            name: {k: v for k, v in r.items() if k != "seconds"} for name, r in json.loads(text)["policies"].items()
        }

    assert decisions(out) == decisions(out_w)


def test_lr_col_none_uses_the_power_law_and_bad_logs_exit_2(tmp_path, capsys):
    path = tmp_path / "curves.csv"
    sweep_frame("constant", every=8).to_csv(path, index=False)
    code, _, _ = run_cli(capsys, str(path), "--run-col", "name", "--lr-col", "none", "--policy", "median")
    assert code == 0
    (tmp_path / "empty").mkdir()
    code, _, err = run_cli(capsys, str(tmp_path / "empty"), "--from", "lightning-csv")
    assert code == 2 and "no metrics.csv" in err and len(err.strip().splitlines()) == 1
