"""Progress display: plain lines off a terminal (throttled, elapsed, ETA), report stages, the sweep's ETA model."""

from __future__ import annotations

import io

import numpy as np

from scaling_callback.progress import LiveProgress, ReportProgress, format_seconds
from scaling_callback.sweep.progress_view import per_run_model


def test_plain_lines_say_count_status_elapsed_and_eta():
    stream = io.StringIO()
    live = LiveProgress("job", 4, "runs", stream, terminal=False)
    live.update(1, "1 running", force=True)
    live.update(2, "1 running")  # within the throttle interval: not written
    live.update(4, "done")  # the total reached: always written
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("[job] 1/4 runs | 1 running | elapsed") and "ETA" in lines[0]
    assert lines[1].startswith("[job] 4/4 runs | done")


def test_caller_eta_is_printed():
    stream = io.StringIO()
    LiveProgress("job", 3, stream=stream, terminal=False, caller_eta=True).update(1, "x", force=True, eta=125.0)
    assert "ETA 2 min 05 s" in stream.getvalue()


def test_terminal_draws_a_bar():
    stream = io.StringIO()
    live = LiveProgress("job", 10, "resamples", stream, terminal=True)
    live.update(5, "half")
    live.close()
    assert "5/10 resamples" in stream.getvalue() and "half" in stream.getvalue()


def test_report_stages_and_bootstrap_counts_off_a_terminal():
    stream = io.StringIO()
    with ReportProgress(stream, terminal=False) as progress:
        progress.update("fitting the frontier", 0, 1)
        for done in (0, 100, 200):
            progress.update("bootstrap", done, 200)
        progress.update("plots", 0, 1)
    text = stream.getvalue()
    assert "[report] fitting the frontier" in text and "200/200 resamples" in text and "[report] plots" in text


def test_format_seconds():
    assert format_seconds(42) == "42 s" and format_seconds(185) == "3 min 05 s" and format_seconds(3720) == "1 h 02 min"
    assert format_seconds(None) == "?"


def test_per_run_model_recovers_start_up_and_rate():
    work = np.array([1.0, 2.0, 4.0, 8.0])
    c0, c1 = per_run_model(work, 10.0 + 3.0 * work)
    assert abs(c0 - 10.0) < 1e-9 and abs(c1 - 3.0) < 1e-9
    assert per_run_model(np.array([2.0, 2.0]), np.array([4.0, 6.0])) == (0.0, 2.5)  # one work size: proportional
    assert per_run_model(np.array([1.0, 2.0]), np.array([9.0, 5.0]))[1] == 0.0  # never a negative rate


def _grid_store(path):
    from scaling_callback.store import SweepStore

    store = SweepStore(path / "s.sqlite")
    store.create_sweep("s")
    for n in (1e3, 2e3, 4e3):
        for d in (1e5, 2e5, 4e5):
            name = f"n{n:g}_d{d:g}"
            store.register_run(name, sweep="s", max_steps=100, n_params=int(n), config={"tokens_per_step": d / 100})
            loss = 2.0 + 30.0 / n**0.5 + 300.0 / d**0.5
            store.add_points(
                name, [{"step": s, "flops": 6 * n * d * s / 100, "loss": loss + 0.1 / s} for s in (50, 100)]
            )
            store.add_evals(name, 100, {"val_loss": loss, "val_loss_sd": 0.002, "val_loss_tokens": 1e5})
            store.mark_finished(name, 100)
    return store


def test_the_frontier_is_refitted_only_when_its_points_change(tmp_path):
    from scaling_callback.sweep.progress_view import SweepProgress

    store = _grid_store(tmp_path)
    progress = SweepProgress("s", store.url, tmp_path, io.StringIO(), {f"r{i}": 1.0 for i in range(10)})
    history = tmp_path / "frontier_history.jsonl"
    progress.update({})
    assert len(history.read_text().splitlines()) == 1 and progress.frontier_a is not None
    # a losing run of an existing cell ends: the cell's best final, so the frontier's input, is unchanged
    store.register_run("loser", sweep="s", max_steps=100, n_params=1000, config={"tokens_per_step": 1e3})
    store.add_points("loser", [{"step": 100, "flops": 6e10, "loss": 9.0}])
    store.add_evals("loser", 100, {"val_loss": 9.0, "val_loss_sd": 0.002, "val_loss_tokens": 1e5})
    store.mark_finished("loser", 100)
    progress.update({})
    assert len(history.read_text().splitlines()) == 1
    # a new cell's run ends: refitted
    store.register_run("new", sweep="s", max_steps=100, n_params=8000, config={"tokens_per_step": 4e3})
    store.add_points("new", [{"step": 100, "flops": 6 * 8e3 * 4e5, "loss": 2.9}])
    store.add_evals("new", 100, {"val_loss": 2.0 + 30 / 8e3**0.5 + 300 / 4e5**0.5, "val_loss_sd": 0.002})
    store.mark_finished("new", 100)
    progress.update({})
    assert len(history.read_text().splitlines()) == 2
