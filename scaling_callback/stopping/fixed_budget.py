"""The naive baseline: judge every configuration after a fixed small budget, keep only the best.

Egele et al. (2024) found that many learning-curve extrapolation methods barely beat "train every
configuration for a fixed small budget and continue the best" (docs/reference.md §4). Online, as a stop
rule: when a run first reaches ``fraction`` of its budget, it continues only if its loss there is
among the ``keep_top`` lowest of all runs of the sweep at that point of theirs; then it is never
judged again.
"""

from __future__ import annotations

import numpy as np

from scaling_callback.errors import InputError
from scaling_callback.stopping.policy import StoppingPolicy
from scaling_callback.stopping.views import Decision, RunView, SweepView


class FixedBudgetPolicy(StoppingPolicy):
    """Stop every run after ``fraction`` of its budget unless it is among the ``keep_top`` best there.

    Args:
        fraction: the small budget, as a fraction of each run's planned budget.
        keep_top: how many of the best runs at that point continue.
        n_startup_runs: the gating of :class:`StoppingPolicy`.
    """

    name = "fixed"

    def __init__(self, fraction: float = 0.1, keep_top: int = 1, n_startup_runs: int = 0) -> None:
        if not 0.0 < fraction < 1.0:
            raise InputError(f"fraction must lie in (0, 1), got {fraction!r}")
        if int(keep_top) != keep_top or keep_top < 1:
            raise InputError(f"keep_top must be a positive integer, got {keep_top!r}")
        self.fraction, self.keep_top = float(fraction), int(keep_top)
        super().__init__(n_startup_runs, 0.0, fraction, 0.0, 0.0, 1)

    def judge(self, run: RunView, sweep: SweepView) -> Decision:
        if run.name in self._judged:
            return Decision(False, "continue", None, "survived the small-budget cut")
        self._judged.add(run.name)
        value = _value_at_fraction(run, self.fraction)
        others = [v for other in sweep.others(run.name) for v in [_value_at_fraction(other, self.fraction)] if np.isfinite(v)]
        rank = 1 + sum(v < value for v in others)
        if rank > self.keep_top:
            return Decision(False, "unpromising", None, f"loss {value:.4g} at {self.fraction:g} of the budget ranks {rank} of {len(others) + 1}")
        return Decision(False, "continue", None, f"loss {value:.4g} at {self.fraction:g} of the budget ranks {rank} of {len(others) + 1}")

    def reset(self) -> None:
        super().reset()
        self._judged: set[str] = set()

    def state_dict(self) -> dict:
        return super().state_dict() | {"judged": sorted(self._judged)}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self._judged = {str(name) for name in state.get("judged", [])}


def _value_at_fraction(run: RunView, fraction: float) -> float:
    """Loss at the run's first logged point at or past ``fraction`` of its budget (NaN before)."""
    index = int(np.searchsorted(run.x, fraction * run.budget, side="left"))
    return float(run.loss[index]) if index < run.x.size else float("nan")
