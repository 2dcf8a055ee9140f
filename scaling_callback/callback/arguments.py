"""The callback's constructor arguments checked up front: a bad value is a one-line error naming it."""

from __future__ import annotations

from typing import Any

from scaling_callback.errors import InputError
from scaling_callback.store.engine import normalise_url
from scaling_callback.stopping.policy import StoppingPolicy


def check_arguments(*, store: Any, fit_every_n_steps: Any, early_stopping: Any, flush_every_n_steps: Any,
                    max_fit_points: Any, log_every_n_steps: Any, max_fit_fraction: Any, fit_worker: Any) -> None:
    """Raise :class:`InputError` for the first invalid argument of :class:`ScalingLawCallback`."""
    if fit_every_n_steps is not None:
        positive_int("fit_every_n_steps", fit_every_n_steps)
    elif early_stopping is not None:
        raise InputError("early_stopping needs online fits: set fit_every_n_steps to a positive integer, not None")
    positive_int("flush_every_n_steps", flush_every_n_steps)
    positive_int("max_fit_points", max_fit_points, minimum=3)
    if log_every_n_steps is not None:
        positive_int("log_every_n_steps", log_every_n_steps)
    if max_fit_fraction is not None and not 0 < max_fit_fraction <= 1:
        raise InputError(f"max_fit_fraction must be in (0, 1] or None, got {max_fit_fraction!r}")
    if fit_worker not in ("process", "thread"):
        raise InputError(f"fit_worker must be 'process' or 'thread', got {fit_worker!r}")
    if early_stopping is not None:
        if not isinstance(early_stopping, StoppingPolicy):
            raise InputError(f"early_stopping must be a StoppingPolicy (see scaling_callback.stopping), got {type(early_stopping).__name__}")
    if isinstance(store, str) or hasattr(store, "__fspath__"):
        normalise_url(store)  # fail now, naming the bad location


def positive_int(name: str, value: Any, minimum: int = 1) -> None:
    """An integer ≥ ``minimum`` (booleans are not integers here)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InputError(f"{name} must be an integer ≥ {minimum}, got {value!r}")
