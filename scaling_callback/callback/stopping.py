"""The seam between the callback and early-stopping policies: the protocol and its decision.

A policy is any object with ``should_stop(**context)``; it is called after each online fit, in the
fit worker (rank 0's thread or process, see :func:`judge_in_worker`), with the keyword arguments ``store`` (the
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


def judge_in_worker(request: Any, result: dict[str, Any], store: Any, policies: dict[str, Any]) -> None:
    """Ask the run's policy about a fresh fit where the fit ran (a worker), adding ``decision`` to ``result``.

    Judging can mean fitting rivals' curves, so it belongs off the training thread. The worker keeps
    each run's policy (sent with its first judged request) and returns the policy's state with each
    decision, so that the training process can checkpoint it.
    """
    if request.policy is not None:
        policies[request.run] = request.policy
    policy = policies.get(request.run)
    if not request.judge or request.final or policy is None:
        return
    decision = ask_policy(policy, store=store, run_name=request.run, sweep=request.sweep, step=int(request.step), fit=result)
    result["decision"] = {"stop": decision.stop, "probability": decision.probability, "reason": decision.reason}
    state = getattr(policy, "state_dict", None)
    if callable(state):
        result["policy_state"] = state()


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
        self._sent = False  # the fit worker keeps the policy once it has it

    def for_request(self, final: bool) -> tuple[bool, Any]:
        """(judge, policy) for the next fit request: judge online fits while open; send the policy once."""
        judge = not final and self.open
        send, self._sent = judge and not self._sent, self._sent or judge
        return judge, self.policy if send else None

    def take(self, result: dict[str, Any], record: Callable[[StopDecision], None] | None = None) -> None:
        """Apply the decision a worker attached to a fit ``result``, and the policy state it sent back."""
        if result.get("decision") is None:
            return
        self.consider(record, given=result["decision"])
        load = getattr(self.policy, "load_state_dict", None)
        if result.get("policy_state") is not None and callable(load):
            load(result["policy_state"])  # what a process worker's copy learned, for the checkpoint

    def end_status(self, step: int, total_steps: int | None) -> tuple[str, str | None]:
        """The run's status and reason when training ends at ``step`` of its planned ``total_steps``."""
        if total_steps is not None and step >= total_steps:
            return "finished", None  # reached its planned end, even if a stop was agreed on that very step
        if self.stopped_at is not None:
            return "stopped", self.decision.reason or "stopped by the early-stopping policy"
        if total_steps is not None:
            return "stopped", f"training ended at step {step} of {total_steps} (trainer stop, max_time or another callback)"
        return "finished", None

    @property
    def open(self) -> bool:
        """Whether the policy still has to be asked (there is one, and it has not said stop)."""
        return self.policy is not None and self.decision is None

    def consider(self, record: Callable[[StopDecision], None] | None = None, given: dict[str, Any] | None = None,
                 **context: Any) -> StopDecision | None:
        """Ask the policy, or take the decision ``given`` by a worker; ``record`` stores every decision."""
        if not self.open:
            return None
        if given is not None:
            decision = StopDecision(bool(given["stop"]), float(given.get("probability", math.nan)), str(given.get("reason", "")))
        else:
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
