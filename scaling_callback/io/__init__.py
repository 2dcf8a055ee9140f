"""Users' own logs in: Lightning ``CSVLogger`` files, TensorBoard directories, W&B history CSVs, a sweep store
or our CSV, read into one long-format frame ``run, step, loss, lr, lr_sum, tokens, flops, samples, ...``.

Example:
    >>> frame = read_runs("lightning_logs", "lightning-csv")           # every version below it is a run
    >>> frame = read_runs("tb", "tensorboard", ColumnMap(loss="val/loss"))
    >>> curves = curves_from_frame(frame, warmup_steps=100)            # per-run Curves for the fitters

``step`` counts optimizer steps done (docs/reference.md §1); ``frame.attrs["columns"]`` records, per run,
which logged metric filled each role, and ``frame.attrs["step_offset"]`` the step shift applied.
"""

from __future__ import annotations

from scaling_callback.io.columns import CANDIDATES, ColumnMap
from scaling_callback.io.curves import curves_from_frame, size_runs_from_frame
from scaling_callback.io.export import write_long
from scaling_callback.io.long_format import LONG_COLUMNS, SOURCES, column_of, read_runs, require

__all__ = [
    "CANDIDATES",
    "LONG_COLUMNS",
    "SOURCES",
    "ColumnMap",
    "column_of",
    "curves_from_frame",
    "read_runs",
    "require",
    "size_runs_from_frame",
    "write_long",
]
