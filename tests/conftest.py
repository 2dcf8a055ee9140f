"""Shared fixtures: the optional reference curves beside the project, and quiet BLAS threads."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

SHARED_CURVES = Path(__file__).resolve().parents[1].parent / "shared" / "reference" / "mpl_curves"


@pytest.fixture
def mpl_curves_dir() -> Path:
    """The MPL paper's curves in ../shared (never committed); skip when absent."""
    if not SHARED_CURVES.is_dir():
        pytest.skip("../shared/reference/mpl_curves is not present")
    return SHARED_CURVES
