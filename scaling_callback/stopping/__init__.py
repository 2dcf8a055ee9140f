"""Early stopping of unpromising runs: the policy protocol, the law policy, baselines and a replay simulator.

Every policy answers ``decide(run, sweep) -> Decision``. ``LawPolicy`` compares the sweep's one
forecast of each run's final loss (:mod:`scaling_callback.fitting.sweep_forecaster`); the median
rule, ASHA and "train every config for a fixed small budget" are the baselines it is measured
against (``replay``; the benchmark also drives Optuna's own pruners). ``PolicyPruner`` (Optuna
adapter) is imported lazily: it needs the optional ``optuna`` extra.
"""

from __future__ import annotations

from typing import Any

from scaling_callback.errors import InputError
from scaling_callback.fitting.forecast_types import Forecast
from scaling_callback.stopping.asha import SuccessiveHalvingPolicy
from scaling_callback.stopping.fixed_budget import FixedBudgetPolicy
from scaling_callback.stopping.law_policy import LawPolicy
from scaling_callback.stopping.median import MedianPolicy
from scaling_callback.stopping.policy import StoppingPolicy
from scaling_callback.stopping.replay import ReplayResult, replay
from scaling_callback.stopping.views import Decision, RunView, SweepView

POLICIES = ("law", "median", "asha", "fixed")
_FACTORIES = {"law": LawPolicy, "median": MedianPolicy, "asha": SuccessiveHalvingPolicy, "fixed": FixedBudgetPolicy}
_LAW_ONLY = ("threshold", "objective", "forecaster")

__all__ = [
    "POLICIES", "Decision", "FixedBudgetPolicy", "Forecast", "LawPolicy", "MedianPolicy", "PolicyPruner",
    "ReplayResult", "RunView", "StoppingPolicy", "SuccessiveHalvingPolicy", "SweepView", "make_policy", "replay",
]


def make_policy(name: str, **options: Any) -> StoppingPolicy:
    """The one policy factory: a policy by name; ``options`` are its constructor's (law-only ones are
    dropped for the rank rules, so one set of settings can build every policy of a comparison)."""
    if name not in _FACTORIES:
        raise InputError(f"unknown policy {name!r}; choose one of {', '.join(POLICIES)}")
    if name != "law":
        options = {k: v for k, v in options.items() if k not in _LAW_ONLY}
    try:
        return _FACTORIES[name](**options)
    except TypeError as error:
        raise InputError(f"policy {name!r}: {error}") from None


def __getattr__(name: str) -> Any:
    if name == "PolicyPruner":  # needs optuna: imported only when asked for
        from scaling_callback.stopping.optuna_pruner import PolicyPruner

        return PolicyPruner
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
