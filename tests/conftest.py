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


# ---------------------------------------------------------------- store backends
PG_URL_VARIABLE = "SCALING_CALLBACK_TEST_PG_URL"
PG_HOW_TO = (f"PostgreSQL store tests need a server: start one (e.g. `initdb -D /tmp/pg && pg_ctl -D /tmp/pg "
             f"-o '-c listen_addresses=127.0.0.1' start; createdb -h 127.0.0.1 sctest`) and set "
             f"{PG_URL_VARIABLE}=postgresql+psycopg://postgres@127.0.0.1:5432/sctest (docs/cluster.md)")


def postgres_url(request: pytest.FixtureRequest) -> str:
    """A URL on the test server whose tables live in a fresh schema (dropped afterwards); skip or fail without one.

    With ``CI=true`` a missing server fails the test: CI must run the PostgreSQL tests.
    """
    import uuid

    base = os.environ.get(PG_URL_VARIABLE, "").strip()
    in_ci = os.environ.get("CI", "").lower() == "true"
    if not base:
        (pytest.fail if in_ci else pytest.skip)(PG_HOW_TO)
    try:
        import psycopg  # noqa: F401
    except ImportError:
        (pytest.fail if in_ci else pytest.skip)("PostgreSQL store tests need psycopg: pip install -e '.[postgres]'")
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))

    def drop() -> None:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()

    request.addfinalizer(drop)
    url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
    return url.render_as_string(hide_password=False)


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A store URL on each backend: a SQLite file, and a PostgreSQL schema when a server is configured."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'sweep.sqlite'}"
    return postgres_url(request)
