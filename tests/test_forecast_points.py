"""A one-run-per-size sweep's forecast points come from its held-out evaluations when it recorded enough of them."""

from __future__ import annotations

import numpy as np
import pytest
from test_one_run_sweep import ONE_RUN

from scaling_callback.laws.loss_curves import MULTI_POWER
from scaling_callback.laws.lr_terms import lr_terms
from scaling_callback.laws.schedule import Schedule
from scaling_callback.report.forecast_points import MIN_EVALUATIONS, one_run_points
from scaling_callback.store import SweepStore
from scaling_callback.store.held_out import HELD_OUT_LOSS, HELD_OUT_SD, HELD_OUT_TOKENS
from scaling_callback.sweep.config import parse_config

TOKENS_PER_STEP = 32  # ONE_RUN's tiny LM: batch 4 x 8 tokens
STEPS, WARMUP, PEAK = 160, 4, 0.01
TRAINING_OFFSET = 0.3  # training losses sit this far above the held-out ones (another stream, another level)


def _plan() -> np.ndarray:
    t = np.arange(1, STEPS + 1)
    lrs = np.where(t < 0.8 * STEPS, PEAK, PEAK * (1.0 - 0.9 * (t - 0.8 * STEPS) / (0.2 * STEPS)))
    lrs[:WARMUP] = PEAK * t[:WARMUP] / WARMUP
    return lrs


def _store(tmp_path, every: int) -> SweepStore:
    """Two sizes, one WSD run each; held-out evaluations every ``every`` steps (0: at the end only)."""
    store = SweepStore(tmp_path / "sweep.sqlite")
    store.create_sweep("one_run", ONE_RUN)
    lrs = _plan()
    schedule = Schedule.from_per_step(lrs, WARMUP)
    steps = np.arange(WARMUP + 1, STEPS + 1)
    rng = np.random.default_rng(0)
    for name, n, floor in (("small", 2000, 3.0), ("large", 8000, 2.6)):
        config = {"tokens_per_step": TOKENS_PER_STEP, "max_steps": STEPS, "schedule": "wsd"}
        store.register_run(name, sweep="one_run", config=config, n_params=n, n_params_nonembedding=n, max_steps=STEPS)
        store.set_planned_schedule(name, lrs)
        law = MULTI_POWER.loss(np.array([floor, 0.6, 0.5, 30.0, 2.0, 0.55, 0.5]), lr_terms([schedule], [steps]))
        training = law + TRAINING_OFFSET + rng.normal(0.0, 0.01, steps.size)
        store.add_points(
            name,
            [{"step": int(s), "tokens": int(s) * TOKENS_PER_STEP, "loss": float(v)} for s, v in zip(steps, training)],
        )
        evaluated = [s for s in steps if (every and s % every == 0) or s == STEPS]
        for s in evaluated:
            held_out = float(law[s - WARMUP - 1] + rng.normal(0.0, 0.001))
            store.add_evals(name, int(s), {HELD_OUT_LOSS: held_out, HELD_OUT_SD: 0.001, HELD_OUT_TOKENS: 4096.0})
        store.mark_finished(name, STEPS)
    return store


@pytest.mark.parametrize("every, offset", [(STEPS // (2 * MIN_EVALUATIONS), 0.0), (0, TRAINING_OFFSET)])
def test_the_points_are_in_the_loss_of_the_curve_they_were_forecast_from(tmp_path, every, offset):
    """Enough evaluations: the points sit at the held-out level; an evaluation at the end only: the training level."""
    store = _store(tmp_path, every)
    try:
        frame, record = one_run_points(store, "one_run", parse_config(ONE_RUN))
        assert record["status"] == "ok" and not record["failures"] and len(frame) == 6
        largest = frame[frame.tokens == frame.tokens.max()].set_index("run")
        for run in ("small", "large"):
            held_out_final = float(store.evals(run).query(f"name == '{HELD_OUT_LOSS}'").value.iloc[-1])
            assert largest.loss[run] == pytest.approx(held_out_final + offset, abs=0.05)
    finally:
        store.close()
