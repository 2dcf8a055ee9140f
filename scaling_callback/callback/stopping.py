"""The seam between the callback and early-stopping policies.

A policy is a :class:`~scaling_callback.stopping.StoppingPolicy`; it is asked after each online fit,
in the fit worker (rank 0's thread or process, see :func:`judge_in_worker`), with the judged run's
view built from the fit request (its curve, plan and the forecast the fit just made) and its
sweep's other runs read from the store (:mod:`store_views`). Its :class:`~scaling_callback.stopping.Decision`
travels back as plain values and is stored with the id of the fit whose forecast it used.

A stop reaches every DDP rank through Lightning's ``reduce_boolean_decision`` collective at the
next check step, so all ranks stop together.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from scaling_callback.stopping.policy import StoppingPolicy
from scaling_callback.stopping.views import Decision
from scaling_callback.store.sweep_store import SweepStore


def decision_values(decision: Decision, fit_id: int | None = None) -> dict[str, Any]:
    """A decision as the plain values that travel from the worker and are stored."""
    probability = math.nan if decision.probability is None else float(decision.probability)
    return {
        "stop": decision.stop,
        "kind": decision.kind,
        "probability": probability,
        "reason": decision.reason,
        "fit_id": fit_id,
    }


def judge_in_worker(
    request: Any, result: dict[str, Any], store: Any, policies: dict[str, StoppingPolicy], forecaster: Any = None
) -> None:
    """Ask the run's policy about a fresh fit where the fit ran (a worker), adding ``decision`` to ``result``.

    The worker keeps each run's policy (sent with its first judged request) and returns the
    policy's state with each decision, so that the training process can checkpoint it. A law policy
    uses the worker's sweep forecaster, so the forecast it compares is the fit's own.
    """
    from scaling_callback.callback.store_views import judged_view, sweep_view
    from scaling_callback.fitting.curves import bin_curve
    from scaling_callback.fitting.forecast_types import Forecast

    if request.policy is not None:
        policies[request.run] = request.policy
    policy = policies.get(request.run)
    if not request.judge or request.final or policy is None:
        return
    if forecaster is not None and hasattr(policy, "forecaster"):
        policy.forecaster = forecaster
    forecast = Forecast.from_dict(result["forecast"]) if result.get("forecast") else None
    steps, loss = bin_curve(request.steps, request.loss, -1, request.max_points)
    run = judged_view(request.run, steps, loss, request.lrs, forecast, request.flops_per_step)
    try:
        decision = policy.decide(run, sweep_view(run, store, request.sweep))
    except Exception as error:
        decision = Decision(False, "no-forecast", None, f"policy error: {type(error).__name__}: {error}")
    result["decision"] = decision_values(decision, result.get("fit_id"))
    result["policy_state"] = policy.state_dict()


def decision_recorder(writer: Any, run: str, step: int, policy: Any) -> Callable[[dict[str, Any]], None]:
    """Store a decision at ``step`` (as :func:`decision_values` gives it) through the callback's background ``writer``."""

    def record(values: dict[str, Any]) -> None:
        writer.submit(
            SweepStore.add_decision,
            run,
            step,
            values["stop"],
            probability=values["probability"],
            reason=values["reason"],
            policy=policy_name(policy),
            kind=values["kind"],
            fit_id=values["fit_id"],
        )

    return record


def policy_name(policy: Any) -> str:
    """The policy's class name, as stored with its decisions."""
    return type(policy).__name__


class StopSeam:
    """Takes the worker's decisions (on rank 0), keeps the first stop, and lets every rank agree on it.

    ``agree(reduce_any)`` is a collective: every rank must call it at the same steps, passing a
    function that is True on all ranks when it is True on any (Lightning's
    ``strategy.reduce_boolean_decision(flag, all=False)``).
    """

    def __init__(self, policy: StoppingPolicy | None) -> None:
        self.policy = policy
        self.decision: dict[str, Any] | None = None
        self.stopped_at: int | None = None
        self._sent = False  # the fit worker keeps the policy once it has it

    def for_request(self, final: bool) -> tuple[bool, StoppingPolicy | None]:
        """(judge, policy) for the next fit request: judge online fits while open; send the policy once."""
        judge = not final and self.open
        send, self._sent = judge and not self._sent, self._sent or judge
        return judge, self.policy if send else None

    def take(self, result: dict[str, Any], record: Callable[[dict[str, Any]], None] | None = None) -> None:
        """Apply the decision a worker attached to a fit ``result``, and the policy state it sent back."""
        given = result.get("decision")
        if given is None or not self.open:
            return
        if record is not None:
            record(given)
        if given["stop"]:
            self.decision = given
        if result.get("policy_state") is not None:
            self.policy.load_state_dict(
                result["policy_state"]
            )  # what a process worker's copy learned, for the checkpoint

    def end_status(self, step: int, total_steps: int | None) -> tuple[str, str | None]:
        """The run's status and reason when training ends at ``step`` of its planned ``total_steps``."""
        if total_steps is not None and step >= total_steps:
            return "finished", None  # reached its planned end, even if a stop was agreed on that very step
        if self.stopped_at is not None:
            return "stopped", self.decision.get("reason") or "stopped by the early-stopping policy"
        if total_steps is not None:
            return (
                "stopped",
                f"training ended at step {step} of {total_steps} (trainer stop, max_time or another callback)",
            )
        return "finished", None

    @property
    def open(self) -> bool:
        """Whether the policy still has to be asked (there is one, and it has not said stop)."""
        return self.policy is not None and self.decision is None

    def agree(self, reduce_any: Callable[[bool], bool], step: int) -> bool:
        """True, once, on every rank when a stop was decided on any rank; remembers the step."""
        wanted = self.decision is not None and self.stopped_at is None
        if reduce_any(wanted) and self.stopped_at is None:
            self.stopped_at = step
            return True
        return False
