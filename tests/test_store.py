"""SweepStore: runs, points, fits, priors, decisions, resume truncation, the writer, concurrent writers."""

from __future__ import annotations

import math
import multiprocessing
import sqlite3

import numpy as np
import pandas as pd
import pytest

from scaling_callback.errors import InputError
from scaling_callback.store import POINT_COLUMNS, BatchedWriter, SweepStore

DROP = {"B": 400.0, "C": 2.0, "beta": 0.5, "gamma": 0.6}


def _points(first: int, last: int, loss: float = 2.0) -> list[dict]:
    return [
        {"step": s, "samples": 32 * s, "tokens": None, "flops": 1e9 * s, "lr": 1e-3, "lr_sum": 1e-3 * s, "loss": loss}
        for s in range(first, last + 1)
    ]


@pytest.fixture
def store(store_url) -> SweepStore:
    return SweepStore(store_url)


def test_sqlite_file_uses_wal(tmp_path):
    store = SweepStore(tmp_path / "sweep.sqlite")
    store.register_run("a")
    mode = sqlite3.connect(tmp_path / "sweep.sqlite").execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"
    assert store.shareable and not SweepStore(":memory:").shareable


def test_points_round_trip_with_nan_loss_and_replace_by_step(store):
    store.register_run("a", sweep="s", config={"lr": 1e-3, "bad": math.nan}, n_params=10, n_params_nonembedding=8)
    rows = _points(1, 5)
    rows[2]["loss"] = math.nan
    assert store.add_points("a", rows) == 5
    store.add_points("a", _points(4, 6, loss=1.5))  # steps 4, 5 replaced, 6 added
    frame = store.points("a")
    assert list(frame.columns) == list(POINT_COLUMNS)
    assert frame.step.tolist() == [1, 2, 3, 4, 5, 6]
    assert math.isnan(frame.loss[2]) and frame.loss.tolist()[3:] == [1.5, 1.5, 1.5]
    run = store.get_run("a")
    assert run["sweep"] == "s" and run["config"] == {"lr": 1e-3, "bad": None} and run["n_params"] == 10


def test_runs_frame_reports_last_point_and_status(store):
    store.register_run("a", sweep="s", max_steps=10)
    store.register_run("b", sweep="t")
    store.add_points("a", _points(1, 10))
    store.mark_stopped("b", step=0, reason="diverged")
    runs = store.runs()
    assert runs.name.tolist() == ["a", "b"]
    a = runs.set_index("name").loc["a"]
    assert a.last_step == 10 and a.flops == 1e10 and a.n_points == 10 and a.status == "running"
    b = runs.set_index("name").loc["b"]
    assert b.status == "stopped" and b.stop_reason == "diverged" and b.n_points == 0
    assert store.runs(sweep="t").name.tolist() == ["b"]
    assert isinstance(runs.created_at.dtype, pd.DatetimeTZDtype)


def test_register_again_resumes_the_run_and_clears_its_stop(store):
    store.register_run("a", sweep="s")
    store.mark_stopped("a", step=5, reason="policy")
    again = store.register_run("a", sweep="s", n_params=3)
    assert again["status"] == "running" and again["stop_step"] is None and again["n_params"] == 3
    with pytest.raises(InputError, match="belongs to sweep 's'"):
        store.register_run("a", sweep="other")


def test_bad_input_names_the_value(store, tmp_path):
    with pytest.raises(InputError, match="'missing'"):
        store.points("missing")
    with pytest.raises(InputError, match="'done'"):
        store.register_run("a", status="done")
    with pytest.raises(InputError, match="directory"):
        SweepStore(tmp_path)
    with pytest.raises(InputError, match="empty"):
        SweepStore("  ")


def test_truncate_rewinds_points_fits_evals_and_decisions(store):
    store.register_run("a")
    store.add_points("a", _points(1, 20))
    store.add_evals("a", 10, {"val_loss": 1.0})
    store.add_evals("a", 20, {"val_loss": 0.9})
    store.add_fit("a", {"step": 15, "status": "ok"})
    store.add_decision("a", 15, False, reason="keep")
    assert store.truncate("a", 12) == 8
    assert store.last_step("a") == 12
    assert store.evals("a").step.tolist() == [10]
    assert store.fits("a").empty and store.decisions("a").empty


def test_what_a_run_lent_is_kept_by_sweep_replaced_and_dropped_when_the_run_rewinds(store):
    for name in ("a", "b"):
        store.register_run(name, sweep="s")
        store.add_points(name, _points(1, 20))
    store.register_run("elsewhere", sweep="other")
    store.set_lent("a", "finished", 20, "level=0.9", {"posterior": {"x": [1.0, 2.0]}, "backtests": []})
    store.set_lent("a", "finished", 20, "level=0.9", {"posterior": {"x": [3.0]}, "backtests": []})  # replaced
    store.set_lent("b", "stopped", 20, "level=0.9", {"posterior": {}, "backtests": []})
    store.set_lent("elsewhere", "finished", 5, "level=0.9", {})
    lent = store.lent("s")
    assert set(lent) == {"a", "b"} and lent["a"]["record"]["posterior"] == {"x": [3.0]}
    assert (lent["b"]["status"], lent["b"]["last_step"]) == ("stopped", 20)
    store.truncate("a", 12)  # its curve is rewound: what it lent came from the old one
    assert set(store.lent("s")) == {"b"}


def test_fits_have_ids_and_decisions_name_the_fit_they_used(store):
    store.register_run("live", sweep="s")
    first = store.add_fit("live", {"step": 50, "status": "ok", "law": "mpl", "forecast": {"loss": 2.0}})
    failed = store.add_fit("live", {"step": 60, "status": "failed: x", "law": "mpl"})
    assert failed > first
    store.add_decision("live", 50, False, probability=0.3, reason="keep", kind="continue", fit_id=first)
    decisions = store.decisions("live")
    assert decisions.fit_id.tolist() == [first] and decisions.kind.tolist() == ["continue"]
    assert store.latest_fit("live")["status"].startswith("failed")
    assert store.latest_fit("live", ok_only=True)["forecast"] == {"loss": 2.0}
    assert store.fits("live").id.tolist() == [first, failed]


def test_fits_json_is_valid_with_non_finite_values(store):
    store.register_run("a")
    store.add_fit(
        "a",
        {
            "step": 3,
            "status": "ok",
            "pred_final_loss": math.nan,
            "params": {"L0": math.inf, "A": np.float64(2)},
            "record": {"points": np.int64(5), "list": np.array([1.0, math.nan])},
        },
    )
    fit = store.fits("a").iloc[0]
    assert fit.params == {"L0": None, "A": 2.0} and fit.record == {"points": 5, "list": [1.0, None]}
    assert fit.pred_final_loss is None or math.isnan(fit.pred_final_loss)


def test_planned_schedule_and_decisions(store):
    store.register_run("a")
    lrs = np.linspace(1e-3, 1e-4, 7)
    store.set_planned_schedule("a", lrs, note="cosine")
    store.set_planned_schedule("a", lrs * 2)
    np.testing.assert_array_equal(store.planned_schedule("a"), lrs * 2)
    store.add_decision("a", 100, True, probability=0.97, reason="worse than best", policy="P")
    decisions = store.decisions()
    assert decisions.iloc[0].to_dict() | {"created_at": None} == {
        "run": "a",
        "step": 100,
        "policy": "P",
        "stop": True,
        "probability": 0.97,
        "reason": "worse than best",
        "created_at": None,
        "kind": None,
        "fit_id": None,
    }


def test_batched_writer_flushes_and_counts_errors(store):
    store.register_run("a")
    writer = BatchedWriter(store, retry_delay_s=0.01)
    writer.add_points("a", _points(1, 50))
    writer.submit(SweepStore.add_points, "no-such-run", _points(1, 1))
    assert writer.flush(timeout=30)
    assert store.last_step("a") == 50 and writer.written == 50
    assert len(writer.errors) == 1 and "no-such-run" in writer.errors[0]
    assert writer.close()
    with pytest.raises(RuntimeError):
        writer.submit(SweepStore.mark_finished, "a")


def test_writer_opens_the_store_on_its_thread_and_reports_failure(tmp_path):
    writer = BatchedWriter(tmp_path / "lazy.sqlite")
    writer.submit(SweepStore.register_run, "a", sweep="s")
    writer.add_points("a", _points(1, 4))
    assert writer.close(timeout=30) and not writer.errors
    assert writer.opened_store().last_step("a") == 4
    (tmp_path / "file").write_text("not a directory")
    broken = BatchedWriter(tmp_path / "file" / "x.sqlite")
    broken.add_points("a", _points(1, 2))
    assert broken.close(timeout=30) and broken.opened_store() is None
    assert len(broken.errors) == 2 and "could not be opened" in broken.errors[1]


def test_in_memory_store_is_shared_across_threads():
    store = SweepStore(":memory:")
    store.register_run("a")
    writer = BatchedWriter(store)
    writer.add_points("a", _points(1, 3))
    writer.close()
    assert store.last_step("a") == 3


def _write_from_process(url: str, run: str, n_batches: int, batch: int) -> None:
    store = SweepStore(url)
    store.register_run(run, sweep="concurrent")
    writer = BatchedWriter(store)
    for i in range(n_batches):
        writer.add_points(run, _points(i * batch + 1, (i + 1) * batch))
    writer.close(timeout=120)
    assert not writer.errors, writer.errors


def test_concurrent_writers_lose_no_rows(store_url):
    """8 processes write at once into one store (small load; the full load is in benchmarks/)."""
    url = store_url
    SweepStore(url)
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    workers = [context.Process(target=_write_from_process, args=(url, f"r{i}", 10, 20)) for i in range(8)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
    assert [w.exitcode for w in workers] == [0] * 8
    store = SweepStore(url)
    runs = store.runs()
    assert len(runs) == 8 and runs.n_points.tolist() == [200] * 8
    assert all(store.points(f"r{i}").step.tolist() == list(range(1, 201)) for i in range(8))


def test_register_or_rewind_drops_points_past_the_checkpoint_and_fills_what_is_missing(store):
    from scaling_callback.callback.recorder import Point

    store.register_or_rewind("r", sweep="s")
    store.add_points("r", [{"step": s, "loss": 5.0} for s in range(1, 9)])  # stored before a crash, past the checkpoint
    restored = [Point(s, 0, 0, 0.0, 0.0, 0.0, 4.0) for s in range(1, 7)]
    store.register_or_rewind("r", restored_step=6, restored_points=restored, sweep="s")
    points = store.points("r")
    assert list(points["step"]) == list(range(1, 7)) and len(store.runs("s")) == 1
    store.truncate("r", 3)  # a store that lost its last writes: the checkpoint's points fill the gap
    store.register_or_rewind("r", restored_step=6, restored_points=restored, sweep="s")
    points = store.points("r")
    assert list(points["step"]) == list(range(1, 7)) and list(points["loss"]) == [5.0] * 3 + [4.0] * 3
