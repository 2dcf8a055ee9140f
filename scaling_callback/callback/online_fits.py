"""When to fit a run's curve online: a cadence, enough post-warmup steps, one fit at a time, a CPU budget.

Framework-free: the adapter reports the step and the clock, submits the requests this admits and
hands over the results it collects. The first fit is admitted only once the budget can absorb its
expected cost (a guess that includes the worker's start-up, then each fit's measured cost), so
fitting stays within ``max_fraction`` of wall time from the start, not just on average.
"""

from __future__ import annotations

from typing import Any, Callable

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
    """

    def __init__(self, every: int, budget: FitBudget, make_worker: Callable[[], FitWorker], first_step: int = 0,
                 next_step: int | None = None) -> None:
        self.every, self.budget, self._make_worker = every, budget, make_worker
        self.first_step = first_step
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
        elif not self.worker.busy and not self.worker.alive():  # killed (OOM killer, a signal): the next fit restarts it
            self.worker = self._make_worker()
            self.restarts += 1

    def expected_cpu(self) -> float:
        """CPU seconds the next fit should cost: the last one's, or the first-fit guess."""
        return self.last_cpu if self.latest is not None else FIRST_FIT_GUESS_S

    def due(self, step: int, now: float) -> bool:
        """Whether to submit a fit at ``step`` (cheap until a fit is due; then asks the budget)."""
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

    def close(self) -> None:
        """No more requests; a fit in progress completes in the background and is stored."""
        if self.worker is not None:
            self.worker.close()

    def _accept(self, result: dict[str, Any]) -> dict[str, Any]:
        if result.get("worker_died"):  # no fit happened: neither a cost to learn from nor a latest fit
            return result
        self.last_cpu = float(result.get("cpu_seconds", 0.0))
        self.budget.charge(self.last_cpu + self.worker.take_startup_cpu())
        if self.latest is None or result.get("step", -1) >= self.latest.get("step", -1):
            self.latest = result
        return result
