import numpy as np
import pytest

from scaling_callback.laws.lr_terms import lr_terms
from scaling_callback.laws.schedule import Schedule
from tests.curve_factory import WARMUP, per_step_lrs


def _brute_force_drop_pairs(schedule: Schedule, t: int):
    lrs = np.concatenate([[schedule.peak_lr], schedule.lrs])
    pairs = []
    for k in range(1, t + 1):
        if lrs[k - 1] != lrs[k]:
            pairs.append((lrs[k - 1] - lrs[k], lrs[k], lrs[k : t + 1].sum()))
    return pairs


def test_exact_terms_match_the_definition():
    schedule = Schedule.from_per_step(per_step_lrs("two_stage", total=600, warmup=50), 50)
    steps = np.array([50, 120, 300, 600])
    terms = lr_terms([schedule], [steps])
    for point, step in enumerate(steps):
        t = step - 50
        expected = _brute_force_drop_pairs(schedule, t)
        mine = np.flatnonzero(terms.pair_point == point)
        assert len(mine) == len(expected)
        for index, (dlr, lr, total) in zip(mine, expected):
            assert terms.pair_dlr[index] == dlr
            assert terms.pair_lr[index] == lr
            assert np.isclose(terms.pair_sum[index], total, rtol=1e-12)
        assert np.isclose(terms.s1[point], schedule.lrs[:t].sum(), rtol=1e-12)


def test_only_changing_steps_contribute():
    schedule = Schedule.from_per_step(per_step_lrs("constant"), WARMUP)
    terms = lr_terms([schedule], [np.array([WARMUP, 2000, 4000])])
    assert terms.pair_point.size == 0


def test_blocks_keep_mass_and_never_straddle_points():
    schedule = Schedule.from_per_step(per_step_lrs("cosine"), WARMUP)
    steps = np.arange(WARMUP, 4001, 40)
    exact = lr_terms([schedule], [steps])
    blocked = lr_terms([schedule], [steps], max_blocks=64)
    assert blocked.pair_point.size < exact.pair_point.size / 5
    assert np.allclose(exact.point_sums(exact.pair_dlr), blocked.point_sums(blocked.pair_dlr), rtol=1e-10, atol=1e-15)


def test_several_curves_concatenate_and_subset():
    a = Schedule.from_per_step(per_step_lrs("cosine"), WARMUP)
    b = Schedule.from_per_step(per_step_lrs("wsd"), WARMUP)
    terms = lr_terms([a, b], [np.array([1000, 4000]), np.array([4000])])
    assert terms.n_points == 3
    single = lr_terms([b], [np.array([4000])])
    subset = terms.subset(np.array([False, False, True]))
    assert np.allclose(subset.point_sums(subset.pair_dlr), single.point_sums(single.pair_dlr))
    assert np.allclose(subset.pair_sum, single.pair_sum)


def test_linear_decay_runs_match_every_step_sums():
    lrs = np.concatenate([np.full(200, 1e-3), np.linspace(1e-3, 1e-4, 800)])
    schedule = Schedule(lrs, 1e-3, 0.0)
    steps = np.array([100, 400, 700, 1000])
    terms = lr_terms([schedule], [steps])
    for point, t in enumerate(steps):
        expected = _brute_force_drop_pairs(schedule, t)
        mine = np.flatnonzero(terms.pair_point == point)
        assert len(mine) == len(expected)
        assert np.allclose(terms.pair_sum[mine], [e[2] for e in expected], rtol=1e-10)
        assert np.allclose(terms.pair_dlr[mine], [e[0] for e in expected], rtol=1e-6)


def test_cost_follows_the_pieces_not_the_steps():
    steps = np.linspace(1000, 10**8, 300).round()
    schedule = Schedule.from_logged(steps, np.linspace(1e-3, 1e-5, 300), warmup_steps=1000, total_steps=10**8)
    points = np.unique(np.linspace(2000, 6 * 10**7, 300).round().astype(int))
    blocked = lr_terms([schedule], [points], max_blocks=512)
    assert blocked.block_lr.size < 2 * (512 + points.size)
    final = lr_terms([schedule], [np.array([schedule.total_steps])])
    s1 = schedule.lr_sum_at(np.array([schedule.n_steps]))[0]
    assert final.point_sums(final.pair_dlr)[0] == pytest.approx(1e-3 - 1e-5, rel=1e-9)  # every decrease counted
    assert final.s1[0] == pytest.approx(s1)
    assert final.pair_point.size <= 2**16 + 1
