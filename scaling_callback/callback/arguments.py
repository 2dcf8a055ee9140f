"""The callback's constructor arguments checked up front: a bad value is a one-line error naming it.

Every argument of :class:`~scaling_callback.callback.scaling_law_callback.ScalingLawCallback` is
checked here, at construction, so that a typo fails before any training starts rather than as a
fit that fails silently in the background (``law="chinchilla"``) or a wait that never happens
(``final_fit_timeout_s=-5``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from scaling_callback.errors import InputError
from scaling_callback.laws.loss_curves import CURVE_LAWS
from scaling_callback.stopping.policy import StoppingPolicy
from scaling_callback.store import SweepStore
from scaling_callback.store.engine import normalise_url

FIT_WORKERS = ("process", "thread")
NICENESS_RANGE = (0, 19)  # what os.nice accepts upwards from a normal priority


def check_arguments(**arguments: Any) -> None:
    """Raise :class:`InputError` for the first invalid argument of :class:`ScalingLawCallback`."""
    a = arguments
    _store(a["store"])
    for name in ("run_name", "sweep"):
        if a[name] is not None and (not isinstance(a[name], str) or not a[name].strip()):
            raise InputError(f"{name} must be a non-empty string or None, got {a[name]!r}")
    if a["fit_every_n_steps"] is not None:
        positive_int("fit_every_n_steps", a["fit_every_n_steps"])
    elif a["early_stopping"] is not None:
        raise InputError("early_stopping needs online fits: set fit_every_n_steps to a positive integer, not None")
    if a["early_stopping"] is not None and not isinstance(a["early_stopping"], StoppingPolicy):
        raise InputError(
            f"early_stopping must be a StoppingPolicy (see scaling_callback.stopping), got {type(a['early_stopping']).__name__}"
        )
    if not isinstance(a["synchronous_stopping"], bool):
        raise InputError(f"synchronous_stopping must be True or False, got {a['synchronous_stopping']!r}")
    if a["synchronous_stopping"] and a["early_stopping"] is None:
        raise InputError("synchronous_stopping=True needs an early_stopping policy (it times the stop checks)")
    if a["law"] not in CURVE_LAWS:
        raise InputError(f"law must be one of {', '.join(sorted(CURVE_LAWS))}, got {a['law']!r}")
    if a["config"] is not None and not isinstance(a["config"], Mapping):
        raise InputError(f"config must be a dict or None, got {type(a['config']).__name__}")
    if a["fit_worker"] not in FIT_WORKERS:
        raise InputError(f"fit_worker must be 'process' or 'thread', got {a['fit_worker']!r}")
    low, high = NICENESS_RANGE
    if (
        isinstance(a["fit_niceness"], bool)
        or not isinstance(a["fit_niceness"], int)
        or not low <= a["fit_niceness"] <= high
    ):
        raise InputError(f"fit_niceness must be an integer in [{low}, {high}], got {a['fit_niceness']!r}")
    if a["max_fit_fraction"] is not None and not (_real(a["max_fit_fraction"]) and 0 < a["max_fit_fraction"] <= 1):
        raise InputError(f"max_fit_fraction must be in (0, 1] or None, got {a['max_fit_fraction']!r}")
    for name in ("budget_on_accelerator", "measure_flops"):
        if not isinstance(a[name], bool):
            raise InputError(f"{name} must be True or False, got {a[name]!r}")
    if a["wait_for_final_fit"] is not None and not isinstance(a["wait_for_final_fit"], bool):
        raise InputError(f"wait_for_final_fit must be True, False or None, got {a['wait_for_final_fit']!r}")
    positive_int("max_fit_points", a["max_fit_points"], minimum=3)
    if not (_real(a["final_fit_timeout_s"]) and a["final_fit_timeout_s"] >= 0):
        raise InputError(f"final_fit_timeout_s must be a finite number >= 0, got {a['final_fit_timeout_s']!r}")
    if a["flops_per_batch"] is not None and not (_real(a["flops_per_batch"]) and a["flops_per_batch"] > 0):
        raise InputError(f"flops_per_batch must be a positive finite number or None, got {a['flops_per_batch']!r}")
    if a["tokens_per_sample"] is not None:
        positive_int("tokens_per_sample", a["tokens_per_sample"])
    positive_int("lr_group", a["lr_group"], minimum=0)
    _val_metrics(a["val_metrics"])
    if a["log_every_n_steps"] is not None:
        positive_int("log_every_n_steps", a["log_every_n_steps"])
    positive_int("flush_every_n_steps", a["flush_every_n_steps"])
    if not (_real(a["flush_interval_s"]) and a["flush_interval_s"] > 0):
        raise InputError(f"flush_interval_s must be a positive finite number, got {a['flush_interval_s']!r}")
    first = a["first_prediction_fraction"]
    if first is not None and not (_real(first) and 0 < first <= 1):
        raise InputError(f"first_prediction_fraction must be in (0, 1] or None, got {first!r}")


def positive_int(name: str, value: Any, minimum: int = 1) -> None:
    """An integer ≥ ``minimum`` (booleans are not integers here)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InputError(f"{name} must be an integer ≥ {minimum}, got {value!r}")


def _real(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _store(store: Any) -> None:
    if store is None or isinstance(store, SweepStore):
        return
    if isinstance(store, str) or hasattr(store, "__fspath__"):
        normalise_url(store)  # fail now, naming the bad location
        return
    raise InputError(f"store must be a path, an SQLAlchemy URL, a SweepStore or None, got {type(store).__name__}")


def _val_metrics(value: Any) -> None:
    if value is None or (isinstance(value, str) and value.strip()):
        return
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, str) and v.strip() for v in value):
        return
    raise InputError(f"val_metrics must be 'auto', a metric name, a list of names or None, got {value!r}")
