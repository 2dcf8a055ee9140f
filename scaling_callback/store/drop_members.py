"""What finished runs lend to later runs of their sweep: their fitted drop-term parameters (priors of the
callback's online fits) and what their LR decay bought (a law policy's drop member, kept once computed).

A law policy needs, for every finished run of the sweep, the size of the drop its decay gave (two
curve fits per run). Each training run judges in its own fit worker, so without the store every
run would refit every finished run; stored, each finished run is fitted once per sweep.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Mapping

from sqlalchemy import select

from scaling_callback.store import tables as t
from scaling_callback.store.sql_values import jsonable, upsert

if TYPE_CHECKING:
    from scaling_callback.store.sweep_store import SweepStore


def save_drop_member(store: "SweepStore", run: str, member: Mapping[str, Any] | None) -> None:
    """Keep ``member`` (plain JSON values; None: the run has no usable decay) for the finished ``run``."""
    row = {"run_id": store._run_id(run), "member": jsonable(dict(member)) if member is not None else None,
           "created_at": time.time()}
    with store._write() as conn:
        upsert(conn, t.drop_members, [row], ("run_id",))


def load_drop_members(store: "SweepStore", sweep: str) -> dict[str, dict[str, Any] | None]:
    """Stored drop members of the sweep's runs, by run name (a None value: known to have none)."""
    query = (
        select(t.runs.c.name, t.drop_members.c.member)
        .select_from(t.drop_members.join(t.runs, t.runs.c.id == t.drop_members.c.run_id)
                     .join(t.sweeps, t.sweeps.c.id == t.runs.c.sweep_id))
        .where(t.sweeps.c.name == sweep)
    )
    with store._read() as conn:
        return {row["name"]: (dict(row["member"]) if row["member"] is not None else None)
                for row in conn.execute(query).mappings()}


def load_drop_priors(store: "SweepStore", sweep: str, law: str = "mpl", exclude_run: str | None = None) -> list[dict[str, Any]]:
    """Fitted drop-term parameters of the sweep's finished runs (latest fitted one per run).

    Each item: ``{"run", "step", "drop_params"}``, in the order the runs finished. These are the
    priors that let a new run's fit predict an LR decay it has not reached yet.
    """
    query = (
        select(t.runs.c.name, t.runs.c.updated_at, t.fits.c.step, t.fits.c.drop_params)
        .select_from(t.fits.join(t.runs, t.runs.c.id == t.fits.c.run_id).join(t.sweeps, t.sweeps.c.id == t.runs.c.sweep_id))
        .where(t.sweeps.c.name == sweep, t.runs.c.status == "finished", t.fits.c.drop_term == "fitted",
               t.fits.c.law == law, t.fits.c.status == "ok")
        .order_by(t.fits.c.id)
    )
    with store._read() as conn:
        rows = conn.execute(query).mappings().all()
    latest: dict[str, dict[str, Any]] = {}
    for row in rows:
        if row["name"] != exclude_run and row["drop_params"]:
            latest[row["name"]] = {"run": row["name"], "step": int(row["step"]), "drop_params": dict(row["drop_params"]),
                                   "finished_at": row["updated_at"]}
    return sorted(latest.values(), key=lambda item: item.pop("finished_at"))
