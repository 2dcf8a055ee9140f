"""The stopping policy a sweep config asks for, built from its ``stopping`` section by the one factory."""

from __future__ import annotations

from scaling_callback.stopping import StoppingPolicy, make_policy
from scaling_callback.sweep.config import StoppingSection


def policy_from_config(section: StoppingSection) -> StoppingPolicy | None:
    """A policy object for the callback's ``early_stopping``, or None for ``policy: none``."""
    if section.policy == "none":
        return None
    gating = {"n_startup_runs": section.n_startup_runs, "n_warmup_steps": section.n_warmup_steps,
              "interval_steps": section.interval_steps, "confirmations": section.confirmations}
    return make_policy(section.policy, threshold=section.threshold, objective=section.objective, **gating)
