"""Database engines for the sweep store: a SQLite file by default (WAL, safe for several processes
on one machine), any SQLAlchemy URL otherwise (PostgreSQL for many machines).

SQLite details that make concurrent writers lose nothing: WAL journal (readers never block the
writer), a 60 s busy timeout, and write transactions opened with ``BEGIN IMMEDIATE`` so two
processes never both hold a read lock and then deadlock upgrading it (SQLite's documented
``SQLITE_BUSY`` trap for deferred transactions). Read-only connections use a plain ``BEGIN``.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.pool import StaticPool

from scaling_callback.errors import InputError

BUSY_TIMEOUT_MS = 60_000
READONLY = "scaling_callback_readonly"  # execution option marking read-only connections


def normalise_url(url_or_path: str | Path) -> str:
    """An SQLAlchemy URL from a URL or a file path (a path means a SQLite file; ``:memory:`` is in-memory)."""
    text = str(url_or_path).strip()
    if not text:
        raise InputError("store location is empty; give a SQLite file path or an SQLAlchemy URL")
    if text == ":memory:":
        return "sqlite://"
    if "://" in text:
        try:
            make_url(text)
        except Exception as error:  # sqlalchemy raises ArgumentError with a long message
            raise InputError(f"store URL {text!r} is not a valid SQLAlchemy URL: {error}") from None
        return text
    path = Path(text).expanduser().resolve()
    if path.is_dir():
        raise InputError(f"store path {str(path)!r} is a directory; give a file such as sweep.sqlite")
    return f"sqlite:///{path}"


def is_memory(url: str) -> bool:
    """True for an in-memory SQLite URL, which only this process can see."""
    parsed = make_url(url)
    return parsed.get_backend_name() == "sqlite" and parsed.database in (None, "", ":memory:")


def make_engine(url: str) -> Engine:
    """Engine for ``url``, with the SQLite settings above when it is SQLite."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    if is_memory(url):
        engine = create_engine(url, poolclass=StaticPool, connect_args={"check_same_thread": False})
    else:
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_MS / 1000, "check_same_thread": False})
    event.listen(engine, "connect", _sqlite_connect)
    event.listen(engine, "begin", _sqlite_begin)
    return engine


def _sqlite_connect(dbapi_connection, _record) -> None:
    dbapi_connection.isolation_level = None  # transactions are begun by _sqlite_begin
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")  # in WAL mode: durable across process crashes
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _sqlite_begin(connection) -> None:
    readonly = connection.get_execution_options().get(READONLY, False)
    connection.exec_driver_sql("BEGIN" if readonly else "BEGIN IMMEDIATE")
