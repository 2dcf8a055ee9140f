"""OnlineFits: cadence, warmup, one fit at a time, the budget from the first fit on."""

from __future__ import annotations

import numpy as np

from scaling_callback.callback.fit_job import FitRequest
from scaling_callback.callback.fit_worker import FitBudget, FitWorker
from scaling_callback.callback.online_fits import FIRST_FIT_GUESS_S, OnlineFits


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class FakeWorker(FitWorker):
    """Returns a result per request when told to."""

    def __init__(self, cpu: float = 0.5) -> None:
        super().__init__()
        self.cpu, self.sent = cpu, []
        self.startup_cpu = 1.0

    def _send(self, request: FitRequest) -> None:
        self.sent.append(request)

    def finish(self) -> None:
        for request in self.sent[len(self.sent) - self.in_flight :]:
            self._results.put({"step": request.step, "final": request.final, "cpu_seconds": self.cpu, "status": "ok"})


def _request(step: int, final: bool = False) -> FitRequest:
    return FitRequest("r", step, np.arange(1, step + 1), np.ones(step), np.ones(step), final=final)


def test_cadence_warmup_and_one_fit_at_a_time_without_budget():
    worker = FakeWorker()
    fits = OnlineFits(100, FitBudget(None), lambda: worker, first_step=150)
    assert not fits.due(100, 0.0)  # still warming up
    assert fits.due(150, 0.0)
    fits.submit(_request(150))
    assert fits.next_step == 200 and fits.busy and not fits.due(200, 0.0)
    worker.finish()
    assert [r["step"] for r in fits.results()] == [150] and fits.latest["step"] == 150
    assert fits.due(200, 0.0) and not fits.due(199, 0.0)


def test_first_fit_waits_until_the_budget_can_absorb_its_expected_cost():
    clock = Clock()
    worker = FakeWorker(cpu=0.5)
    fits = OnlineFits(10, FitBudget(0.02, clock=clock), lambda: worker)
    clock.now = 100.0  # 2 % of 100 s is 2 s < the first-fit guess
    assert not fits.due(10, clock.now) and fits.not_before == FIRST_FIT_GUESS_S / 0.02
    assert not fits.due(11, FIRST_FIT_GUESS_S / 0.02 - 1)  # cheap refusal until then
    clock.now = FIRST_FIT_GUESS_S / 0.02
    assert fits.due(20, clock.now)
    fits.submit(_request(20))
    worker.finish()
    fits.results()
    assert fits.budget.spent == 1.5 and fits.expected_cpu() == 0.5  # start-up (1.0) + fit (0.5) charged
    assert fits.final_may_wait()  # 2 % of 150 s covers 1.5 s spent plus a 0.5 s final fit
    clock.now = 90.0
    assert not fits.final_may_wait()


def test_final_request_does_not_move_the_cadence():
    worker = FakeWorker()
    fits = OnlineFits(100, FitBudget(None), lambda: worker)
    fits.submit(_request(250, final=True))
    assert fits.next_step == 100
    worker.finish()
    assert fits.wait(1.0)[0]["final"] and not fits.busy


def test_first_fit_step_comes_before_the_budget_allows_and_is_charged():
    clock = Clock()
    worker = FakeWorker(cpu=0.5)
    fits = OnlineFits(100, FitBudget(0.02, clock=clock), lambda: worker, first_step=15, first_fit_step=30)
    clock.now = 2.0  # a 2 % budget admits nothing for 150 s
    assert not fits.due(15, clock.now)  # before the first-fit step
    assert fits.due(30, clock.now)
    fits.submit(_request(30))
    assert not fits.due(31, clock.now)  # one at a time
    worker.finish()
    fits.results()
    assert fits.budget.spent == 1.5  # start-up and fit charged: the next fits wait for the budget
    clock.now = 10.0
    assert not fits.due(100, clock.now)
    clock.now = (1.5 + 0.5) / 0.02
    assert fits.due(100, clock.now)


def test_first_fit_step_from_fraction():
    from scaling_callback.callback.online_fits import first_fit_step

    assert first_fit_step(0.05, 600) == 30
    assert first_fit_step(0.05, 10) == 1
    assert first_fit_step(None, 600) is None and first_fit_step(0.05, None) is None


def test_synchronous_fits_fall_on_every_check_step_whatever_the_budget():
    clock = Clock()
    worker = FakeWorker(cpu=5.0)
    fits = OnlineFits(10, FitBudget(0.02, clock=clock), lambda: worker, first_step=14, synchronous=True)
    assert [s for s in range(1, 61) if fits.due(s, clock.now)] == [20, 30, 40, 50, 60]  # never a 2 % budget's wait
    fits.submit(_request(20))
    worker.finish()
    assert [r["step"] for r in fits.wait(1.0)] == [20] and fits.due(30, clock.now)  # a fit's cost defers nothing
