"""When to fit a run's curve online: a cadence, enough post-warmup steps, one fit at a time, a CPU budget.

Framework-free: the adapter reports the step and the clock, submits the requests this admits and
hands over the results it collects. A fit is admitted only once the budget can absorb its
expected cost (a guess that includes the worker's start-up, then each fit's measured cost), so
fitting stays within ``max_fraction`` of wall time, not just on average — except, when asked, one
first fit at a fixed early step (``first_fit_step``): a 2 % budget admits no fit before ~150 s of
training (3 CPU-s / 0.02), so a short CPU run would otherwise log no prediction at all. That fit's
cost is charged like any other, so the fits after it wait until the budget has absorbed it.

``synchronous`` (the callback's ``synchronous_stopping``): a fit at exactly every ``every``-th step
from ``first_step`` on, outside the budget and without the first prediction, and the adapter waits
for each; then every fit, and so every stop check, sees the same curve on every rerun.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from scaling_callback.callback.fit_job import FitRequest
from scaling_callback.callback.fit_worker import FitBudget, FitWorker

FIRST_FIT_GUESS_S = 3.0  # CPU seconds of a first fit, worker start-up included, before any was measured
MIN_FIT_STEPS = 10  # post-warmup steps before the first online fit


class OnlineFits:
    """Schedules fits every ``every`` steps from ``first_step`` on, one at a time, within ``budget``.

    Args:
        every: optimizer steps between fits.
        budget: the CPU budget for fitting.
        make_worker: builds the worker on first use (or at :meth:`start_worker`).
        first_step: no fit before this step (warmup + :data:`MIN_FIT_STEPS`).
        next_step: the first step at which a fit is due (restored from a checkpoint on resume).
        first_fit_step: one fit is due at this step (or the first after ``first_step``) whatever the cadence
            and the budget; None: none outside them.
        synchronous: fits at exactly every ``every``-th step, whatever the budget (the adapter waits for each).
    """

    def __init__(
        self,
        every: int,
        budget: FitBudget,
        make_worker: Callable[[], FitWorker],
        first_step: int = 0,
        next_step: int | None = None,
        first_fit_step: int | None = None,
        synchronous: bool = False,
    ) -> None:
        self.every, self.budget, self._make_worker = every, budget, make_worker
        self.synchronous = synchronous
        self.first_step = first_step
        self.first_fit_step = first_fit_step
        self.first_submitted = False
        self.next_step = every if next_step is None else next_step
        self.not_before = float("-inf")  # clock time before which the budget admits nothing
        self.worker: FitWorker | None = None
        self.latest: dict[str, Any] | None = None
        self.last_cpu = 0.0
        self.restarts = 0  # workers started again after one died

    @property
    def busy(self) -> bool:
        return self.worker is not None and self.worker.busy

    def start_worker(self) -> None:
        """Start the worker now (e.g. without a budget, so that its imports overlap training); a dead one is replaced."""
        if self.worker is None:
            self.worker = self._make_worker()
        elif (
            not self.worker.busy and not self.worker.alive()
        ):  # killed (OOM killer, a signal): the next fit restarts it
            self.worker = self._make_worker()
            self.restarts += 1

    def expected_cpu(self) -> float:
        """CPU seconds the next fit should cost: the last one's, or the first-fit guess."""
        return self.last_cpu if self.latest is not None else FIRST_FIT_GUESS_S

    def due(self, step: int, now: float) -> bool:
        """Whether to submit a fit at ``step`` (cheap until a fit is due; then asks the budget)."""
        if self.synchronous:
            return step >= self.first_step and step % self.every == 0
        if (
            self.first_fit_step is not None
            and not self.first_submitted
            and self.latest is None
            and not self.busy
            and step >= max(self.first_fit_step, self.first_step)
        ):
            return True
        if step < self.next_step or now < self.not_before or step < self.first_step or self.busy:
            return False
        expected = self.expected_cpu()
        if not self.budget.allows(expected):
            self.not_before = self.budget.earliest(expected)
            return False
        return True

    def submit(self, request: FitRequest) -> None:
        """Hand a request to the worker; an online one moves the cadence on."""
        self.start_worker()
        self.worker.submit(request)
        if not request.final:
            self.first_submitted = True
            self.next_step = (request.step // self.every + 1) * self.every

    def final_may_wait(self) -> bool:
        """Whether the budget lets training wait for the final fit."""
        return self.budget.allows(self.expected_cpu())

    def results(self) -> list[dict[str, Any]]:
        """Results that arrived (never blocks), with their CPU charged to the budget."""
        return [self._accept(r) for r in self.worker.poll()] if self.busy else []

    def wait(self, timeout: float | None) -> list[dict[str, Any]]:
        """Block until submitted fits return (or ``timeout``)."""
        return [self._accept(r) for r in self.worker.wait(timeout)] if self.worker is not None else []

    def close(self, abandon: bool = False) -> None:
        """No more requests; a fit in progress completes in the background and is stored (``abandon``: it is dropped).

        An idle process worker is kept for the next run of this process (:meth:`FitWorker.release`)."""
        if self.worker is not None:
            self.worker.abandon() if abandon else self.worker.release()

    def _accept(self, result: dict[str, Any]) -> dict[str, Any]:
        if result.get("worker_died"):  # no fit happened: neither a cost to learn from nor a latest fit
            return result
        self.last_cpu = float(result.get("cpu_seconds", 0.0))
        self.budget.charge(self.last_cpu + self.worker.take_startup_cpu())
        if self.latest is None or result.get("step", -1) >= self.latest.get("step", -1):
            self.latest = result
        return result


def first_fit_step(fraction: float | None, total_steps: int | None) -> int | None:
    """The step at ``fraction`` of the planned steps (None when either is unknown)."""
    if fraction is None or not total_steps:
        return None
    return max(1, math.ceil(fraction * total_steps))
