"""The report from a store: files, the frontier's verdict, measured FLOPs, progress stages, no warnings escaping."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest

from scaling_callback.errors import InputError
from scaling_callback.report.loss_plot import run_table
from scaling_callback.report.schedule_plot import distinct_schedules
from scaling_callback.report.writer import STAGES, write_report
from scaling_callback.store import SweepStore

SIZES = {"s": 4000, "m": 16000, "l": 64000}
BUDGETS = {"short": 100, "mid": 150, "long": 200}
PEAKS = (4e-3, 1e-4)
TOKENS_PER_STEP = 512


def _schedule(steps: int, peak: float) -> np.ndarray:
    t = np.arange(steps)
    warm = np.minimum((t + 1) / 10, 1.0)
    return peak * warm * (0.1 + 0.45 * (1 + np.cos(np.pi * np.clip(t - 10, 0, None) / (steps - 10))))


@pytest.fixture()
def sweep_dir(tmp_path):
    """18 runs: 3 sizes x 3 budgets x 2 peak LRs, Chinchilla-like final losses, one run stopped."""
    store = SweepStore(tmp_path / "sweep.sqlite")
    store.create_sweep("toy")
    rng = np.random.default_rng(0)
    for size, n in SIZES.items():
        for budget, steps in BUDGETS.items():
            for peak in PEAKS:
                name = f"{size}-{budget}-lr{peak:g}"
                config = {
                    "schedule": "cosine",
                    "peak_lr": peak,
                    "tokens": steps * TOKENS_PER_STEP,
                    "max_steps": steps,
                    "tokens_per_step": TOKENS_PER_STEP,
                }
                store.register_run(
                    name, sweep="toy", config=config, n_params=n, n_params_nonembedding=n // 2, max_steps=steps
                )
                lrs = _schedule(steps, peak)
                store.set_planned_schedule(name, lrs)
                d = np.arange(1, steps + 1) * TOKENS_PER_STEP
                penalty = 0.0 if peak > 1e-3 else 0.3
                loss = 2.0 + 50 / n**0.35 + 400 / d**0.37 + penalty + rng.normal(0, 0.002, steps)
                last = steps if (size, budget, peak) != ("s", "long", 1e-4) else steps // 2
                rows = [
                    {
                        "step": int(i),
                        "samples": int(i) * 16,
                        "tokens": int(i) * TOKENS_PER_STEP,
                        "flops": 6.1 * n * i * TOKENS_PER_STEP,
                        "lr": float(lrs[i - 1]),
                        "lr_sum": float(lrs[:i].sum()),
                        "loss": float(loss[i - 1]),
                    }
                    for i in range(1, last + 1)
                ]
                store.add_points(name, rows)
                store.add_fit(
                    name,
                    {
                        "step": last,
                        "status": "ok",
                        "law": "mpl",
                        "pred_final_loss": float(loss[-1]),
                        "pred_final_low": float(loss[-1]) - 0.02,
                        "pred_final_high": float(loss[-1]) + 0.02,
                    },
                )
                if last < steps:
                    store.mark_stopped(name, last, "forecast cannot beat the best")
                else:
                    store.mark_finished(name, last)
    store.close()
    return tmp_path


def test_report_files_frontier_and_measured_flops(sweep_dir):
    stages = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        summary = write_report(sweep_dir, bootstrap=30, progress=lambda stage, done, total: stages.append(stage))
    assert not caught  # numerical warnings are recorded in details.json, never raised out of the report
    report = sweep_dir / "report"
    for name in ("loss_vs_flops.png", "frontier.png", "schedules.png", "summary.json", "summary.md", "details.json"):
        assert (report / name).stat().st_size > 0, name
    assert summary["runs"] == 18 and summary["stopped"] == 1 and summary["finished"] == 17
    assert 0.0 < summary["compute_saved"] < 0.1  # half of one long run of the smallest size
    front = summary["frontier"]
    assert front["a"] is not None and front["a_ci"][0] < front["a"] < front["a_ci"][1]
    assert front["flop_convention"].startswith("measured FLOPs")  # the callback measured them: no 6ND claim
    details = json.loads((report / "details.json").read_text())
    assert (
        "numerical_warnings" in details and details["frontier_fit"]["bootstrap"]["choices"]["starts_per_resample"] == 1
    )
    assert [s for s in dict.fromkeys(stages)] == [s for s in STAGES if s in stages] and "bootstrap" in stages
    text = (report / "summary.md").read_text()
    assert "measured FLOPs" in text and "6·N·D (no FLOPs measured)" not in text


def test_non_embedding_convention_and_bad_convention(sweep_dir):
    summary = write_report(sweep_dir, bootstrap=0, n_convention="non-embedding")
    assert summary["frontier"]["a"] is not None and summary["frontier"]["verdict"]  # no bootstrap: said so
    with pytest.raises(InputError, match="non_embedding"):
        write_report(sweep_dir, bootstrap=0, n_convention="non_embedding")


def test_every_run_is_keyed_by_schedule_peak_lr_and_budget(sweep_dir):
    store = SweepStore(sweep_dir / "sweep.sqlite")
    runs = store.runs("toy")
    schedules = {name: store.planned_schedule(name) for name in runs["name"]}
    curves = {name: store.points(name) for name in runs["name"]}
    store.close()
    entries = distinct_schedules(runs, schedules)
    assert len(entries) == len(BUDGETS) * len(PEAKS)  # identical schedules drawn once, each peak LR apart
    assert {(e["peak_lr"], e["steps"]) for e in entries} == {(p, s) for p in PEAKS for s in BUDGETS.values()}
    assert all(len(e["runs"]) == len(SIZES) for e in entries)
    table = run_table(runs, curves, schedules)
    keys = set(zip(table["n"], table["peak_lr"], table["tokens"]))
    assert len(keys) == len(table) == 18  # panel (peak LR), colour (N) and marker (D) identify every run


def test_evaluated_finals_replace_the_training_loss_and_their_precision_is_summarised(sweep_dir):
    store = SweepStore(sweep_dir / "sweep.sqlite")
    runs = store.runs("toy")
    finished = runs[runs["status"] == "finished"]
    held_out = {}
    for row in finished.itertuples():
        n, d = row.n_params, row.max_steps * TOKENS_PER_STEP
        held_out[row.name] = 2.0 + 50 / n**0.35 + 400 / d**0.37 + 1e-4  # the law itself: no noisy curve ends there
        store.add_evals(row.name, row.max_steps, {"val_loss": held_out[row.name], "val_loss_sd": 0.004})
        store.add_evals(row.name, row.max_steps, {"val_loss_tokens": 100_000})
        store.update_run(row.name, config=row.config | {"evaluation": {"tokens": 100_000, "target_sd": 0.003}})
    store.close()
    summary = write_report(sweep_dir, bootstrap=0)
    details = json.loads((sweep_dir / "report" / "details.json").read_text())
    rows = {r["name"]: r for r in details["runs"]}
    for name, value in held_out.items():
        assert rows[name]["source"] == "evaluated" and rows[name]["loss"] == pytest.approx(value)
        assert rows[name]["loss_sd"] == pytest.approx(0.004) and rows[name]["eval_tokens"] == 100_000
    stopped = [r for r in rows.values() if r["status"] == "stopped"]
    assert stopped and all(r["source"] == "predicted" for r in stopped)
    evaluated = summary["finals"]["evaluated"]
    assert evaluated["n"] == len(held_out) and evaluated["meets_target"] is False
    assert evaluated["tokens_for_target"] == math.ceil(100_000 * (0.004 / 0.003) ** 2)  # SE² × tokens / target²
    assert "no_bootstrap" in summary["advice"]["reasons"] and not summary["advice"]["informative"]
