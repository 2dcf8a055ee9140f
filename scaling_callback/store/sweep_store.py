"""The sweep store: what every run of a sweep records, readable by the other runs and by reports.

Example:
    >>> store = SweepStore("sweep.sqlite")
    >>> store.register_run("lr3e-4", sweep="width", config={"lr": 3e-4}, n_params=1_000_000)
    >>> store.add_points("lr3e-4", [{"step": 1, "samples": 32, "flops": 1e9, "lr": 3e-4, "lr_sum": 3e-4, "loss": 4.1}])
    >>> store.points("lr3e-4")  # DataFrame: step, samples, tokens, flops, lr, lr_sum, loss

Writes happen in short transactions; a background :class:`~scaling_callback.store.writer.BatchedWriter` over a store lets a
training loop only enqueue. NaN losses are stored as NULL and read back as NaN.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import Connection, and_, delete, func, insert, select, update
from sqlalchemy.exc import ArgumentError, DatabaseError, IntegrityError

from scaling_callback.errors import InputError
from scaling_callback.store import tables as t
from scaling_callback.store.engine import READONLY, is_memory, make_engine, normalise_url
from scaling_callback.store.fit_records import FitRecords
from scaling_callback.store.schema import check_schema, current_version, migrate
from scaling_callback.store.sql_values import (
    POINT_KEYS,
    jsonable,
    plain_number,
    postgres_insert_points,
    sqlite_insert_points,
    upsert,
    with_times,
)
from scaling_callback.store.tables import POINT_COLUMNS

if TYPE_CHECKING:
    import pandas as pd


RUN_STATUSES = ("running", "finished", "stopped", "interrupted", "failed")  # interrupted: Ctrl-C, resumable


class SweepStore(FitRecords):
    """Sweeps, runs (config, N, status, stop reason), per-step points, evaluations, fits and stop decisions.

    Args:
        url_or_path: a SQLite file path (created with WAL journaling) or any SQLAlchemy URL.
        create: create the store when the database is empty (writers). Readers pass False: a
            missing file, a file that is not SQLite, or a database without the store's tables is
            an :class:`InputError` naming it, and nothing is created.
    """

    def __init__(self, url_or_path: str | Path, *, create: bool = True) -> None:
        self.url = normalise_url(url_or_path)
        if not create:
            _check_existing(self.url)
        try:
            self._engine = make_engine(self.url)
        except ImportError as error:  # the URL names a database whose driver is not installed
            raise InputError(f"store {self.url}: its database driver is not installed ({error})") from None
        except ArgumentError as error:  # an unknown dialect or bad URL parts
            raise InputError(f"store {self.url}: not a database SQLAlchemy knows ({_first_line(error)})") from None
        self._run_ids: dict[str, int] = {}
        # in-memory SQLite is one connection shared by all threads: take turns on it
        self._lock = threading.RLock() if is_memory(self.url) else nullcontext()
        try:
            self._create_schema(create)
        except BaseException:
            self._engine.dispose()
            raise

    def _create_schema(self, create: bool = True) -> None:
        """Create or migrate the tables (see :mod:`schema`); one cheap read when they are current (every run opens the store)."""
        try:
            with self._read() as conn:
                current = check_schema(conn)
                empty = not current and current_version(conn) is None
        except InputError:
            raise
        except DatabaseError as error:  # e.g. "file is not a database", a corrupt page
            raise InputError(f"store {self.url}: cannot be read ({_first_line(error.orig or error)})") from None
        if empty and not create:
            raise InputError(f"store {self.url}: holds no scaling-callback tables (not a sweep store)")
        if not current:
            with self._write() as conn:
                migrate(conn)

    @property
    def shareable(self) -> bool:
        """Whether another process can open this store by its URL (false for in-memory SQLite)."""
        return not is_memory(self.url)

    def close(self) -> None:
        """Release the connection pool."""
        self._engine.dispose()

    def create_sweep(self, name: str, config: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Create sweep ``name`` or return the existing one (its config is kept)."""
        _check_name("sweep", name)
        existing = self.get_sweep(name)
        if existing is not None:
            return existing
        try:
            with self._write() as conn:
                conn.execute(insert(t.sweeps).values(name=name, config=jsonable(config or {}), created_at=time.time()))
        except IntegrityError:  # created by another process in the meantime
            pass
        return self.get_sweep(name)  # type: ignore[return-value]

    def get_sweep(self, name: str) -> dict[str, Any] | None:
        """The sweep's row as a dict, or None."""
        with self._read() as conn:
            row = conn.execute(select(t.sweeps).where(t.sweeps.c.name == name)).mappings().first()
        return dict(row) if row else None

    def sweeps(self) -> pd.DataFrame:
        """All sweeps with their number of runs."""
        n_runs = select(t.runs.c.sweep_id, func.count().label("n_runs")).group_by(t.runs.c.sweep_id).subquery()
        query = (
            select(
                t.sweeps.c.name,
                t.sweeps.c.config,
                t.sweeps.c.created_at,
                func.coalesce(n_runs.c.n_runs, 0).label("n_runs"),
            )
            .select_from(t.sweeps.outerjoin(n_runs, n_runs.c.sweep_id == t.sweeps.c.id))
            .order_by(t.sweeps.c.id)
        )
        return with_times(self._frame(query))

    # -------------------------------------------------------------------- runs
    def register_run(
        self,
        name: str,
        *,
        sweep: str | None = None,
        config: Mapping[str, Any] | None = None,
        n_params: int | None = None,
        n_params_nonembedding: int | None = None,
        max_steps: int | None = None,
        flops_source: str | None = None,
        world_size: int | None = None,
        status: str = "running",
    ) -> dict[str, Any]:
        """Create run ``name`` or, when it exists (a resumed run), update the given fields and its status.

        Re-registering clears a previous stop step and reason.
        """
        _check_name("run", name)
        _check_status(status)
        sweep_id = self.create_sweep(sweep)["id"] if sweep is not None else None
        now = time.time()
        fields = {
            "sweep_id": sweep_id,
            "config": jsonable(config) if config is not None else None,
            "n_params": n_params,
            "n_params_nonembedding": n_params_nonembedding,
            "max_steps": max_steps,
            "flops_source": flops_source,
            "world_size": world_size,
        }
        given = {k: v for k, v in fields.items() if v is not None}
        existing = self.get_run(name)
        if existing is not None and sweep is not None and existing["sweep"] not in (None, sweep):
            raise InputError(f"run {name!r} belongs to sweep {existing['sweep']!r}, not {sweep!r}")
        conflict: IntegrityError | None = None
        with self._write() as conn:
            if existing is None:
                try:
                    with conn.begin_nested():
                        conn.execute(
                            insert(t.runs).values(name=name, status=status, created_at=now, updated_at=now, **given)
                        )
                except IntegrityError as error:  # registered by another process meanwhile, or a real conflict
                    existing, conflict = {}, error
            if existing is not None:
                updated = conn.execute(
                    update(t.runs)
                    .where(t.runs.c.name == name)
                    .values(status=status, updated_at=now, stop_step=None, stop_reason=None, **given)
                ).rowcount
                if conflict is not None and not updated:  # not a race on the name: never lose the run silently
                    raise conflict
        return self.get_run(name)  # type: ignore[return-value]

    def get_run(self, name: str) -> dict[str, Any] | None:
        """The run's row (with its sweep's name under ``sweep``) as a dict, or None."""
        query = (
            select(t.runs, t.sweeps.c.name.label("sweep"))
            .select_from(t.runs.outerjoin(t.sweeps, t.sweeps.c.id == t.runs.c.sweep_id))
            .where(t.runs.c.name == name)
        )
        with self._read() as conn:
            row = conn.execute(query).mappings().first()
        return dict(row) if row else None

    def update_run(self, name: str, **fields: Any) -> None:
        """Update descriptive fields of a run (``config``, ``n_params``, ``flops_source``, ``max_steps``...)."""
        allowed = {"config", "n_params", "n_params_nonembedding", "max_steps", "flops_source", "world_size"}
        unknown = set(fields) - allowed
        if unknown:
            raise InputError(f"cannot update run field(s) {sorted(unknown)}; updatable: {sorted(allowed)}")
        if "config" in fields:
            fields["config"] = jsonable(fields["config"])
        run_id = self._run_id(name)
        with self._write() as conn:
            conn.execute(update(t.runs).where(t.runs.c.id == run_id).values(updated_at=time.time(), **fields))

    def set_run_status(self, name: str, status: str, *, step: int | None = None, reason: str | None = None) -> None:
        """Set a run's status; ``step`` and ``reason`` record where and why it stopped or failed."""
        _check_status(status)
        run_id = self._run_id(name)
        with self._write() as conn:
            conn.execute(
                update(t.runs)
                .where(t.runs.c.id == run_id)
                .values(status=status, stop_step=step, stop_reason=reason, updated_at=time.time())
            )

    def register_or_rewind(
        self, name: str, restored_step: int = 0, restored_points: Sequence[Any] = (), **fields: Any
    ) -> None:
        """Register the run; resumed at ``restored_step``, drop stored points past it and add those it lacks."""
        self.register_run(name, **fields)
        if restored_step:
            self.truncate(name, restored_step)
            last = self.last_step(name)
            self.add_points(name, [p for p in restored_points if p.step > last])

    def mark_finished(self, name: str, step: int | None = None) -> None:
        """The run reached its planned end."""
        self.set_run_status(name, "finished", step=step)

    def mark_stopped(self, name: str, step: int, reason: str) -> None:
        """The run was stopped early at ``step`` (by a policy or the trainer) for ``reason``."""
        self.set_run_status(name, "stopped", step=step, reason=reason)

    def runs(self, sweep: str | None = None) -> pd.DataFrame:
        """Runs (of one sweep, or all) with their last point: ``last_step, samples, tokens, flops, last_loss``."""
        last = (
            select(t.points.c.run_id, func.max(t.points.c.step).label("last_step"), func.count().label("n_points"))
            .group_by(t.points.c.run_id)
            .subquery()
        )
        query = (
            select(
                t.runs.c.name,
                t.sweeps.c.name.label("sweep"),
                t.runs.c.status,
                t.runs.c.n_params,
                t.runs.c.n_params_nonembedding,
                t.runs.c.max_steps,
                t.runs.c.flops_source,
                t.runs.c.world_size,
                t.runs.c.stop_step,
                t.runs.c.stop_reason,
                t.runs.c.config,
                t.runs.c.created_at,
                t.runs.c.updated_at,
                func.coalesce(last.c.n_points, 0).label("n_points"),
                last.c.last_step,
                t.points.c.samples,
                t.points.c.tokens,
                t.points.c.flops,
                t.points.c.loss.label("last_loss"),
            )
            .select_from(
                t.runs.outerjoin(t.sweeps, t.sweeps.c.id == t.runs.c.sweep_id)
                .outerjoin(last, last.c.run_id == t.runs.c.id)
                .outerjoin(t.points, and_(t.points.c.run_id == t.runs.c.id, t.points.c.step == last.c.last_step))
            )
            .order_by(t.runs.c.id)
        )
        if sweep is not None:
            query = query.where(t.sweeps.c.name == sweep)
        return with_times(self._frame(query))

    # --------------------------------------------------------------- schedules
    def set_planned_schedule(self, run: str, lrs: np.ndarray, note: str | None = None) -> None:
        """Store the LR of every planned step (``lrs[i]`` is the LR of step i+1), replacing an older plan."""
        values = np.ascontiguousarray(np.asarray(lrs, dtype="<f8"))
        if values.ndim != 1:
            raise InputError(f"a planned schedule must be one-dimensional, got shape {values.shape}")
        row = {"run_id": self._run_id(run), "n_steps": int(values.size), "lrs": values.tobytes(), "note": note}
        with self._write() as conn:
            upsert(conn, t.schedules, [row], ("run_id",))

    def planned_schedule(self, run: str) -> np.ndarray | None:
        """The run's planned per-step LRs, or None when none was recorded."""
        run_id = self._run_id(run)
        with self._read() as conn:
            blob = conn.execute(select(t.schedules.c.lrs).where(t.schedules.c.run_id == run_id)).scalar()
        return None if blob is None else np.frombuffer(blob, dtype="<f8").copy()

    # ------------------------------------------------------------------ points
    def add_points(self, run: str, rows: Iterable[Mapping[str, Any] | Sequence[Any]]) -> int:
        """Insert (or replace, by step) per-step points; returns the count.

        A row is a mapping (missing columns are NULL) or a sequence of plain numbers in
        ``POINT_COLUMNS`` order (the callback's points, written without conversion).
        """
        run_id = self._run_id(run)
        records = [
            (run_id, *row)
            if isinstance(row, (tuple, list))
            else (run_id, *(plain_number(row.get(c)) for c in POINT_COLUMNS))
            for row in rows
        ]
        if not records:
            return 0
        if any(r[1] is None for r in records):
            raise InputError(f"every point of run {run!r} needs a step")
        if self._engine.dialect.name == "sqlite":
            with self._lock:
                sqlite_insert_points(self._engine, records)
            return len(records)
        if self._engine.dialect.driver == "psycopg":
            postgres_insert_points(self._engine, records)
            return len(records)
        with self._write() as conn:
            upsert(conn, t.points, [dict(zip(POINT_KEYS, map(plain_number, r))) for r in records], ("run_id", "step"))
        return len(records)

    def points(self, run: str) -> pd.DataFrame:
        """The run's points ordered by step: ``step, samples, tokens, flops, lr, lr_sum, loss``."""
        columns = [t.points.c[c] for c in POINT_COLUMNS]
        query = select(*columns).where(t.points.c.run_id == self._run_id(run)).order_by(t.points.c.step)
        frame = self._frame(query)
        for column in ("flops", "lr", "lr_sum", "loss"):
            frame[column] = frame[column].astype(float)
        return frame

    def last_step(self, run: str) -> int:
        """Largest stored step of the run (0 when it has none)."""
        run_id = self._run_id(run)
        with self._read() as conn:
            value = conn.execute(select(func.max(t.points.c.step)).where(t.points.c.run_id == run_id)).scalar()
        return int(value or 0)

    def truncate(self, run: str, after_step: int) -> int:
        """Delete the run's points, evaluations, fits and decisions after ``after_step`` (a resume rewinds), and what it lent.

        Returns the number of points deleted.
        """
        run_id = self._run_id(run)
        with self._write() as conn:
            deleted = conn.execute(
                delete(t.points).where(t.points.c.run_id == run_id, t.points.c.step > after_step)
            ).rowcount
            for table in (t.evals, t.fits, t.decisions):
                conn.execute(delete(table).where(table.c.run_id == run_id, table.c.step > after_step))
            conn.execute(delete(t.lent).where(t.lent.c.run_id == run_id))  # lent by the curve that is rewound
        return int(deleted or 0)

    def add_evals(self, run: str, step: int, values: Mapping[str, float]) -> None:
        """Validation (or other evaluation) metrics of the run at ``step``."""
        run_id = self._run_id(run)
        rows = [
            {"run_id": run_id, "step": int(step), "name": str(k), "value": plain_number(v)} for k, v in values.items()
        ]
        if rows:
            with self._write() as conn:
                upsert(conn, t.evals, rows, ("run_id", "step", "name"))

    def evals(self, run: str) -> pd.DataFrame:
        """The run's evaluation metrics: ``step, name, value``."""
        query = (
            select(t.evals.c.step, t.evals.c.name, t.evals.c.value)
            .where(t.evals.c.run_id == self._run_id(run))
            .order_by(t.evals.c.step, t.evals.c.name)
        )
        return self._frame(query)

    def _run_id(self, name: str) -> int:
        run_id = self._run_ids.get(name)
        if run_id is None:
            with self._read() as conn:
                run_id = conn.execute(select(t.runs.c.id).where(t.runs.c.name == name)).scalar()
            if run_id is None:
                raise InputError(f"run {name!r} is not in the store {self.url}")
            self._run_ids[name] = run_id
        return run_id

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        with self._lock, self._engine.connect() as conn:
            conn.execution_options(**{READONLY: True})
            with conn.begin():
                yield conn

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        with self._lock, self._engine.begin() as conn:
            yield conn

    def _frame(self, query) -> pd.DataFrame:
        import pandas as pd

        with self._read() as conn:
            result = conn.execute(query)
            rows, columns = [tuple(row) for row in result.fetchall()], list(result.keys())
        return pd.DataFrame(rows, columns=columns)  # plain tuples: pandas probes SQLAlchemy rows for attributes, slowly


def _check_name(kind: str, name: str) -> None:
    if not isinstance(name, str) or not name.strip():
        raise InputError(f"{kind} name must be a non-empty string, got {name!r}")


def _check_status(status: str) -> None:
    if status not in RUN_STATUSES:
        raise InputError(f"run status {status!r} is not one of {', '.join(RUN_STATUSES)}")


def _first_line(error: object) -> str:
    lines = [line for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


def _check_existing(url: str) -> None:
    """For readers: a SQLite store must already exist as a SQLite file (nothing is created)."""
    from sqlalchemy.engine import make_url

    from scaling_callback.files import check_sqlite_file

    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return
    path = check_sqlite_file(parsed.database)
    # read-only look at the table names first: opening through the engine sets WAL mode, a write
    import sqlite3
    from contextlib import closing

    try:
        with closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)) as conn:
            names = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    except sqlite3.DatabaseError as error:
        raise InputError(f"{path}: cannot be read as a SQLite database ({_first_line(error)})") from None
    missing = sorted({"sweeps", "runs", "points"} - names)
    if missing:
        raise InputError(
            f"{path}: not a scaling-callback store (no {', '.join(missing)} table{'s' if len(missing) > 1 else ''})"
        )
