"""Background fitting: a worker process (default) or thread, and the budget that spaces fits.

Why a process: a fit is ~0.3–1.5 s of SciPy driven from Python; in a thread it holds the GIL for
much of that time and stalls a Python-heavy training loop, while a process (started with
``subprocess``, so the user's ``__main__`` is never re-imported, and ``nice``-d so that training
wins when both want the same core) only competes for CPU time. ``benchmarks/bench_callback_overhead.py``
measures both. The process talks pickles over its stdin/stdout and writes fits to the store itself,
so a fit requested at the end of training completes even after training has returned.

Measured (benchmarks/bench_callback_overhead.py, a fit every 100 steps with no budget, CPU-bound
tiny-MLP loop on 2 cores): 2.30x wall with a thread worker, 1.12x with a process worker.

Reuse: a process worker that is idle when its run ends is parked and lent to the next run of the same
training process and store (a sweep's worker process trains run after run): its start-up (~1 CPU-s of
imports) and the sweep's ended runs it has learned (~1 CPU-s of store reads at 70 runs) are paid once
per process instead of once per run. One still fitting when its run ends is closed; its fit completes.

Budget: :class:`FitBudget` admits a fit only while the CPU time spent on fitting (worker start-up
included) plus the fit's expected cost is at most ``max_fraction`` of the wall time since training
started. A worker that dies answers its outstanding requests with a failed status.
"""

from __future__ import annotations

import atexit
import os
import pickle
import queue
import signal
import subprocess
import sys
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

from scaling_callback.callback.fit_job import FitRequest, run_fit
from scaling_callback.callback.stopping import judge_in_worker
from scaling_callback.fitting.sweep_forecaster import SweepForecaster
from scaling_callback.store.engine import is_memory

_LIVE_WORKERS: list[FitWorker] = []
_PARKED: dict[tuple[str | None, int], list[ProcessFitWorker]] = {}  # idle process workers by (store url, niceness)
_PARK_LOCK = threading.Lock()  # runs on threads of one process (Ray trials) lend and release concurrently
EXIT_WAIT_S = 300.0  # at interpreter exit, how long to let a final fit finish (not after Ctrl-C: FitWorker.abandon)
NICENESS = 10  # default priority cut of a fit process: training keeps its cores (a fit waits when they are busy)


class FitBudget:
    """Admits fits while fitting's CPU time ≤ ``max_fraction`` × wall time since ``start`` (None: always)."""

    def __init__(self, max_fraction: float | None, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_fraction = max_fraction
        self.clock = clock
        self.started = clock()
        self.spent = 0.0

    def charge(self, cpu_seconds: float) -> None:
        """Count CPU time spent fitting."""
        self.spent += max(float(cpu_seconds), 0.0)

    def allows(self, expected: float = 0.0) -> bool:
        """Whether a fit costing ``expected`` more seconds keeps fitting within the budget."""
        if self.max_fraction is None:
            return True
        return self.spent + expected <= self.max_fraction * (self.clock() - self.started)

    def earliest(self, expected: float = 0.0) -> float:
        """Clock time from which a fit costing ``expected`` seconds is admitted."""
        if self.max_fraction is None:
            return self.started
        return self.started + (self.spent + expected) / self.max_fraction

    @property
    def fraction(self) -> float:
        """CPU time spent fitting as a fraction of wall time so far."""
        return self.spent / max(self.clock() - self.started, 1e-9)


class FitWorker(ABC):
    """Interface of the two workers: submit one request at a time, poll results without blocking."""

    kind = "none"

    def __init__(self) -> None:
        self.in_flight = 0
        self.startup_cpu = 0.0
        self._results: queue.Queue = queue.Queue()
        self._pending: list[tuple[str, int, bool]] = []  # (run, step, final) of requests not yet answered

    @property
    def busy(self) -> bool:
        return self.in_flight > 0

    def submit(self, request: FitRequest) -> None:
        self.in_flight += 1
        self._pending.append((request.run, int(request.step), bool(request.final)))
        self._send(request)

    def _answered(self, result: dict[str, Any]) -> dict[str, Any]:
        key = (result.get("run"), result.get("step"), result.get("final"))
        if key in self._pending:
            self._pending.remove(key)
        elif self._pending:
            self._pending.pop(0)
        return result

    def death(self) -> str:
        """Why the worker stopped answering (for the failed status of the fits it held)."""
        return "fit worker exited before answering"

    def _dead_answers(self) -> list[dict[str, Any]]:
        """A failed result for every request the dead worker held, naming its run, step and the cause."""
        why = self.death()
        answers = [dict(_failed(run, step, final, why), worker_died=True) for run, step, final in self._pending]
        answers += [dict(_failed("", -1, False, why), worker_died=True)] * (self.in_flight - len(answers))
        self._pending.clear()
        return answers

    def poll(self) -> list[dict[str, Any]]:
        """Results that arrived since the last poll (never blocks); a finished worker's unanswered requests fail."""
        results = []
        while not self._results.empty():
            results.append(self._answered(self._results.get_nowait()))
        self.in_flight -= len(results)
        if self.in_flight > 0 and self._finished() and self._results.empty():
            results += self._dead_answers()
            self.in_flight = 0
        return results

    def wait(self, timeout: float | None) -> list[dict[str, Any]]:
        """Block until every submitted fit has returned (or ``timeout``); returns them."""
        deadline = None if timeout is None else time.monotonic() + timeout
        results: list[dict[str, Any]] = []
        while self.in_flight > 0:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                break
            try:
                results.append(
                    self._answered(self._results.get(timeout=1.0 if remaining is None else min(remaining, 1.0)))
                )
                self.in_flight -= 1
            except queue.Empty:
                results += self.poll()  # notices a worker that died
        return results

    def _finished(self) -> bool:
        """Whether the worker can produce no more results (it exited and everything it sent was read)."""
        return False

    def take_startup_cpu(self) -> float:
        """CPU seconds the worker spent starting (reported once, to charge the budget)."""
        value, self.startup_cpu = self.startup_cpu, 0.0
        return value

    def close(self) -> None:  # noqa: B027 - optional hook: most workers have nothing to close
        """Accept no more requests; a fit in progress still completes (and is stored)."""

    def release(self) -> None:
        """The run is done with this worker: :meth:`close` it (a process worker may be kept for the next run)."""
        self.close()

    def abandon(self) -> None:
        """Give up the fit in progress (Ctrl-C: the run will be resumed and fitted again); nothing waits for it at exit."""
        self.close()
        if self in _LIVE_WORKERS:
            _LIVE_WORKERS.remove(self)

    def alive(self) -> bool:
        return False

    @abstractmethod
    def _send(self, request: FitRequest) -> None:
        """Hand ``request`` to the worker (a thread's queue or a process's pipe)."""


class ThreadFitWorker(FitWorker):
    """Fits on a daemon thread of this process, against the same store object."""

    kind = "thread"

    def __init__(self, store: Any = None) -> None:
        super().__init__()
        self._store = store
        self._requests: queue.Queue = queue.Queue()
        self._thread = threading.Thread(target=self._loop, name="scaling-fit-worker", daemon=True)
        self._thread.start()
        _register(self)

    def _send(self, request: FitRequest) -> None:
        self._requests.put(request)

    def _loop(self) -> None:
        state = WorkerState()
        while (request := self._requests.get()) is not None:
            self._results.put(serve(request, self._store, state, clock=time.thread_time))

    def close(self) -> None:
        self._requests.put(None)

    def alive(self) -> bool:
        return self._thread.is_alive()

    def _finished(self) -> bool:
        return not self._thread.is_alive()

    def join(self, timeout: float | None) -> None:
        self._thread.join(timeout)


class ProcessFitWorker(FitWorker):
    """Fits in a child Python process (``python -m scaling_callback.callback.fit_worker``) that writes to ``store_url``."""

    kind = "process"

    def __init__(self, store_url: str | None = None, niceness: int = NICENESS) -> None:
        super().__init__()
        env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
        command = [sys.executable, "-m", "scaling_callback.callback.fit_worker", str(int(niceness))] + (
            [store_url] if store_url else []
        )
        self._key = (store_url, int(niceness))
        self._process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
        self._outbox: queue.Queue = queue.Queue()  # pipe writes block while the child is busy: never on our caller
        self._sender = threading.Thread(target=self._write, name="scaling-fit-sender", daemon=True)
        self._reader = threading.Thread(target=self._read, name="scaling-fit-reader", daemon=True)
        self._sender.start()
        self._reader.start()
        _register(self)

    def _send(self, request: FitRequest) -> None:
        self._outbox.put(request)

    def _write(self) -> None:
        while True:
            request = self._outbox.get()
            try:
                if request is None:
                    self._process.stdin.close()  # EOF: the child finishes its current fit, then exits
                    return
                pickle.dump(request, self._process.stdin, protocol=pickle.HIGHEST_PROTOCOL)
                self._process.stdin.flush()
            except (BrokenPipeError, OSError, ValueError):
                return  # the child is gone: outstanding requests are answered as failed (FitWorker.poll)

    def _read(self) -> None:
        stream = self._process.stdout
        while True:
            try:
                message = pickle.load(stream)
            except (EOFError, OSError, pickle.UnpicklingError):
                return
            if isinstance(message, dict) and message.get("ready"):
                self.startup_cpu = float(message.get("startup_cpu", 0.0))
            else:
                self._results.put(message)

    def close(self) -> None:
        self._outbox.put(None)

    def release(self) -> None:
        """Park an idle live worker for the next run of this process (see the module docstring), else close it."""
        if self.alive() and not self.busy:
            self._pending.clear()
            with _PARK_LOCK:
                _PARKED.setdefault(self._key, []).append(self)
        else:
            self.close()

    @classmethod
    def lend(cls, store_url: str | None = None, niceness: int = NICENESS) -> ProcessFitWorker:
        """A parked idle worker for this store and niceness, or a new one."""
        while True:
            with _PARK_LOCK:
                parked = _PARKED.get((store_url, int(niceness)), [])
                worker = parked.pop() if parked else None
            if worker is None:
                return cls(store_url, niceness)
            if worker.alive() and not worker.busy:
                return worker
            worker.close()

    def abandon(self) -> None:
        """End the fit process now (SIGTERM): a fit it was writing is rolled back by the store, never half-stored."""
        super().abandon()
        try:
            self._process.terminate()
        except OSError:
            pass  # already gone

    def alive(self) -> bool:
        return self._process.poll() is None

    def death(self) -> str:
        code = self._process.poll()
        if code is None:
            return "fit worker stopped answering"
        if code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = f"signal {-code}"
            return f"fit worker process {self._process.pid} was killed by {name} during the fit"
        return f"fit worker process {self._process.pid} exited with status {code} during the fit"

    def _finished(self) -> bool:
        return not self._reader.is_alive()

    def join(self, timeout: float | None) -> None:
        try:
            self._process.wait(timeout)
        except subprocess.TimeoutExpired:
            pass


class WorkerState:
    """What a worker keeps between requests: each run's policy and each sweep's forecaster."""

    def __init__(self) -> None:
        self.policies: dict[str, Any] = {}
        self.forecasters: dict[str | None, SweepForecaster] = {}

    def forecaster(self, sweep: str | None) -> SweepForecaster:
        if sweep not in self.forecasters:
            self.forecasters[sweep] = SweepForecaster()
        return self.forecasters[sweep]


def serve(
    request: FitRequest, store: Any, state: WorkerState, clock: Callable[[], float] = time.process_time
) -> dict[str, Any]:
    """One request in a worker: the fit, then (when asked) the early-stopping judgement. Never raises."""
    forecaster = state.forecaster(request.sweep)
    result = run_fit(request, store, forecaster, clock=clock)
    try:
        judge_in_worker(request, result, store, state.policies, forecaster)
    except Exception as error:
        result["decision"] = {
            "stop": False,
            "kind": "no-forecast",
            "probability": float("nan"),
            "reason": f"policy error: {type(error).__name__}: {error}",
            "fit_id": result.get("fit_id"),
        }
    return result


def _failed(run: str, step: int, final: bool, why: str) -> dict[str, Any]:
    return {"run": run, "step": step, "final": final, "status": f"failed: {why}", "cpu_seconds": 0.0}


def _register(worker: FitWorker) -> None:
    _LIVE_WORKERS[:] = [w for w in _LIVE_WORKERS if w.alive()] + [worker]


def make_worker(kind: str, url: str | None = None, store: Any = None, niceness: int = NICENESS) -> FitWorker:
    """A ``"process"`` worker writing to ``url`` (None: not storing; a parked idle one when there is one), or a
    ``"thread"`` one writing to ``store``."""
    if kind == "process":
        return ProcessFitWorker.lend(url, niceness)
    if kind == "thread":
        return ThreadFitWorker(store)
    raise ValueError(f"fit worker kind {kind!r} is not 'process' or 'thread'")


def worker_for_store(
    kind: str, url: str | None, opened_store: Callable[[], Any], niceness: int = NICENESS
) -> FitWorker:
    """The worker a run asked for, given its store: an in-memory store is reachable only from a thread."""
    if url is None:
        return make_worker(kind, None, niceness=niceness)
    if kind == "process" and not is_memory(url):
        return make_worker("process", url=url, niceness=niceness)
    return make_worker("thread", store=opened_store())


@atexit.register
def _finish_at_exit() -> None:
    """Let final fits still running in the background finish (bounded) before the interpreter exits."""
    deadline = time.monotonic() + EXIT_WAIT_S
    for worker in list(_LIVE_WORKERS):
        worker.close()
        worker.join(max(deadline - time.monotonic(), 0.0))


def _serve(store_url: str | None, niceness: int = NICENESS) -> None:
    """Child process: read requests from stdin, fit, store, answer on stdout; exit at EOF."""
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # anything printed by libraries goes to stderr, never into the result stream
    try:
        os.nice(niceness)
    except (AttributeError, OSError):
        pass

    store = None
    if store_url:
        from scaling_callback.store import SweepStore

        store = SweepStore(store_url)
    pickle.dump({"ready": True, "startup_cpu": time.process_time()}, out)
    out.flush()
    stdin = sys.stdin.buffer
    state = WorkerState()
    while True:
        try:
            request = pickle.load(stdin)
        except (EOFError, OSError, pickle.UnpicklingError):
            return
        if request is None:
            return
        result = serve(request, store, state)
        try:
            pickle.dump(result, out, protocol=pickle.HIGHEST_PROTOCOL)
            out.flush()
        except (BrokenPipeError, OSError):  # the trainer is gone; the fit is already stored
            pass


if __name__ == "__main__":
    _serve(sys.argv[2] if len(sys.argv) > 2 else None, int(sys.argv[1]) if len(sys.argv) > 1 else NICENESS)
