"""Background fit workers (process and thread) and the budget that spaces fits."""

from __future__ import annotations

import numpy as np
import pytest

from scaling_callback.callback.fit_job import FitRequest
from scaling_callback.callback.fit_worker import FitBudget, ProcessFitWorker, ThreadFitWorker, make_worker
from scaling_callback.store import SweepStore


def _request(run: str) -> FitRequest:
    lrs = np.full(200, 0.01) * np.minimum(np.arange(1, 201) / 10, 1.0)
    steps = np.arange(1, 101)
    return FitRequest(run, 100, steps, 2.0 + np.cumsum(lrs)[:100] ** -0.5, lrs)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_budget_admits_fits_while_spent_cpu_is_within_the_fraction():
    clock = Clock()
    budget = FitBudget(0.02, clock=clock)
    assert budget.allows()  # nothing spent: the first fit may run
    budget.charge(1.0)
    clock.now = 10.0
    assert not budget.allows()  # 1 s of 10 s is 10 %
    clock.now = 50.0
    assert budget.allows() and not budget.allows(expected=0.5)
    assert budget.fraction == pytest.approx(0.02)
    assert FitBudget(None, clock=clock).allows(expected=1e9)


@pytest.mark.parametrize("kind", ["process", "thread"])
def test_worker_fits_stores_and_reports(tmp_path, kind):
    store = SweepStore(tmp_path / "s.sqlite")
    store.register_run("r")
    worker = make_worker(kind, url=store.url, store=store)
    assert isinstance(worker, ProcessFitWorker if kind == "process" else ThreadFitWorker)
    worker.submit(_request("r"))
    assert worker.busy
    (result,) = worker.wait(timeout=120)
    assert not worker.busy and result["run"] == "r" and result["status"] == "ok" and result["cpu_seconds"] > 0
    assert store.latest_fit("r")["step"] == 100
    if kind == "process":
        assert worker.take_startup_cpu() > 0 and worker.take_startup_cpu() == 0
    worker.close()
    worker.join(60)
    assert not worker.alive()


def store_fit_count(url: str) -> int:
    return len(SweepStore(url).fits("r"))


def test_an_idle_process_worker_is_lent_to_the_next_run_of_the_process(tmp_path):
    url = f"sqlite:///{tmp_path / 's.sqlite'}"
    SweepStore(url).register_run("r")
    first = make_worker("process", url=url)
    first.submit(_request("r"))
    first.wait(timeout=120)
    assert first.take_startup_cpu() > 0
    first.release()  # its run ended with nothing in flight: kept for the next run
    again = make_worker("process", url=url)
    assert again is first and again.alive() and again.take_startup_cpu() == 0  # no second start-up to pay
    again.submit(_request("r"))
    (result,) = again.wait(timeout=120)
    assert result["status"] == "ok"
    other = make_worker("process", url=url)
    assert other is not again  # lent to one run at a time
    other.close()
    again.submit(_request("r"))
    again.release()  # still fitting when its run ended: closed, its fit completes and is stored
    again.join(120)
    assert not again.alive() and store_fit_count(url) == 3
    fresh = make_worker("process", url=url)
    assert fresh is not again
    fresh.close()


def test_thread_worker_shares_an_in_memory_store():
    store = SweepStore(":memory:")  # one connection for all threads: the store takes turns on it
    store.register_run("r")
    worker = make_worker("thread", store=store)
    worker.submit(_request("r"))
    for _ in range(20):
        store.runs()  # reads on this thread while the worker writes on its own
    worker.wait(timeout=120)
    assert store.latest_fit("r") is not None
    worker.close()


def test_a_worker_that_dies_answers_with_a_failed_status(tmp_path):
    worker = make_worker("process")
    worker.submit(_request("r"))
    worker._process.kill()
    (result,) = worker.wait(timeout=60)
    assert result["status"].startswith("failed: fit worker") and not worker.busy


def test_an_abandoned_process_worker_ends_at_once(tmp_path):
    worker = make_worker("process", url=f"sqlite:///{tmp_path / 's.sqlite'}")
    worker.submit(_request("r"))
    worker.abandon()  # Ctrl-C: its start-up (~2.3 CPU-s of imports) and the fit are not waited for
    worker.join(2.0)
    assert not worker.alive()
