"""Values and statements the sweep store needs on every backend: plain numbers and JSON, insert-or-replace,
and the SQLite fast path for the hottest write (a batch of per-step points).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Mapping

import numpy as np
from sqlalchemy import Connection, Engine, delete, insert
from sqlalchemy.dialects import postgresql, sqlite

from scaling_callback.store.tables import POINT_COLUMNS

if TYPE_CHECKING:
    import pandas as pd

POINT_KEYS = ("run_id",) + POINT_COLUMNS
_SQLITE_POINTS_UPSERT = (
    f"INSERT INTO points ({', '.join(POINT_KEYS)}) VALUES ({', '.join('?' * len(POINT_KEYS))}) "
    f"ON CONFLICT (run_id, step) DO UPDATE SET {', '.join(f'{c} = excluded.{c}' for c in POINT_COLUMNS[1:])}"
)
_POINT_TYPES = {"run_id": "bigint", "step": "bigint", "samples": "bigint", "tokens": "bigint"}  # the rest float8
_POSTGRES_POINTS_UPSERT = (
    f"INSERT INTO points ({', '.join(POINT_KEYS)}) "
    f"SELECT * FROM unnest({', '.join('%s::' + _POINT_TYPES.get(c, 'float8') + '[]' for c in POINT_KEYS)}) "
    f"ON CONFLICT (run_id, step) DO UPDATE SET {', '.join(f'{c} = excluded.{c}' for c in POINT_COLUMNS[1:])}"
)


def upsert(conn: Connection, table, rows: list[dict[str, Any]], keys: tuple[str, ...]) -> None:
    """Insert ``rows``, replacing rows with the same ``keys`` (ON CONFLICT on SQLite/PostgreSQL, delete+insert elsewhere)."""
    dialect = {"sqlite": sqlite, "postgresql": postgresql}.get(conn.dialect.name)
    if dialect is None:
        for row in rows:
            conn.execute(delete(table).where(*(table.c[k] == row[k] for k in keys)))
        conn.execute(insert(table), rows)
        return
    statement = dialect.insert(table)
    others = {c.name: statement.excluded[c.name] for c in table.columns if c.name not in keys}
    conn.execute(statement.on_conflict_do_update(index_elements=list(keys), set_=others), rows)


def sqlite_insert_points(engine: Engine, records: list[tuple]) -> None:
    """Upsert point tuples (``POINT_KEYS`` order) straight on the driver, in one ``BEGIN IMMEDIATE`` transaction.

    A quarter of the CPU of SQLAlchemy's transaction machinery, on the write a training run makes
    every flush. SQLite stores NaN as NULL, so the callback's plain floats go in unconverted.
    """
    connection = engine.raw_connection()
    try:
        cursor = connection.cursor()
        cursor.execute("BEGIN IMMEDIATE")
        try:
            cursor.executemany(_SQLITE_POINTS_UPSERT, records)
            cursor.execute("COMMIT")
        except BaseException:
            cursor.execute("ROLLBACK")
            raise
    finally:
        connection.close()  # back to the pool


def postgres_insert_points(engine: Engine, records: list[tuple]) -> None:
    """Upsert point tuples (``POINT_KEYS`` order) on the psycopg driver: one statement, one array per column.

    One round trip per batch instead of one per row; the 8-writer benchmark measures it against SQLite.
    NaN and inf become NULL, as on SQLite (PostgreSQL would keep NaN itself).
    """
    columns = [list(map(plain_number, column)) for column in zip(*records)]
    connection = engine.raw_connection()
    try:
        cursor = connection.cursor()
        try:
            cursor.execute(_POSTGRES_POINTS_UPSERT, columns)
            connection.commit()
        except BaseException:
            connection.rollback()
            raise
    finally:
        connection.close()  # back to the pool


def plain_number(value: Any) -> Any:
    """A plain Python number (NaN and inf become NULL), or None."""
    if value is None:
        return None
    if isinstance(value, (bool, np.bool_)):
        return int(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    value = float(value)
    return value if math.isfinite(value) else None


def jsonable(value: Any) -> Any:
    """``value`` with NumPy scalars/arrays made plain and non-finite floats made None (valid JSON everywhere)."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [jsonable(v) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if value is None or isinstance(value, str):
        return value
    return str(value)


def with_times(frame: "pd.DataFrame") -> "pd.DataFrame":
    """``created_at``/``updated_at`` columns (UNIX seconds) as UTC timestamps."""
    import pandas as pd

    for column in ("created_at", "updated_at"):
        if column in frame:
            frame[column] = pd.to_datetime(frame[column], unit="s", utc=True)
    return frame
