"""Readers of each log format into per-run ``step, name, value`` records (see :mod:`scaling_callback.io`).

Each returns ``[(run, records, lightning_steps)]``; ``lightning_steps`` says the file was written by
Lightning, whose ``self.log`` steps lag the optimizer-step count by one (see :mod:`.sparse`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from scaling_callback.errors import InputError
from scaling_callback.files import check_sqlite_file, check_table_file
from scaling_callback.io.columns import ColumnMap, detect

RunRecords = tuple[str, pd.DataFrame, bool]
# bookkeeping columns of the loggers, never metrics
_NOT_METRICS = {"epoch", "_runtime", "_timestamp", "hp_metric", "_wandb", "wall_time", "created_at"}


def read_csv_frame(path: Path) -> pd.DataFrame:
    """A CSV as a frame, with one-line errors for missing, empty, binary, oversized or unreadable files."""
    check_table_file(path)
    try:
        frame = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError, OSError) as error:
        raise InputError(f"{path}: not a readable CSV ({type(error).__name__}: {_first_line(error)})") from None
    if frame.empty:
        raise InputError(f"{path}: no rows")
    return frame


def _first_line(error: BaseException) -> str:
    lines = [line for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


def _melt(frame: pd.DataFrame, step: str, exclude: set[str], where: str) -> pd.DataFrame:
    steps = pd.to_numeric(frame[step], errors="coerce")
    metrics = [c for c in frame.columns if c != step and str(c) not in exclude and str(c) not in _NOT_METRICS]
    numeric = {c: pd.to_numeric(frame[c], errors="coerce") for c in metrics}
    metrics = [c for c in metrics if numeric[c].notna().any()]
    if not metrics:
        raise InputError(f"{where}: no numeric metric columns besides {step!r}")
    wide = pd.DataFrame({"step": steps, **{str(c): numeric[c] for c in metrics}})
    wide = wide[wide["step"].notna()]
    return wide.melt(id_vars="step", var_name="name", value_name="value").dropna(subset=["value"])


def lightning_csv(path: Path, columns: ColumnMap) -> list[RunRecords]:
    """A CSVLogger ``metrics.csv``, or a directory holding any number of them (one run per file)."""
    if path.is_dir():
        files = sorted(path.rglob("metrics.csv"))
        if not files:
            raise InputError(f"{path}: no metrics.csv below this directory (is it a CSVLogger directory?)")
    elif path.exists():
        files = [path]
    else:
        raise InputError(f"{path}: no such file or directory")
    runs = []
    for file in files:
        frame = read_csv_frame(file)
        step = detect("step", frame.columns, columns.step, str(file), required=True)
        relative = file.parent.relative_to(path).as_posix() if path.is_dir() else "."
        name = file.parent.name if relative == "." else relative
        runs.append((name, _melt(frame, step, set(), str(file)), True))
    return runs


def tensorboard(path: Path, columns: ColumnMap) -> list[RunRecords]:
    """A TensorBoard log directory (read with ``tbparse``); every directory holding event files is a run."""
    try:
        from tbparse import SummaryReader
    except ImportError:
        raise InputError("reading TensorBoard logs needs tbparse: pip install 'scaling-callback[io]'") from None
    if not path.exists():
        raise InputError(f"{path}: no such file or directory")
    try:
        scalars = SummaryReader(str(path), extra_columns={"dir_name"}).scalars
    except Exception as error:
        raise InputError(
            f"{path}: not a readable TensorBoard log "
            f"({str(error).splitlines()[0] if str(error) else type(error).__name__})"
        ) from None
    if scalars.empty:
        raise InputError(f"{path}: no scalar summaries in any event file (is it a TensorBoard log directory?)")
    runs = []
    for directory, part in scalars.groupby("dir_name", sort=True):
        folder = path / directory if directory else (path if path.is_dir() else path.parent)
        name = directory or folder.name
        records = part.rename(columns={"tag": "name"})[["step", "name", "value"]]
        records = records[~records["name"].isin(_NOT_METRICS)]
        lightning = (folder / "hparams.yaml").exists()  # TensorBoardLogger writes it beside the events
        runs.append((name, records, lightning))
    return runs


def wandb(path: Path, columns: ColumnMap) -> list[RunRecords]:
    """A W&B history CSV (``run.history()`` or ``scan_history`` written out; a run column splits runs),
    or a chart's "Export CSV" (columns ``<run> - <metric>``, with ``__MIN``/``__MAX`` companions)."""
    frame = read_csv_frame(path)
    panel = [c for c in frame.columns if " - " in str(c)]
    if panel:
        step = detect("step", [c for c in frame.columns if c not in panel], columns.step, str(path), required=True)
        runs: dict[str, list[pd.DataFrame]] = {}
        for column in panel:
            if str(column).endswith(("__MIN", "__MAX")):
                continue
            run, metric = str(column).rsplit(" - ", 1)
            values = pd.to_numeric(frame[column], errors="coerce")
            runs.setdefault(run, []).append(
                pd.DataFrame(
                    {"step": pd.to_numeric(frame[step], errors="coerce"), "name": metric, "value": values}
                ).dropna()
            )
        return [
            (run, pd.concat(parts, ignore_index=True), step == "trainer/global_step") for run, parts in runs.items()
        ]
    step = detect("step", frame.columns, columns.step, str(path), required=True)
    run_col = detect("run", frame.columns, columns.run, str(path))
    exclude = {"_step", "trainer/global_step", "global_step"} - {step}
    lightning = step == "trainer/global_step"
    if run_col is None:
        return [(path.stem, _melt(frame, step, exclude, str(path)), lightning)]
    return [
        (str(run), _melt(part, step, exclude | {run_col}, f"{path} run {run}"), lightning)
        for run, part in frame.groupby(frame[run_col].astype(str), sort=False)
    ]


def store(path: str, columns: ColumnMap, sweep: str | None = None) -> list[tuple[str, pd.DataFrame, dict]]:
    """Every run of a sweep store (or of one sweep): its points with evaluations as extra columns, and its row."""
    from scaling_callback.store import SweepStore

    if "://" not in path:
        check_sqlite_file(path)
    try:
        opened = SweepStore(path, create=False)
    except InputError:
        raise
    except Exception as error:
        raise InputError(f"{path}: cannot open the store ({str(error).splitlines()[0]})") from None
    try:
        table = opened.runs(sweep)
        if table.empty:
            raise InputError(f"{path}: no runs" + (f" in sweep {sweep!r}" if sweep else ""))
        out = []
        for row in table.to_dict("records"):
            points = opened.points(row["name"])
            evals = opened.evals(row["name"])
            if not evals.empty:
                wide = evals.pivot_table(index="step", columns="name", values="value", aggfunc="last").reset_index()
                points = points.merge(wide, on="step", how="outer").sort_values("step", ignore_index=True)
            out.append((str(row["name"]), points, row))
        return out
    finally:
        opened.close()


def plain_csv(path: Path, columns: ColumnMap) -> pd.DataFrame:
    """Our long format (``step, lr, loss`` and optional ``run, tokens, flops, samples, lr_sum``), strictly checked."""
    frame = read_csv_frame(path)
    found = {
        role: detect(role, frame.columns, getattr(columns, role), str(path))
        for role in ("run", "step", "loss", "lr", "lr_sum", "tokens", "flops", "samples")
    }
    out = pd.DataFrame({"run": frame[found["run"]].astype(str) if found["run"] else path.stem}, index=frame.index)
    for role, name in found.items():
        if role == "run":
            continue
        if name is None:
            out[role] = np.nan
            continue
        values = pd.to_numeric(frame[name], errors="coerce").to_numpy(dtype=float)
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size:
            raise InputError(f"{path}: non-finite or non-numeric {name} in row {int(bad[0]) + 2}")
        out[role] = values
    for column in frame.columns:  # every other column rides along (groups, hyper-parameters, other metrics)
        if column not in found.values() and str(column) not in out.columns:
            out[str(column)] = frame[column].to_numpy()
    out.attrs["columns"] = {k: v for k, v in found.items() if k != "run"}
    return out
