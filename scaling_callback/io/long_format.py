"""One entry point for every log format: :func:`read_runs` → the long-format frame."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from scaling_callback.errors import InputError
from scaling_callback.io import readers
from scaling_callback.io.columns import ColumnMap
from scaling_callback.io.sparse import CUMULATIVE, rows_by_step

SOURCES = ("csv", "lightning-csv", "tensorboard", "wandb", "store")
LONG_COLUMNS = ("run", "step", "loss", "lr", "lr_sum", "tokens", "flops", "samples")
LIGHTNING_OFFSET = 1  # self.log steps lag the optimizer-step count by one (see .sparse)
_STORE_RUN_FIELDS = ("sweep", "status", "n_params", "n_params_nonembedding")


def read_runs(
    path: str | Path,
    source: str = "csv",
    columns: ColumnMap | None = None,
    *,
    run: str | None = None,
    sweep: str | None = None,
) -> pd.DataFrame:
    """All runs in ``path`` (or the one named ``run``) as one long frame, ordered by run then step.

    Raises :class:`InputError` naming the file and what is missing for wrong formats, absent
    columns or tags, and runs without a finite loss.
    """
    columns = columns or ColumnMap()
    if source not in SOURCES:
        raise InputError(f"unknown source {source!r}; choose one of {', '.join(SOURCES)}")
    where = str(path)
    used: dict[str, dict] = {}
    parts = []
    if source == "csv":
        frame = readers.plain_csv(Path(path), columns)
        if frame.attrs["columns"]["loss"] is None:
            raise InputError(f"{where}: missing column(s) loss (name it with --loss-col)")
        frame = frame.astype({"run": str})
        for name, part in frame.groupby("run", sort=False):
            used[str(name)] = dict(frame.attrs["columns"])
            parts.append(part.sort_values("step", kind="stable") if frame.attrs["columns"]["step"] else part)
        offset = 0
    elif source == "store":
        offset = 0
        for name, points, info in readers.store(str(path), columns, sweep):
            if points.empty:
                raise InputError(f"{where}: run {name!r} has no points (an empty run)")
            part = points.assign(run=name)
            for field in _STORE_RUN_FIELDS:
                part[field] = info.get(field)
            used[name] = {
                "step": "step",
                "loss": "loss",
                "lr": "lr",
                "lr_sum": "lr_sum",
                "tokens": "tokens",
                "flops": "flops",
                "samples": "samples",
            }
            parts.append(part)
    else:
        reader = {"lightning-csv": readers.lightning_csv, "tensorboard": readers.tensorboard, "wandb": readers.wandb}[
            source
        ]
        offset = LIGHTNING_OFFSET
        for name, records, lightning in reader(Path(path), columns):
            shift = columns.step_offset if columns.step_offset is not None else (LIGHTNING_OFFSET if lightning else 0)
            offset = shift
            rows, roles = rows_by_step(records, columns, f"{where} run {name!r}", shift)
            used[name] = roles
            parts.append(rows.assign(run=name))
    if run is not None:
        parts = [p for p in parts if str(p["run"].iloc[0]) == run]
        if not parts:
            raise InputError(f"{where}: no run named {run!r}; it has {', '.join(used)}")
        used = {run: used[run]}
    frame = pd.concat(parts, ignore_index=True)
    ordered = list(LONG_COLUMNS) + [c for c in frame.columns if c not in LONG_COLUMNS]
    frame = frame.reindex(columns=ordered)
    for role in ("loss", "lr", *CUMULATIVE):
        frame[role] = pd.to_numeric(frame[role], errors="coerce").astype(float)
    _check(frame, where)
    frame.attrs["columns"] = used
    frame.attrs["source"] = source
    frame.attrs["step_offset"] = offset
    return frame


def _check(frame: pd.DataFrame, where: str) -> None:
    for name, part in frame.groupby("run", sort=False):
        loss = part["loss"].to_numpy(dtype=float)
        if not np.isfinite(loss).any():
            raise InputError(f"{where}: run {name!r} has no finite loss (an empty run)")
        step = part["step"].to_numpy(dtype=float)
        if np.any(np.diff(step) == 0):
            raise InputError(f"{where}: run {name!r} repeats step {step[np.flatnonzero(np.diff(step) == 0)[0]]:g}")


def column_of(frame: pd.DataFrame, name: str, where: str) -> str:
    """The frame's column for a name the user gave: a long-format column, or a logged name a role was read from."""
    if name in frame.columns:
        return name
    for roles in frame.attrs.get("columns", {}).values():
        for role, source in roles.items():
            if source == name:
                return role
    raise InputError(f"{where}: no column {name!r}; it has {', '.join(map(str, frame.columns))}")


def require(frame: pd.DataFrame, role: str, where: str) -> None:
    """Raise a one-line error when some run has no value for ``role`` (e.g. the LR a law needs)."""
    looked = {
        "lr": "lr, learning_rate, lr-<Optimizer>, scaling/lr or scaling/lr_sum",
        "flops": "flops, scaling/flops",
        "tokens": "tokens, scaling/tokens",
    }.get(role, role)
    for name, part in frame.groupby("run", sort=False):
        if not np.isfinite(part[role].to_numpy(dtype=float)).any():
            raise InputError(
                f"{where}: missing column(s) {role} in run {name!r} (looked for {looked}; name it with "
                f"--{role.replace('_', '-')}-col)"
            )
