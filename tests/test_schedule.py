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


def test_pieces_reproduce_per_step_lrs_and_sums():
    rng = np.random.default_rng(3)
    lrs = np.concatenate([np.full(50, 1e-3), np.linspace(1e-3, 1e-4, 300), 1e-4 + 1e-5 * rng.random(40), np.full(10, 0.0)])
    schedule = Schedule(lrs, 1e-3, 0.0)
    assert schedule.n_pieces < 60  # the constant and linear stretches are one piece each
    assert np.allclose(schedule.lrs, lrs, rtol=0, atol=1e-15)
    assert np.allclose(schedule.lr_sum, np.concatenate([[0.0], np.cumsum(lrs)]), rtol=1e-12, atol=1e-18)
    first_k, count, drop = schedule.change_runs()
    previous = np.concatenate([[1e-3], lrs[:-1]])
    per_step = np.zeros(lrs.size + 1)
    for k, n, d in zip(first_k, count, drop):
        per_step[k : k + n] = d
    assert np.allclose(per_step[1:], previous - lrs, rtol=0, atol=1e-15)


def test_a_hundred_million_step_logged_schedule_stays_as_pieces():
    steps = np.linspace(1000, 10**8, 300).round()
    schedule = Schedule.from_logged(steps, np.linspace(1e-3, 1e-5, 300), warmup_steps=1000, total_steps=10**8)
    assert schedule.total_steps == 10**8 and schedule.n_pieces <= 300
    t = np.array([1, 5 * 10**7, 10**8 - 1000])
    exact_mid = np.interp(5 * 10**7 + 1000, steps, np.linspace(1e-3, 1e-5, 300))
    assert schedule.lr_at(t)[1] == pytest.approx(exact_mid, rel=1e-9)
    # S1 of a linear ramp from 1e-3 to 1e-5 over (1e8 - 1000) steps: its mean times its length
    assert schedule.lr_sum_at(t)[-1] == pytest.approx((10**8 - 1000) * (1e-3 + 1e-5) / 2, rel=1e-6)
    assert schedule.truncated(2000).total_steps == 2000
