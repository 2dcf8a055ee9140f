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


@pytest.mark.slow
def test_two_process_ddp_records_global_values_and_stops_together(tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", PYTHONWARNINGS="ignore")
    done = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path)], env=env, timeout=180, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    rank0, rank1 = (json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1))

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
