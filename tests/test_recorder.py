"""StepRecorder: micro-batches into steps, cumulative sums, batched materialisation, resume state."""

from __future__ import annotations

import math

import numpy as np
import pytest

from scaling_callback.callback.recorder import COLUMNS, StepRecorder


def _record_steps(recorder: StepRecorder, lrs: list[float], micro: int = 2, first_step: int = 1) -> None:
    for i, lr in enumerate(lrs):
        for m in range(micro):
            recorder.add_micro_batch(loss=1.0 + m, samples=4, tokens=None, flops=10.0)
        recorder.set_lr(lr)
        recorder.end_step(first_step + i, recorder.local_payload())


def test_steps_accumulate_micro_batches_and_cumulative_sums():
    recorder = StepRecorder()
    _record_steps(recorder, [0.1, 0.2, 0.3])
    assert len(recorder) == 0 and len(recorder.pending) == 3  # nothing materialised yet
    points = recorder.commit()
    assert [p.step for p in points] == [1, 2, 3]
    assert [p.samples for p in points] == [8, 16, 24]
    assert [p.flops for p in points] == [20.0, 40.0, 60.0]
    assert [p.lr for p in points] == [0.1, 0.2, 0.3]
    assert points[-1].lr_sum == pytest.approx(0.6, rel=1e-15)
    assert all(p.loss == 1.5 and p.tokens is None for p in points)
    np.testing.assert_array_equal(recorder.column("step"), [1, 2, 3])


def test_tokens_and_missing_loss():
    recorder = StepRecorder()
    recorder.add_micro_batch(loss=None, samples=2, tokens=16, flops=1.0)
    recorder.set_lr(1e-3)
    recorder.end_step(1, recorder.local_payload())
    (point,) = recorder.commit()
    assert point.tokens == 16 and math.isnan(point.loss)


def test_materialiser_sees_all_pending_payloads_at_once():
    recorder = StepRecorder()
    _record_steps(recorder, [1.0, 1.0])
    seen = []

    def materialise(payloads):
        seen.append(len(payloads))
        return [(7.0, 1.0, math.nan, 2.0) for _ in payloads]

    points = recorder.commit(materialise)
    assert seen == [2] and [p.loss for p in points] == [7.0, 7.0] and points[-1].samples == 2


def test_replayed_steps_are_not_recorded_twice():
    recorder = StepRecorder()
    _record_steps(recorder, [0.1, 0.1, 0.1])
    recorder.commit()
    _record_steps(recorder, [0.1, 0.1], first_step=3)  # steps 3 (already recorded) and 4
    assert [p.step for p in recorder.commit()] == [4]
    assert recorder.step == 4 and len(recorder) == 4


def test_state_round_trip_continues_the_curve():
    recorder = StepRecorder()
    _record_steps(recorder, [0.1, 0.2])
    recorder.add_micro_batch(1.0, 4, None, 10.0)  # an unfinished step is not part of the state
    with pytest.raises(RuntimeError):
        recorder.state()
    recorder.commit()
    state = recorder.state()
    assert state["columns"] == list(COLUMNS) and state["curve"].shape == (2, 7)
    assert isinstance(state["totals"]["lr_sum"], float)
    restored = StepRecorder()
    restored.load_state(state)
    _record_steps(restored, [0.3], first_step=3)
    (point,) = restored.commit()
    assert point.step == 3 and point.samples == 24 and point.lr_sum == pytest.approx(0.6)
    assert [p.step for p in restored.points_after(1)] == [2, 3]
