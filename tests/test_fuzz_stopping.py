"""Stopping policies on sweeps of pathological curves: a Decision every time, never an exception or a hang."""

from __future__ import annotations

import warnings

import pytest

from tests.fuzz_harness import HANG_SECONDS
from tests.fuzz_sweeps import stopping_cases, stopping_contract, stopping_targets


@pytest.mark.parametrize("target", list(stopping_targets()))
def test_policies_decide_on_pathological_sweeps(target):
    decide, numbers = stopping_targets()[target]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        tally = stopping_contract(decide, stopping_cases(30, seed=31), target, numbers)
    detail = "; ".join(f"{f.label}: {f.kind} {f.detail}" for f in tally.failures[:5])
    assert tally.exceptions == 0 and tally.hangs == 0 and tally.broken == 0, detail
    assert tally.max_seconds < HANG_SECONDS
    assert tally.statuses.get("ok", 0) > 0
