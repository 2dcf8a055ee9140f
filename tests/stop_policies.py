"""Stand-in early-stopping policies importable by a fit worker process (tests put this folder on PYTHONPATH)."""

from __future__ import annotations

import os

from scaling_callback.stopping import Decision, RunView, StoppingPolicy, SweepView


class StopAtStep(StoppingPolicy):
    """Stop once a fit has seen ``step`` steps; says which process judged, and counts its calls as its state."""

    name = "stop-at-step"

    def __init__(self, step: int) -> None:
        self.step, self.calls = step, 0
        super().__init__()

    def state_dict(self) -> dict:
        return super().state_dict() | {"calls": self.calls}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.calls = int(state["calls"])

    def judge(self, run: RunView, sweep: SweepView) -> Decision:
        self.calls += 1
        stop = run.current_x >= self.step
        return Decision(False, "unpromising" if stop else "continue", 0.01 if stop else 0.5, f"judged in process {os.getpid()}")
