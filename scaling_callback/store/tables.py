"""Tables of the sweep store: sweeps, runs, their planned schedules, points, evaluations, fits (with the
forecast each made), stopping decisions (with the fit whose forecast they used) and what each run that
ended lends its sweep's forecaster.

Times are UNIX seconds (floats) so every SQL backend stores them alike; the DataFrame readers turn
them into UTC timestamps. A run's name is unique across the store, so ``points(run_name)`` needs no
sweep. Points are keyed by ``(run_id, step)``: a resumed run that rewrites a step replaces it.
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

metadata = MetaData()

POINT_COLUMNS = ("step", "samples", "tokens", "flops", "lr", "lr_sum", "loss")  # per optimizer step, cumulative counts

sweeps = Table(
    "sweeps",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(255), nullable=False, unique=True),
    Column("config", JSON),
    Column("created_at", Float, nullable=False),
)

runs = Table(
    "runs",
    metadata,
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
    metadata,
    Column("run_id", Integer, ForeignKey("runs.id"), primary_key=True),
    Column("n_steps", BigInteger, nullable=False),
    Column("lrs", LargeBinary, nullable=False),  # float64 little-endian, lrs[i] = LR of step i+1
    Column("note", Text),
)

points = Table(
    "points",
    metadata,
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
    metadata,
    Column("run_id", Integer, ForeignKey("runs.id"), primary_key=True),
    Column("step", BigInteger, primary_key=True),
    Column("name", String(255), primary_key=True),
    Column("value", Float),
)

fits = Table(
    "fits",
    metadata,
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
    Column("forecast", JSON),  # the Forecast (fitting.run_forecast) this fit made, as Forecast.to_dict()
    Column("created_at", Float, nullable=False),
)

decisions = Table(
    "decisions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("run_id", Integer, ForeignKey("runs.id"), nullable=False, index=True),
    Column("step", BigInteger, nullable=False),
    Column("policy", String(255)),
    Column("stop", Boolean, nullable=False),
    Column("probability", Float),
    Column("reason", Text),
    Column("kind", String(32)),
    Column("fit_id", Integer, ForeignKey("fits.id")),  # the stored fit whose forecast the decision used
    Column("created_at", Float, nullable=False),
)

lent = Table(
    "lent",  # what a run that ended lends its sweep's forecaster (fitting.sweep_prior.Lent), computed once
    metadata,
    Column("run_id", Integer, ForeignKey("runs.id"), primary_key=True),
    Column("status", String(32), nullable=False),  # the run's status when it was computed
    Column("last_step", BigInteger, nullable=False),  # last step of the binned curve it was made from: else stale
    Column("settings", String(255), nullable=False),  # the forecaster's settings it was made under
    Column("record", JSON, nullable=False),  # Lent.to_dict()
    Column("created_at", Float, nullable=False),
)
