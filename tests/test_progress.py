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
