"""Stand-in early-stopping policies importable by a fit worker process (tests put this folder on PYTHONPATH)."""

from __future__ import annotations

import os

from scaling_callback.callback.stopping import StopDecision


class StopAtStep:
    """Stop once a fit has seen ``step`` steps; says which process judged, and counts its calls as its state."""

    def __init__(self, step: int) -> None:
        self.step, self.calls = step, 0

    def state_dict(self) -> dict:
        return {"calls": self.calls}

    def load_state_dict(self, state: dict) -> None:
        self.calls = int(state["calls"])

    def should_stop(self, **context) -> StopDecision:
        self.calls += 1
        stop = context["step"] >= self.step
        return StopDecision(stop, 0.01 if stop else 0.5, f"judged in process {os.getpid()}")
