"""The store's record of judgement: every fit (with the forecast it made), every stopping decision, and
what each run that ended lends its sweep's forecaster.

A mixin of :class:`~scaling_callback.store.sweep_store.SweepStore`, kept apart because fits and
decisions are one idea — what was forecast about a run and what was decided on it — while the rest
of the store records what the run did. It uses the store's ``_run_id``, ``_read``, ``_write`` and
``_frame``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from sqlalchemy import insert, select

from scaling_callback.errors import InputError
from scaling_callback.store import tables as t
from scaling_callback.store.sql_values import jsonable, plain_number, upsert, with_times

if TYPE_CHECKING:
    import pandas as pd

_FIT_COLUMNS = (
    "step",
    "final",
    "law",
    "status",
    "drop_term",
    "pred_final_loss",
    "pred_final_low",
    "pred_final_high",
    "n_points",
    "cpu_seconds",
    "params",
    "drop_params",
    "record",
    "forecast",
)


class FitRecords:
    """Fits and decisions of the store's runs (see the module docstring)."""

    # -------------------------------------------------------------------- fits
    def add_fit(self, run: str, fit: Mapping[str, Any]) -> int:
        """Store one fit of the run and return its id: ``step`` and ``status`` are required; see ``fits()``."""
        if "step" not in fit or "status" not in fit:
            raise InputError(f"a fit of run {run!r} needs 'step' and 'status', got keys {sorted(fit)}")
        values = {c: jsonable(fit.get(c)) for c in _FIT_COLUMNS}
        values["final"] = bool(values["final"])
        run_id = self._run_id(run)
        with self._write() as conn:
            inserted = conn.execute(insert(t.fits).values(run_id=run_id, created_at=time.time(), **values))
        return int(inserted.inserted_primary_key[0])

    def fits(self, run: str) -> pd.DataFrame:
        """The run's fits in the order they were stored."""
        columns = [t.fits.c.id] + [t.fits.c[c] for c in _FIT_COLUMNS] + [t.fits.c.created_at]
        query = select(*columns).where(t.fits.c.run_id == self._run_id(run)).order_by(t.fits.c.id)
        return with_times(self._frame(query))

    def fit(self, fit_id: int) -> dict[str, Any] | None:
        """The stored fit with this id (as ``latest_fit`` returns it), or None."""
        with self._read() as conn:
            row = conn.execute(select(t.fits).where(t.fits.c.id == int(fit_id))).mappings().first()
        return dict(row) if row else None

    def latest_fit(self, run: str, *, ok_only: bool = False) -> dict[str, Any] | None:
        """The run's most recently stored fit (the latest successful one with ``ok_only``), or None."""
        run_id = self._run_id(run)
        query = select(t.fits).where(t.fits.c.run_id == run_id).order_by(t.fits.c.id.desc()).limit(1)
        if ok_only:
            query = query.where(t.fits.c.status == "ok")
        with self._read() as conn:
            row = conn.execute(query).mappings().first()
        return dict(row) if row else None

    # --------------------------------------------------------------- decisions
    def add_decision(
        self,
        run: str,
        step: int,
        stop: bool,
        *,
        probability: float | None = None,
        reason: str = "",
        policy: str | None = None,
        kind: str | None = None,
        fit_id: int | None = None,
    ) -> None:
        """Record a stopping policy's decision about the run at ``step`` (``fit_id``: the fit whose forecast it used)."""
        run_id = self._run_id(run)
        with self._write() as conn:
            conn.execute(
                insert(t.decisions).values(
                    run_id=run_id,
                    step=int(step),
                    stop=bool(stop),
                    probability=plain_number(probability),
                    reason=reason,
                    policy=policy,
                    kind=kind,
                    fit_id=None if fit_id is None else int(fit_id),
                    created_at=time.time(),
                )
            )

    # -------------------------------------------------------------------- lent
    def set_lent(self, run: str, status: str, last_step: int, settings: str, record: Mapping[str, Any]) -> None:
        """Keep what the ended ``run`` lends its sweep's forecaster (``fitting.sweep_prior.Lent.to_dict()``),
        computed from its curve up to ``last_step`` while its status was ``status``, under ``settings``."""
        row = {
            "run_id": self._run_id(run),
            "status": str(status),
            "last_step": int(last_step),
            "settings": str(settings),
            "record": jsonable(dict(record)),
            "created_at": time.time(),
        }
        with self._write() as conn:
            upsert(conn, t.lent, [row], ("run_id",))

    def lent(self, sweep: str) -> dict[str, dict[str, Any]]:
        """What the sweep's ended runs lent, by run: ``status, last_step, settings, record`` (see :meth:`set_lent`)."""
        query = (
            select(t.runs.c.name, t.lent.c.status, t.lent.c.last_step, t.lent.c.settings, t.lent.c.record)
            .select_from(
                t.lent.join(t.runs, t.runs.c.id == t.lent.c.run_id).join(t.sweeps, t.sweeps.c.id == t.runs.c.sweep_id)
            )
            .where(t.sweeps.c.name == sweep)
        )
        with self._read() as conn:
            rows = conn.execute(query).mappings().all()
        return {str(row["name"]): {k: row[k] for k in ("status", "last_step", "settings", "record")} for row in rows}

    def decisions(self, run: str | None = None) -> pd.DataFrame:
        """Stopping decisions (of one run, or all): ``run, step, policy, stop, kind, probability, reason, fit_id, created_at``."""
        query = (
            select(
                t.runs.c.name.label("run"),
                t.decisions.c.step,
                t.decisions.c.policy,
                t.decisions.c.stop,
                t.decisions.c.kind,
                t.decisions.c.probability,
                t.decisions.c.reason,
                t.decisions.c.fit_id,
                t.decisions.c.created_at,
            )
            .select_from(t.decisions.join(t.runs, t.runs.c.id == t.decisions.c.run_id))
            .order_by(t.decisions.c.id)
        )
        if run is not None:
            query = query.where(t.decisions.c.run_id == self._run_id(run))
        return with_times(self._frame(query))
