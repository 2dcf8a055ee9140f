"""The store's tables as releases before the schema version wrote them (frozen copies: never edit).

Version 2 is ``scaling_callback/store/tables.py`` at commit fb0b6da; version 1 is the same without
``drop_members`` (commit 9815080). Tests create these and open them with the current store.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)

metadata_v2 = MetaData()

sweeps = Table(
    "sweeps",
    metadata_v2,
    Column("id", Integer, primary_key=True),
    Column("name", String(255), nullable=False, unique=True),
    Column("config", JSON),
    Column("created_at", Float, nullable=False),
)

runs = Table(
    "runs",
    metadata_v2,
    Column("id", Integer, primary_key=True),
    Column("name", String(255), nullable=False, unique=True),
    Column("sweep_id", Integer, ForeignKey("sweeps.id"), index=True),
    Column("status", String(32), nullable=False),
    Column("config", JSON),
    Column("n_params", BigInteger),
    Column("n_params_nonembedding", BigInteger),
    Column("max_steps", BigInteger),
    Column("flops_source", String(64)),
    Column("world_size", Integer),
    Column("stop_step", BigInteger),
    Column("stop_reason", Text),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)

schedules = Table(
    "schedules",
    metadata_v2,
    Column("run_id", Integer, ForeignKey("runs.id"), primary_key=True),
    Column("n_steps", BigInteger, nullable=False),
    Column("lrs", LargeBinary, nullable=False),  # float64 little-endian, lrs[i] = LR of step i+1
    Column("note", Text),
)

points = Table(
    "points",
    metadata_v2,
    Column("run_id", Integer, ForeignKey("runs.id"), primary_key=True),
    Column("step", BigInteger, primary_key=True),
    Column("samples", BigInteger),
    Column("tokens", BigInteger),
    Column("flops", Float),
    Column("lr", Float),
    Column("lr_sum", Float),
    Column("loss", Float),
)

evals = Table(
    "evals",
    metadata_v2,
    Column("run_id", Integer, ForeignKey("runs.id"), primary_key=True),
    Column("step", BigInteger, primary_key=True),
    Column("name", String(255), primary_key=True),
    Column("value", Float),
)

fits = Table(
    "fits",
    metadata_v2,
    Column("id", Integer, primary_key=True),
    Column("run_id", Integer, ForeignKey("runs.id"), nullable=False, index=True),
    Column("step", BigInteger, nullable=False),
    Column("final", Boolean, nullable=False, default=False),
    Column("law", String(32)),
    Column("status", Text, nullable=False),
    Column("drop_term", String(32)),
    Column("pred_final_loss", Float),
    Column("pred_final_low", Float),
    Column("pred_final_high", Float),
    Column("n_points", Integer),
    Column("cpu_seconds", Float),
    Column("params", JSON),
    Column("drop_params", JSON),
    Column("record", JSON),
    Column("created_at", Float, nullable=False),
)

decisions = Table(
    "decisions",
    metadata_v2,
    Column("id", Integer, primary_key=True),
    Column("run_id", Integer, ForeignKey("runs.id"), nullable=False, index=True),
    Column("step", BigInteger, nullable=False),
    Column("policy", String(255)),
    Column("stop", Boolean, nullable=False),
    Column("probability", Float),
    Column("reason", Text),
    Column("created_at", Float, nullable=False),
)

drop_members = Table(
    "drop_members",
    metadata_v2,
    Column("run_id", Integer, ForeignKey("runs.id"), primary_key=True),
    Column("member", JSON),  # null: the run has no usable decay (none, or its fit failed)
    Column("created_at", Float, nullable=False),
)


def create_old_store(url: str, version: int) -> None:
    """An empty store of schema ``version`` (1 or 2) at ``url``, as that release created it."""
    from sqlalchemy import create_engine

    engine = create_engine(url)
    tables = [table for table in metadata_v2.sorted_tables if version >= 2 or table.name != "drop_members"]
    metadata_v2.create_all(engine, tables=tables)
    engine.dispose()
