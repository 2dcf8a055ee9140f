import numpy as np
import pytest

from scaling_callback.errors import InputError
from scaling_callback.laws.schedule import Schedule, linear_warmup_sum
from tests.curve_factory import PEAK, WARMUP, per_step_lrs


def test_from_per_step_detects_warmup_and_sums():
    lrs = per_step_lrs("cosine")
    schedule = Schedule.from_per_step(lrs)
    assert schedule.warmup_steps == WARMUP
    assert schedule.peak_lr == pytest.approx(PEAK)
    assert schedule.warmup_sum == pytest.approx(lrs[:WARMUP].sum(), rel=1e-12)
    assert schedule.lr_sum[-1] + schedule.warmup_sum == pytest.approx(lrs.sum(), rel=1e-12)
    assert schedule.total_steps == lrs.size


def test_no_warmup_when_lr_does_not_rise():
    schedule = Schedule.from_per_step(np.full(10, 1e-3))
    assert schedule.warmup_steps == 0 and schedule.warmup_sum == 0.0 and schedule.peak_lr == 1e-3


def test_from_logged_rebuilds_linear_interpolation_and_warmup():
    steps = np.array([100, 200, 300])
    lrs = np.array([1e-3, 5e-4, 1e-4])
    schedule = Schedule.from_logged(steps, lrs, warmup_steps=100)
    assert schedule.total_steps == 300
    assert schedule.lrs[49] == pytest.approx(7.5e-4)  # step 150: halfway between 1e-3 and 5e-4
    assert schedule.lrs[-1] == pytest.approx(1e-4)
    assert schedule.warmup_sum == pytest.approx(linear_warmup_sum(1e-3, 100)) == pytest.approx(1e-3 * 101 / 2)


def test_from_logged_accepts_warmup_sum_directly():
    schedule = Schedule.from_logged(np.array([10, 20]), np.array([1.0, 1.0]), warmup_steps=10, warmup_sum=3.5)
    assert schedule.warmup_sum == 3.5


def test_from_logged_sparse_rows_match_the_exact_schedule_closely():
    exact = per_step_lrs("cosine")
    logged_steps = np.arange(WARMUP, exact.size + 1, 128)
    rebuilt = Schedule.from_logged(logged_steps, exact[logged_steps - 1], warmup_steps=WARMUP, total_steps=exact.size)
    # linear interpolation between rows 128 steps apart, held constant after the last row
    assert np.max(np.abs(rebuilt.lrs - exact[WARMUP:])) < 2e-3 * PEAK


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"lrs": np.array([1.0, np.nan]), "peak_lr": 1.0, "warmup_sum": 0.0}, "finite"),
        ({"lrs": np.array([1.0]), "peak_lr": 0.0, "warmup_sum": 0.0}, "peak LR"),
        ({"lrs": np.array([1.0]), "peak_lr": 1.0, "warmup_sum": -1.0}, "S_W"),
    ],
)
def test_bad_schedules_are_rejected(kwargs, message):
    with pytest.raises(InputError, match=message):
        Schedule(**kwargs)


def test_repeated_logged_step_is_named():
    with pytest.raises(InputError, match="repeats step 5"):
        Schedule.from_logged(np.array([5, 5]), np.array([1.0, 1.0]))


def test_steps_outside_schedule_are_named():
    schedule = Schedule.from_per_step(per_step_lrs("constant"), WARMUP)
    with pytest.raises(InputError, match="outside the schedule"):
        schedule.post_warmup_steps(np.array([schedule.total_steps + 1]))


def test_decrease_until_counts_lr_decreases_as_a_fraction_of_the_peak():
    lrs = np.concatenate([np.linspace(0.1, 1.0, 10), np.full(10, 1.0), np.linspace(0.9, 0.1, 9), np.full(3, 0.5)])
    schedule = Schedule.from_per_step(lrs)
    assert schedule.warmup_steps == 10
    assert schedule.decrease_until(np.array([10, 20, 29, 32])) == pytest.approx([0.0, 0.0, 0.9, 0.9])  # rises ignored
