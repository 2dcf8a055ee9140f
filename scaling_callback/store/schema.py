"""The store's schema version: a version table, migrations from older stores, a refusal for newer ones.

Every change to the tables bumps :data:`SCHEMA_VERSION` and adds a migration (see ``MIGRATIONS``)
so that a store written by an older release keeps its rows: opening it applies the missing steps
in one transaction and records each in ``scaling_callback_schema``. A store written by a newer
release (a version this code does not know) is refused with one line naming both versions: an
old release writing to it could silently drop what the new columns hold.

Versions:
    1. sweeps, runs, schedules, points, evals, fits, decisions (first release, no version table).
    2. drop_members: what finished runs' LR decays bought, kept for later runs (no version table).
    3. scaling_callback_schema: this table (one row per version applied, with when and by which release).
    4. fits.forecast (the forecast each fit made), decisions.kind and decisions.fit_id (the fit whose
       forecast a decision used); drop_members is no longer written (its rows stay).
    5. lent: what each run that ended lends its sweep's forecaster, computed once and read by every later fit.

Stores of versions 1 and 2 carry no version table; their version is read from the tables present.
Several processes may open an old store at once (every run of a sweep opens it): SQLite serialises
their ``BEGIN IMMEDIATE`` transactions, PostgreSQL an advisory lock, and each re-reads the version
after taking the lock, so exactly one migrates.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from importlib import metadata as package_metadata

from sqlalchemy import JSON, Column, Connection, Float, Integer, MetaData, String, Table, insert, inspect, select, text

from scaling_callback.errors import InputError
from scaling_callback.store import tables as t

SCHEMA_VERSION = 5
VERSION_TABLE = "scaling_callback_schema"
# Any fixed 64-bit key serves; this one spells "scal" in ASCII so a DBA reading pg_locks can tell whose it is.
_PG_LOCK_KEY = 0x7363616C

_version_metadata = MetaData()
schema_versions = Table(
    VERSION_TABLE,
    _version_metadata,
    Column("version", Integer, primary_key=True),
    Column("applied_at", Float, nullable=False),
    Column("library_version", String(64)),
    Column("description", String(255)),
)

# Version 2's table, no longer written since version 4 (kept so that migrating a version-1 store stays the same steps).
_drop_members = Table(
    "drop_members",
    _version_metadata,
    Column("run_id", Integer, primary_key=True),
    Column("member", JSON),
    Column("created_at", Float, nullable=False),
)

# Tables (and the columns every one of them had) that make up version 1; later versions add to them.
_V1_TABLES = {
    "sweeps": {"id", "name", "config", "created_at"},
    "runs": {"id", "name", "sweep_id", "status", "config", "n_params", "max_steps", "stop_step", "stop_reason"},
    "schedules": {"run_id", "n_steps", "lrs"},
    "points": {"run_id", "step", "samples", "tokens", "flops", "lr", "lr_sum", "loss"},
    "evals": {"run_id", "step", "name", "value"},
    "fits": {"id", "run_id", "step", "final", "law", "status", "params", "record"},
    "decisions": {"id", "run_id", "step", "policy", "stop", "probability", "reason"},
}


class SchemaError(InputError):
    """The store's schema is one this release cannot read or migrate (one line, both versions named)."""


def _library_version() -> str:
    try:
        return package_metadata.version("scaling-callback")
    except package_metadata.PackageNotFoundError:  # running from a source tree that is not installed
        return "unknown"


def _create(*tables: Table) -> Callable[[Connection], None]:
    def step(conn: Connection) -> None:
        for table in tables:
            table.create(conn, checkfirst=True)

    return step


# MIGRATIONS[v] turns a version-v store into a version-(v+1) one; each is additive (old rows stay).
def _add_forecast_references(conn: Connection) -> None:
    """Version 3 → 4: the forecast of each fit, and the kind and fit of each decision (new columns, NULL in old rows)."""
    dialect = conn.dialect
    for table, column, kind in (
        ("fits", "forecast", JSON()),
        ("decisions", "kind", String(32)),
        ("decisions", "fit_id", Integer()),
    ):
        present = {c["name"] for c in inspect(conn).get_columns(table)}
        if column not in present:
            conn.execute(text(f"ALTER TABLE {table} ADD COLUMN {column} {kind.compile(dialect=dialect)}"))


MIGRATIONS: dict[int, tuple[str, Callable[[Connection], None]]] = {
    1: ("add drop_members", _create(_drop_members)),
    2: ("add the schema version table", _create(schema_versions)),
    3: ("add fits.forecast, decisions.kind and decisions.fit_id", _add_forecast_references),
    4: ("add lent", _create(t.lent)),
}


def current_version(conn: Connection) -> int | None:
    """The store's schema version: from the version table, else from its tables; None for an empty database.

    Raises :class:`SchemaError` when the database holds tables named like the store's that are not its tables.
    """
    names = set(inspect(conn).get_table_names())
    if VERSION_TABLE in names:
        version = conn.execute(
            select(schema_versions.c.version).order_by(schema_versions.c.version.desc()).limit(1)
        ).scalar()
        if version is not None:
            return int(version)
    present = names & set(_V1_TABLES)
    if not present:
        return None
    url = conn.engine.url.render_as_string(hide_password=True)
    missing = sorted(set(_V1_TABLES) - present)
    if missing:
        raise SchemaError(
            f"store {url}: has tables {sorted(present)} but lacks {missing}; not a scaling-callback store"
        )
    for name, required in _V1_TABLES.items():
        columns = {c["name"] for c in inspect(conn).get_columns(name)}
        if not required <= columns:
            raise SchemaError(
                f"store {url}: table {name!r} lacks columns {sorted(required - columns)}; not a scaling-callback store"
            )
    return 2 if "drop_members" in names else 1


def _lock(conn: Connection) -> None:
    """Serialise schema changes between processes (SQLite's BEGIN IMMEDIATE already has)."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})


def _record(conn: Connection, version: int, description: str) -> None:
    conn.execute(
        insert(schema_versions).values(
            version=version, applied_at=time.time(), library_version=_library_version(), description=description
        )
    )


def _refuse_newer(conn: Connection, version: int) -> None:
    if version > SCHEMA_VERSION:
        url = conn.engine.url.render_as_string(hide_password=True)
        raise SchemaError(
            f"store {url} has schema version {version}, newer than the version {SCHEMA_VERSION} this "
            f"scaling-callback ({_library_version()}) writes; upgrade scaling-callback to use it"
        )


def check_schema(conn: Connection) -> bool:
    """True when the store is at this release's version (the one cheap read every opening does)."""
    version = current_version(conn)
    if version is not None:
        _refuse_newer(conn, version)
    return version == SCHEMA_VERSION


def migrate(conn: Connection) -> list[int]:
    """Create or migrate the store inside the caller's write transaction; returns the versions applied.

    An empty database gets every table at the current version; an older store the missing steps.
    """
    _lock(conn)
    version = current_version(conn)  # again, under the lock: another process may have migrated meanwhile
    if version is None:
        t.metadata.create_all(conn)
        _create(schema_versions)(conn)
        _record(conn, SCHEMA_VERSION, "created")
        return [SCHEMA_VERSION]
    _refuse_newer(conn, version)
    found, applied = version, []
    while version < SCHEMA_VERSION:
        description, step = MIGRATIONS[version]
        step(conn)
        version += 1
        applied.append((version, description))
    if applied and found < 3:  # versions before 3 had no table to say so
        _record(conn, found, "found without a version table")
    for number, description in applied:
        _record(conn, number, description)
    return [number for number, _ in applied]
