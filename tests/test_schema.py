"""Store schema versions: old stores migrate with every row kept, newer or foreign ones are refused in one line."""

from __future__ import annotations

import multiprocessing

import pytest
from old_store_schemas import create_old_store, metadata_v2
from sqlalchemy import create_engine, insert, select, text

from scaling_callback.errors import InputError
from scaling_callback.store import SweepStore
from scaling_callback.store.schema import SCHEMA_VERSION, VERSION_TABLE, SchemaError


def _fill_old_store(url: str) -> None:
    """A sweep with one finished run, its points, a fit and a decision, written as the old release wrote them."""
    tables = metadata_v2.tables
    engine = create_engine(url)
    with engine.begin() as conn:  # ids from the database's own sequences, as the old release left them
        sweep_id = conn.execute(insert(tables["sweeps"]).values(name="old", config={"k": 1}, created_at=1.0)).inserted_primary_key[0]
        run_id = conn.execute(insert(tables["runs"]).values(name="r0", sweep_id=sweep_id, status="finished", n_params=100,
                                                            max_steps=5, created_at=1.0, updated_at=2.0)).inserted_primary_key[0]
        conn.execute(insert(tables["points"]), [{"run_id": run_id, "step": s, "flops": 1e9 * s, "loss": 3.0 - 0.1 * s}
                                                for s in range(1, 6)])
        conn.execute(insert(tables["fits"]).values(run_id=run_id, step=5, final=True, law="mpl", status="ok",
                                                   pred_final_loss=2.5, created_at=2.0))
        conn.execute(insert(tables["decisions"]).values(run_id=run_id, step=3, policy="law", stop=False, reason="keep",
                                                        created_at=1.5))
    engine.dispose()


def _versions(url: str) -> list[tuple[int, str]]:
    engine = create_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(text(f"SELECT version, description FROM {VERSION_TABLE} ORDER BY version")).all()
    engine.dispose()
    return [tuple(row) for row in rows]


@pytest.mark.parametrize("old_version", [1, 2])
def test_an_older_store_is_migrated_and_keeps_every_row(store_url, old_version):
    create_old_store(store_url, old_version)
    _fill_old_store(store_url)
    store = SweepStore(store_url)
    assert [v for v, _ in _versions(store_url)] == list(range(old_version, SCHEMA_VERSION + 1))
    assert store.get_sweep("old")["config"] == {"k": 1}
    assert store.points("r0").step.tolist() == [1, 2, 3, 4, 5]
    assert store.latest_fit("r0")["pred_final_loss"] == 2.5
    assert store.decisions("r0").reason.tolist() == ["keep"]
    assert store.runs("old").status.tolist() == ["finished"]
    store.register_run("r1", sweep="old")  # the migrated store takes new writes, forecasts and their decisions included
    fit_id = store.add_fit("r1", {"step": 4, "status": "ok", "forecast": {"loss": 2.4}})
    store.add_decision("r1", 4, False, kind="continue", fit_id=fit_id)
    assert store.latest_fit("r1")["forecast"] == {"loss": 2.4} and store.decisions("r1").fit_id.tolist() == [fit_id]
    assert store.latest_fit("r0")["forecast"] is None  # old rows have none
    store.close()
    SweepStore(store_url).close()  # opening again applies nothing more
    assert [v for v, _ in _versions(store_url)] == list(range(old_version, SCHEMA_VERSION + 1))


def test_a_new_store_records_its_version(store_url):
    SweepStore(store_url).close()
    assert _versions(store_url) == [(SCHEMA_VERSION, "created")]


def test_a_newer_store_is_refused_in_one_line_naming_both_versions(store_url):
    SweepStore(store_url).register_run("keep-me")
    engine = create_engine(store_url)
    with engine.begin() as conn:
        conn.execute(text(f"INSERT INTO {VERSION_TABLE} (version, applied_at, description) VALUES (99, 0, 'future')"))
    engine.dispose()
    with pytest.raises(SchemaError) as caught:
        SweepStore(store_url)
    message = str(caught.value)
    assert "\n" not in message and "99" in message and str(SCHEMA_VERSION) in message
    assert isinstance(caught.value, InputError)  # the CLI turns it into exit code 2
    engine = create_engine(store_url)
    with engine.connect() as conn:  # nothing was changed or dropped
        assert conn.execute(text("SELECT name FROM runs")).scalars().all() == ["keep-me"]
        assert max(conn.execute(text(f"SELECT version FROM {VERSION_TABLE}")).scalars()) == 99
    engine.dispose()


def test_a_database_with_foreign_tables_of_our_names_is_refused(store_url):
    engine = create_engine(store_url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE runs (id INTEGER PRIMARY KEY, label TEXT)"))
    engine.dispose()
    with pytest.raises(SchemaError, match="not a scaling-callback store"):
        SweepStore(store_url)


def test_an_unrelated_database_gets_the_store_beside_its_tables(store_url):
    """An Optuna storage (or any database without our table names) can hold the store too."""
    engine = create_engine(store_url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE trials (trial_id INTEGER PRIMARY KEY)"))
    engine.dispose()
    store = SweepStore(store_url)
    store.register_run("r")
    assert store.get_run("r")["status"] == "running"


def _open_and_write(url: str, run: str) -> None:
    store = SweepStore(url)
    store.register_run(run, sweep="old")
    store.add_points(run, [{"step": 1, "loss": 1.0}])
    store.close()


def test_processes_opening_an_old_store_at_once_migrate_it_once(store_url):
    create_old_store(store_url, 1)
    _fill_old_store(store_url)
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    workers = [context.Process(target=_open_and_write, args=(store_url, f"w{i}")) for i in range(6)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
    assert [w.exitcode for w in workers] == [0] * 6
    assert [v for v, _ in _versions(store_url)] == list(range(1, SCHEMA_VERSION + 1))
    store = SweepStore(store_url)
    assert sorted(store.runs("old").name) == ["r0"] + [f"w{i}" for i in range(6)]
    engine = create_engine(store_url)
    with engine.connect() as conn:
        assert conn.execute(select(metadata_v2.tables["points"].c.step)).scalars().all().count(1) == 7
    engine.dispose()
