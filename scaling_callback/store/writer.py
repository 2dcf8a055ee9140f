"""Store writes off the hot path: a training loop enqueues, one background thread opens the store and writes.

Jobs are store methods called with the store first (``writer.submit(SweepStore.mark_finished, "run-a")``),
so the store itself can be opened on the thread: a slow or remote database never blocks the caller.
A write that fails (the database is locked for longer than the busy timeout, the disk is full) is
retried a few times, then logged and counted in ``errors``; it never raises into the caller. Point
batches that failed are kept (up to :data:`MAX_UNWRITTEN_POINTS`) and tried again at :meth:`close`,
so a disk that filled and freed during training loses nothing; what is still unwritten then is
counted in ``unwritten_points`` and logged as a warning. Rows still queued when the process is
killed are lost, which is why callers enqueue in small batches.
"""

from __future__ import annotations

import atexit
import logging
import queue
import threading
import time
import weakref
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping, Sequence

from sqlalchemy.exc import OperationalError

if TYPE_CHECKING:
    from pathlib import Path

    from scaling_callback.store.sweep_store import SweepStore

log = logging.getLogger("scaling_callback")

_RETRIES = 3
# Points kept for a retry at close after their write failed: ~200 bytes each as row dicts, so at most
# ~200 MB held for a store that stays unavailable (a run logging every step for 1M steps).
MAX_UNWRITTEN_POINTS = 1_000_000
_STOP = object()
_DONE = object()  # a marker job: set the event it carries
_RETRY = object()  # a marker job: write the point batches that failed before


class BatchedWriter:
    """Serialises writes to a :class:`SweepStore` on a daemon thread; :meth:`flush` waits for them.

    Args:
        store: the store, or its path/URL to open on the writer thread.
        retry_delay_s: first pause before retrying a failed write (doubles each retry).
    """

    def __init__(self, store: "SweepStore | str | Path", retry_delay_s: float = 0.5) -> None:
        from scaling_callback.store.sweep_store import SweepStore

        self.store: SweepStore | None = store if isinstance(store, SweepStore) else None
        self._location = None if self.store is not None else store
        self.retry_delay_s = retry_delay_s
        self.errors: list[str] = []
        self.written = 0
        self.dropped_points = 0  # failed points beyond MAX_UNWRITTEN_POINTS: not even kept for a retry
        self._unwritten: list[tuple[str, list]] = []  # point batches whose write failed, for a retry at close
        self._opened = threading.Event()
        self._queue: queue.Queue = queue.Queue()
        self._thread = threading.Thread(target=self._loop, name="scaling-store-writer", daemon=True)
        self._thread.start()
        self._closed = False
        atexit.register(_close_at_exit, weakref.ref(self))

    def submit(self, write: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        """Run ``write(store, *args, **kwargs)`` on the writer thread (e.g. ``SweepStore.mark_finished``)."""
        if self._closed:
            raise RuntimeError("the store writer is closed")
        self._queue.put((write, args, kwargs))

    def add_points(self, run: str, rows: Iterable[Mapping[str, Any] | Sequence[Any]]) -> None:
        """Enqueue a batch of points of ``run`` (kept for a retry at close if its write fails)."""
        self.submit(_write_points, run, list(rows))

    def opened_store(self, timeout: float | None = None) -> "SweepStore | None":
        """The store once the writer thread has opened it (None if opening failed or timed out)."""
        self._opened.wait(timeout)
        return self.store

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until everything enqueued so far is written; False on timeout."""
        if not self._thread.is_alive():
            return self._queue.empty()
        done = threading.Event()
        self._queue.put((_DONE, (done,), {}))
        return done.wait(timeout)

    @property
    def unwritten_points(self) -> int:
        """Points whose write failed and that are not (yet) in the store."""
        return sum(len(rows) for _, rows in list(self._unwritten)) + self.dropped_points

    def close(self, timeout: float | None = 30.0) -> bool:
        """Flush, retry point batches that failed, then stop the thread; warns with the points still lost.

        Returns False if pending writes did not finish in ``timeout``.
        """
        if self._closed:
            return True
        if self._unwritten:
            self._queue.put((_RETRY, (), {}))
        finished = self.flush(timeout)
        self._closed = True
        self._queue.put(_STOP)
        lost = self.unwritten_points
        if lost:
            log.warning("scaling_callback store: %d points were not stored (%d writes failed; first: %s)",
                        lost, len(self.errors), self.errors[0] if self.errors else "?")
        return finished

    def _loop(self) -> None:
        self._open()
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            write, args, kwargs = item
            if self.store is None and write is not _DONE and write is not _RETRY:
                self._fail(write, RuntimeError(f"store {self._location!r} could not be opened"), args)
                continue
            self._run(write, args, kwargs)

    def _open(self) -> None:
        if self.store is None:
            from scaling_callback.store.sweep_store import SweepStore

            try:
                self.store = SweepStore(self._location)
            except Exception as error:  # noqa: BLE001 - reported through errors, never raised into training
                self._fail(SweepStore, error)
        self._opened.set()

    def _run(self, write: Callable[..., Any], args: tuple, kwargs: dict) -> None:
        if write is _DONE:
            args[0].set()
            return
        if write is _RETRY:
            batches, self._unwritten = self._unwritten, []
            for run, rows in batches:
                self._run(_write_points, (run, rows), {})  # a batch failing again is kept again
            return
        delay = self.retry_delay_s
        for attempt in range(_RETRIES + 1):
            try:
                result = write(self.store, *args, **kwargs)
                self.written += result if isinstance(result, int) else 0
                return
            except OperationalError as error:  # locked or unavailable: worth another try
                if attempt == _RETRIES:
                    self._fail(write, error, args)
                    return
                time.sleep(delay)
                delay *= 2
            except Exception as error:  # noqa: BLE001 - a failed write must never reach the training loop
                self._fail(write, error, args)
                return

    def _fail(self, write: Callable[..., Any], error: BaseException, args: tuple = ()) -> None:
        name = "add_points" if write is _write_points else getattr(write, "__name__", write)
        message = f"{name} failed: {type(error).__name__}: {error}"
        self.errors.append(message)
        log.warning("scaling_callback store write %s", message)
        if write is _write_points:
            rows = list(args[1])
            if self.unwritten_points + len(rows) <= MAX_UNWRITTEN_POINTS:
                self._unwritten.append((args[0], rows))
            else:
                self.dropped_points += len(rows)


def _write_points(store: "SweepStore", run: str, rows: list) -> int:
    """The writer's point job (the store's own ``add_points``, looked up when it runs)."""
    return store.add_points(run, rows)


def _close_at_exit(reference: "weakref.ref[BatchedWriter]") -> None:
    writer = reference()
    if writer is not None:
        writer.close(timeout=30.0)
