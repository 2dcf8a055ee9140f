"""Early stopping of unpromising runs: a policy protocol, the law policy, baselines and a replay simulator.

Every policy answers ``decide(run, sweep) -> Decision`` (and ``should_stop(**context)`` for the
Lightning callback). ``LawPolicy`` forecasts each run's final loss from a per-run law; the
median rule, ASHA and "train every config for a fixed small budget" are the baselines it is
measured against (``replay``). ``PolicyPruner`` (Optuna adapter) is imported lazily: it needs
the optional ``optuna`` extra.
"""

from __future__ import annotations

from typing import Any

from scaling_callback.errors import InputError
from scaling_callback.stopping.asha import SuccessiveHalvingPolicy
from scaling_callback.stopping.fixed_budget import FixedBudgetPolicy
from scaling_callback.stopping.forecast import DropMember, Forecast
from scaling_callback.stopping.law_policy import LawPolicy
from scaling_callback.stopping.median import MedianPolicy
from scaling_callback.stopping.mpl_forecast import MPLForecaster
from scaling_callback.stopping.policy import Decision, RunView, StoppingPolicy, SweepView, Verdict
from scaling_callback.stopping.power_forecast import PowerLawForecaster
from scaling_callback.stopping.replay import ReplayResult, replay

POLICIES = ("law", "median", "asha", "fixed")

__all__ = [
    "POLICIES", "Decision", "DropMember", "FixedBudgetPolicy", "Forecast", "LawPolicy", "MPLForecaster",
    "MedianPolicy", "PolicyPruner", "PowerLawForecaster", "ReplayResult", "RunView", "StoppingPolicy",
    "SuccessiveHalvingPolicy", "SweepView", "Verdict", "make_policy", "replay",
]


def make_policy(name: str, **law_options: Any) -> StoppingPolicy:
    """A policy by name with its default settings; ``law_options`` go to :class:`LawPolicy` only."""
    if name == "law":
        return LawPolicy(**law_options)
    factories = {"median": MedianPolicy, "asha": SuccessiveHalvingPolicy, "fixed": FixedBudgetPolicy}
    if name not in factories:
        raise InputError(f"unknown policy {name!r}; choose one of {', '.join(POLICIES)}")
    return factories[name]()


def __getattr__(name: str) -> Any:
    if name == "PolicyPruner":  # needs optuna: imported only when asked for
        from scaling_callback.stopping.optuna_pruner import PolicyPruner

        return PolicyPruner
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
