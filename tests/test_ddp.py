"""2-process CPU DDP (gloo): ranks agree on the curve and on an early stop; only rank 0 stores."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from scaling_callback import SweepStore

SCRIPT = Path(__file__).with_name("ddp_train_script.py")


def run_script(out: Path, *args: str) -> tuple[dict, dict]:
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", PYTHONWARNINGS="ignore")
    done = subprocess.run(
        [sys.executable, str(SCRIPT), str(out), *args], env=env, timeout=240, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-3000:]
    rank0, rank1 = (json.loads((out / f"rank{r}.json").read_text()) for r in (0, 1))
    return rank0, rank1


@pytest.mark.slow
def test_two_process_ddp_records_global_values_and_stops_together(tmp_path):
    rank0, rank1 = run_script(tmp_path)

    assert rank0["run"] == rank1["run"]  # the generated name was broadcast from rank 0
    assert rank0["global_step"] == rank1["global_step"] < 400  # both ranks stopped, at the same step
    assert rank0["curve"] == rank1["curve"]

    points = SweepStore(tmp_path / "s.sqlite").points(rank0["run"])
    steps = points.step.to_numpy()
    assert steps.tolist() == list(range(1, rank0["global_step"] + 1)) == rank0["curve"]["step"]
    assert points.samples.tolist() == [2 * 4 * s for s in steps]  # both ranks' samples
    local = [[rank["local_losses"][str(s)] for s in steps] for rank in (rank0, rank1)]
    np.testing.assert_allclose(points.loss, np.mean(local, axis=0), rtol=1e-6)  # the global mean
    flops_one_rank = points.flops.iloc[0] / 2
    np.testing.assert_allclose(points.flops, 2 * flops_one_rank * steps)

    run = SweepStore(tmp_path / "s.sqlite").get_run(rank0["run"])
    assert run["status"] == "stopped" and run["stop_step"] == rank0["global_step"] and run["world_size"] == 2


@pytest.mark.slow
def test_the_law_policy_stops_a_ddp_run_on_the_same_step_on_both_ranks(tmp_path):
    """The real law policy, asked on rank 0, judges the run hopeless against a finished run far ahead of it."""
    store = SweepStore(tmp_path / "s.sqlite")
    steps = np.arange(1, 401)
    lrs = 0.01 * (1.0 - 0.9 * steps / 400)  # the script's LinearLR plan
    store.register_run("leader", sweep="ddp", max_steps=400)
    store.set_planned_schedule("leader", lrs)
    store.add_points(
        "leader", [{"step": int(s), "lr": float(lr), "loss": 0.01 + 0.2 / np.sqrt(s)} for s, lr in zip(steps, lrs)]
    )
    store.mark_finished("leader", 400)
    store.close()

    rank0, rank1 = run_script(tmp_path, "law")
    assert rank0["global_step"] == rank1["global_step"] < 400 and rank0["run"] == rank1["run"]
    run = SweepStore(tmp_path / "s.sqlite").get_run(rank0["run"])
    assert run["status"] == "stopped" and run["stop_step"] == rank0["global_step"]
    assert "leader observed final" in run["stop_reason"]
