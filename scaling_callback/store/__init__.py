"""The sweep store: sweeps, runs, per-step points, fits and stop decisions in one SQL database."""

from scaling_callback.store.sweep_store import POINT_COLUMNS, RUN_STATUSES, SweepStore
from scaling_callback.store.writer import BatchedWriter

__all__ = ["POINT_COLUMNS", "RUN_STATUSES", "BatchedWriter", "SweepStore"]
