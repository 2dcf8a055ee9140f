"""The stopping policy a sweep config asks for, built from its ``stopping`` section."""

from __future__ import annotations

from typing import Any

from scaling_callback.sweep.config import StoppingSection


def make_policy(section: StoppingSection) -> Any:
    """A policy object for the callback's ``early_stopping``, or None for ``policy: none``."""
    gating = {"n_startup_runs": section.n_startup_runs, "n_warmup_steps": section.n_warmup_steps,
              "interval_steps": section.interval_steps, "confirmations": section.confirmations}
    if section.policy == "none":
        return None
    if section.policy == "law":
        from scaling_callback.stopping.law_policy import LawPolicy

        return LawPolicy(threshold=section.threshold, objective=section.objective, **gating)
    if section.policy == "median":
        from scaling_callback.stopping.median import MedianPolicy

        return MedianPolicy(**gating)
    from scaling_callback.stopping.asha import SuccessiveHalvingPolicy

    return SuccessiveHalvingPolicy(**gating)
