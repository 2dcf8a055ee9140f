"""End to end: a tiny sweep through the CLI, its store and report; bad configs; resume after a kill."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from scaling_callback.cli import main

TINY = {
    "name": "tiny",
    "model": {"factory": "tiny_lm", "args": {"vocab_size": 16, "seq_len": 8, "batch_size": 4}},
    "grid": {
        "sizes": [{"d_model": 8, "n_layers": 1}, {"d_model": 16, "n_layers": 1}],
        "tokens": [1280],
        "schedules": ["cosine"],
    },
    "optimizer": {"peak_lr": 0.01, "warmup_steps": 4},
    "callback": {"fit_every_n_steps": 10},
    "stopping": {"policy": "none"},
    "frontier": {"bootstrap": 0},
    "workers": 1,
    "checkpoint_every_n_steps": 10,
}


def _write(tmp_path: Path, config: dict, name: str = "sweep.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.mark.slow
def test_tiny_sweep_end_to_end(tmp_path, capsys, store_url):
    out = tmp_path / "out"
    code = main(["sweep", str(_write(tmp_path, TINY | {"store": store_url})), "--out", str(out)])
    assert code == 0
    from scaling_callback.store import SweepStore

    store = SweepStore(store_url)
    runs = store.runs("tiny")
    assert sorted(runs["status"]) == ["finished", "finished"]
    for name in runs["name"]:
        points = store.points(name)
        assert list(points["step"]) == list(range(1, 41))  # 1280 tokens / 32 per step, every step once
        assert points["flops"].is_monotonic_increasing and points["lr_sum"].is_monotonic_increasing
        assert (points["loss"] > 0).all()
    store.close()
    report = out / "report"
    for name in ("loss_vs_flops.png", "frontier.png", "schedules.png", "summary.json", "summary.md", "details.json"):
        assert (report / name).stat().st_size > 0, name
    summary = json.loads((report / "summary.json").read_text())
    assert set(summary) >= {"runs", "finished", "stopped", "compute_saved", "frontier", "recommendation"}
    assert summary["runs"] == 2 and summary["finished"] == 2 and summary["stopped"] == 0
    assert summary["compute_saved"] == 0.0
    assert set(summary["frontier"]) >= {"a", "a_ci", "b", "b_ci", "E", "alpha", "beta", "flop_convention", "verdict"}
    assert summary["frontier"]["a"] is None and summary["frontier"]["verdict"]  # two runs: said, not invented
    assert "Sweep `tiny`" in (report / "summary.md").read_text()
    assert "report:" in capsys.readouterr().out
    # a second run without --resume refuses to mix sweeps
    assert main(["sweep", str(_write(tmp_path, TINY | {"store": store_url})), "--out", str(out), "--no-report"]) == 2


@pytest.mark.parametrize(
    "change, message",
    [
        ({"colour": "red"}, "config key 'colour': unknown key"),
        ({"workers": "many"}, "config key 'workers': expected an integer"),
        ({"model": {"factory": "no_such_module:build"}}, "config key 'model.factory': cannot import 'no_such_module'"),
        ({"model": {"factory": "transformer_xl"}}, "config key 'model.factory': unknown factory 'transformer_xl'"),
    ],
)
def test_bad_configs_are_one_line_errors_and_write_nothing(tmp_path, capsys, change, message):
    out = tmp_path / "out"
    code = main(["sweep", str(_write(tmp_path, TINY | change)), "--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and message in err
    assert not out.exists()


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc to find the worker process")
def test_resume_after_a_worker_is_killed(tmp_path):
    config = TINY | {"grid": TINY["grid"] | {"tokens": [6400]}, "checkpoint_every_n_steps": 20}
    path = _write(tmp_path, config)
    out = tmp_path / "out"
    command = [sys.executable, "-m", "scaling_callback", "sweep", str(path), "--out", str(out), "--no-report"]
    process = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=os.environ | {"OPENBLAS_NUM_THREADS": "1"}
    )
    checkpoint = out / "checkpoints"
    deadline = time.time() + 240
    while time.time() < deadline and not any(checkpoint.glob("*/last.ckpt")):
        time.sleep(0.5)
    assert any(checkpoint.glob("*/last.ckpt")), "no checkpoint written in time"
    workers = [c for c in _children(process.pid) if "python" in Path(f"/proc/{c}/cmdline").read_text()]
    assert workers
    for worker in workers:
        os.kill(worker, signal.SIGKILL)
    process.wait(timeout=120)
    assert main(["sweep", str(path), "--out", str(out), "--resume", "--no-report"]) == 0
    from scaling_callback.store import SweepStore

    store = SweepStore(out / "sweep.sqlite")
    runs = store.runs("tiny")
    assert len(runs) == 2 and set(runs["status"]) == {"finished"}
    for name in runs["name"]:
        steps = list(store.points(name)["step"])
        assert steps == list(range(1, 201)), name  # gapless, no duplicates
    store.close()


@pytest.mark.slow
def test_resume_after_ctrl_c(tmp_path):
    # 1000 steps a run (~7 s): the Ctrl-C, sent at the first checkpoint, lands mid-run even on a loaded machine
    # (with 200 steps a run could end before the signal reached its worker, seen once in a CI-style run)
    steps = 1000
    tokens_per_step = TINY["model"]["args"]["batch_size"] * TINY["model"]["args"]["seq_len"]
    config = TINY | {"grid": TINY["grid"] | {"tokens": [steps * tokens_per_step]}, "checkpoint_every_n_steps": 20}
    path = _write(tmp_path, config)
    out = tmp_path / "out"
    command = [sys.executable, "-m", "scaling_callback", "sweep", str(path), "--out", str(out), "--no-report"]
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=os.environ | {"OPENBLAS_NUM_THREADS": "1"},
    )
    checkpoint = out / "checkpoints"
    deadline = time.time() + 240
    while time.time() < deadline and not any(checkpoint.glob("*/last.ckpt")):
        time.sleep(0.5)
    assert any(checkpoint.glob("*/last.ckpt")), "no checkpoint written in time"
    process.send_signal(signal.SIGINT)  # the runner passes it on to its workers
    # ~3 s: nothing waits any more for the next queued run to train nor for a fit process (once over 120 s)
    output, _ = process.communicate(timeout=120)
    assert process.returncode == 130, output[-2000:]
    assert "--resume" in output
    from scaling_callback.store import SweepStore

    store = SweepStore(out / "sweep.sqlite")
    runs = store.runs("tiny").sort_values("created_at")
    assert runs["status"].iloc[-1] == "interrupted", runs  # resumable, not counted as an early stop
    assert set(runs["status"].iloc[:-1]) <= {"finished"}  # no run started after the Ctrl-C
    store.close()
    assert main(["sweep", str(path), "--out", str(out), "--resume", "--no-report"]) == 0
    store = SweepStore(out / "sweep.sqlite")
    runs = store.runs("tiny")
    assert len(runs) == 2 and set(runs["status"]) == {"finished"}
    for name in runs["name"]:
        assert list(store.points(name)["step"]) == list(range(1, steps + 1)), name  # gapless, no duplicates
    store.close()
