"""The seam between the callback and early-stopping policies: the protocol and its decision.

A policy is any object with ``should_stop(**context)``; the callback calls it on the training
process (rank 0) after each online fit with the keyword arguments ``store`` (the
:class:`~scaling_callback.store.SweepStore` or None), ``run_name``, ``sweep``, ``step`` (the last
step the fit saw) and ``fit`` (the fit's result dict: ``pred_final_loss``, ``pred_final_low``,
``pred_final_high``, ``drop_term``, ``status``, ``params``...). It returns a bool or a
:class:`StopDecision` (or any object with ``stop``, ``probability`` and ``reason`` attributes).

The callback stores every decision, and a stop reaches every DDP rank through Lightning's
``reduce_boolean_decision`` collective at the next check step, so all ranks stop together.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Protocol, runtime_checkable


@dataclass(frozen=True)
class StopDecision:
    """Whether to stop the run, with the policy's probability (NaN if it has none) and a one-line reason."""

    stop: bool
    probability: float = math.nan
    reason: str = ""


@runtime_checkable
class StoppingPolicy(Protocol):
    """What the callback needs from an early-stopping policy."""

    def should_stop(self, **context: Any) -> "bool | StopDecision":
        """Decide from the run's latest fit and the sweep's store whether to stop it now."""


def ask_policy(policy: Any, **context: Any) -> StopDecision:
    """Call ``policy.should_stop(**context)`` and normalise the answer; an error is a no-stop decision saying so."""
    try:
        answer = policy.should_stop(**context)
    except Exception as error:  # noqa: BLE001 - a failing policy must not end training
        return StopDecision(False, math.nan, f"policy error: {type(error).__name__}: {error}")
    if isinstance(answer, StopDecision):
        return answer
    if isinstance(answer, bool) or answer is None:
        return StopDecision(bool(answer), math.nan, "policy said stop" if answer else "")
    probability = getattr(answer, "probability", math.nan)
    return StopDecision(bool(getattr(answer, "stop")), math.nan if probability is None else float(probability),
                        str(getattr(answer, "reason", "") or ""))


def policy_name(policy: Any) -> str:
    """The policy's class name, as stored with its decisions."""
    return type(policy).__name__


class StopSeam:
    """Asks the policy after each fit (on rank 0), keeps the first stop, and lets every rank agree on it.

    ``agree(reduce_any)`` is a collective: every rank must call it at the same steps, passing a
    function that is True on all ranks when it is True on any (Lightning's
    ``strategy.reduce_boolean_decision(flag, all=False)``).
    """

    def __init__(self, policy: Any) -> None:
        self.policy = policy
        self.decision: StopDecision | None = None
        self.stopped_at: int | None = None

    def consider(self, record: Callable[[StopDecision], None] | None = None, **context: Any) -> StopDecision | None:
        """Ask the policy (unless it already said stop); ``record`` stores every decision."""
        if self.policy is None or self.decision is not None:
            return None
        decision = ask_policy(self.policy, **context)
        if record is not None:
            record(decision)
        if decision.stop:
            self.decision = decision
        return decision

    def agree(self, reduce_any: Callable[[bool], bool], step: int) -> bool:
        """True, once, on every rank when a stop was decided on any rank; remembers the step."""
        wanted = self.decision is not None and self.stopped_at is None
        if reduce_any(wanted) and self.stopped_at is None:
            self.stopped_at = step
            return True
        return False
