"""Faults during training: the fit worker killed mid-fit, the store failing to write.

Training always finishes; a killed worker is restarted by the next fit and the stored fits say what
happened; points the store could not take are retried at the end and any still lost are reported.
"""

from __future__ import annotations

import logging
import os
import signal

import lightning.pytorch as pl
import pytest
from sqlalchemy.exc import OperationalError

from scaling_callback import ScalingLawCallback, SweepStore
from scaling_callback.callback.fit_worker import FitBudget, make_worker
from scaling_callback.callback.online_fits import OnlineFits
from scaling_callback.store.writer import BatchedWriter
from tests.test_fit_worker import _request
from tests.test_scaling_law_callback import MPLShaped, loader, trainer


def test_a_killed_worker_fails_the_fits_it_held_and_the_next_fit_restarts_it(tmp_path):
    store = tmp_path / "s.sqlite"
    SweepStore(store).register_run("r")
    fits = OnlineFits(
        every=10, budget=FitBudget(None), make_worker=lambda: make_worker("process", url=f"sqlite:///{store}")
    )
    fits.submit(_request("r"))
    os.kill(fits.worker._process.pid, signal.SIGKILL)
    (dead,) = fits.wait(timeout=60)
    assert dead["run"] == "r" and dead["step"] == 100 and dead["worker_died"]
    assert "killed by SIGKILL" in dead["status"] and fits.latest is None
    fits.submit(_request("r"))  # a fresh worker
    (ok,) = fits.wait(timeout=120)
    assert fits.restarts == 1 and not ok.get("worker_died") and ok["status"] == "ok"
    fits.close()


class KillWorkerAt(pl.Callback):
    """Kill the scaling callback's fit process with SIGKILL the first time it holds a fit at or after ``step``."""

    def __init__(self, scaling: ScalingLawCallback, step: int) -> None:
        self.scaling, self.step, self.killed = scaling, step, None

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        fits = self.scaling._fits
        if self.killed is None and trainer.global_step >= self.step and fits is not None and fits.busy:
            self.killed = fits.worker._process.pid
            os.kill(self.killed, signal.SIGKILL)


def test_killing_the_fit_worker_mid_run_loses_no_point_and_the_store_says_so(tmp_path):
    store = tmp_path / "sweep.sqlite"
    callback = ScalingLawCallback(
        store=store,
        run_name="victim",
        fit_every_n_steps=40,
        max_fit_fraction=None,
        fit_worker="process",
        wait_for_final_fit=True,
    )
    killer = KillWorkerAt(callback, 80)
    trainer(tmp_path, callback, max_steps=240, extra_callbacks=[killer]).fit(
        MPLShaped(240, decay_from=180), loader(n=8 * 240)
    )
    assert killer.killed is not None
    opened = SweepStore(store)
    points = opened.points("victim")
    assert points["step"].tolist() == list(range(1, 241))  # the curve is complete
    assert opened.get_run("victim")["status"] == "finished"
    fits = opened.fits("victim")
    killed = fits[fits.status.str.contains("killed by SIGKILL")]
    assert len(killed) == 1 and str(killer.killed) in killed.status.iloc[0]
    later = fits[fits.step > killed.step.iloc[0]]
    assert (later.status == "ok").any() and later.final.any()  # the next fit restarted the worker
    assert callback._fits.restarts >= 1


class Disk:
    """Point writes fail (as on a full disk) while ``full`` is set."""

    full = False


@pytest.fixture
def flaky(tmp_path, monkeypatch):
    original = SweepStore.add_points

    def add_points(self, run, rows):
        if Disk.full:
            raise OperationalError("INSERT INTO points", {}, Exception("database or disk is full"))
        return original(self, run, rows)

    Disk.full = False
    monkeypatch.setattr(SweepStore, "add_points", add_points)
    store = SweepStore(tmp_path / "s.sqlite")
    store.register_run("r")
    yield store
    Disk.full = False


def _rows(first: int, n: int) -> list[dict]:
    return [
        {"step": s, "samples": 8 * s, "flops": 1e6 * s, "lr": 0.1, "lr_sum": 0.1 * s, "loss": 3.0 / s}
        for s in range(first, first + n)
    ]


def test_points_refused_by_a_full_disk_are_retried_and_stored_once_it_frees(flaky):
    writer = BatchedWriter(flaky, retry_delay_s=0.001)
    writer.add_points("r", _rows(1, 10))
    writer.flush()
    Disk.full = True
    writer.add_points("r", _rows(11, 10))
    writer.flush()
    assert writer.unwritten_points == 10 and len(writer.errors) == 1
    Disk.full = False  # space freed before the end of training
    writer.add_points("r", _rows(21, 10))
    assert writer.close()
    assert writer.unwritten_points == 0
    assert flaky.points("r")["step"].tolist() == list(range(1, 31))


def test_points_still_refused_at_the_end_are_counted_and_reported(flaky, caplog):
    writer = BatchedWriter(flaky, retry_delay_s=0.001)
    Disk.full = True
    writer.add_points("r", _rows(1, 25))
    with caplog.at_level(logging.WARNING, logger="scaling_callback"):
        writer.close()
    assert writer.unwritten_points == 25
    assert any("25 points" in record.getMessage() for record in caplog.records)


def test_training_continues_while_the_store_fails_and_the_loss_is_reported_at_the_end(tmp_path, monkeypatch):
    store = tmp_path / "sweep.sqlite"
    calls = {"n": 0}
    original = SweepStore.add_points

    def failing_add_points(self, run, rows):
        calls["n"] += 1
        if calls["n"] >= 2:
            raise OperationalError("INSERT INTO points", {}, Exception("database or disk is full"))
        return original(self, run, rows)

    monkeypatch.setattr(SweepStore, "add_points", failing_add_points)
    callback = ScalingLawCallback(
        store=store, run_name="full", fit_every_n_steps=1000, fit_worker="thread", flush_every_n_steps=10
    )
    with pytest.warns(UserWarning, match=r"points? (were )?not stored"):
        trainer(tmp_path, callback, max_steps=60).fit(MPLShaped(60, decay_from=40), loader(n=8 * 60))
    monkeypatch.setattr(SweepStore, "add_points", original)
    stored = SweepStore(store).points("full")["step"].tolist()
    assert callback._recorder.step == 60 and len(stored) < 60  # training finished; the shortfall was reported
