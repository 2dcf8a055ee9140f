"""Asynchronous successive halving (ASHA; Li et al. 2020, "A System for Massively Parallel
Hyperparameter Tuning"; Optuna's ``SuccessiveHalvingPruner``, Ray Tune's ``ASHAScheduler``).

Rungs sit at x = r_min·η^(s + k), k = 0, 1, …. When a run first reaches a rung, its loss there
(at its first logged point at or past the rung) joins the rung's record, and the run continues
only if it ranks in the top ⌊n/η⌋ of the n runs recorded at that rung so far (any status; the
first η − 1 runs of a rung continue only if they are the best so far, as in Optuna). Equal x, not
equal planned compute; raw losses. ``min_resource="auto"``: 1 % of the run's budget (Optuna's
auto rule takes 1 % of the first finished trial's last step).
"""

from __future__ import annotations

import math

import numpy as np

from scaling_callback.errors import InputError
from scaling_callback.stopping.policy import StoppingPolicy
from scaling_callback.stopping.views import Decision, RunView, SweepView

AUTO_FRACTION = 0.01


class SuccessiveHalvingPolicy(StoppingPolicy):
    """Stop a run that is not in the top 1/η of the runs recorded at a rung it just reached.

    Args:
        min_resource: x of the first rung, or ``"auto"`` (1 % of the run's budget).
        reduction_factor: η (Optuna's and Ray's default 4).
        min_early_stopping_rate: s, skips the first s rungs.
        the rest: the gating of :class:`StoppingPolicy` (every report is checked by default).
    """

    name = "asha"

    def __init__(self, min_resource: float | str = "auto", reduction_factor: float = 4.0,
                 min_early_stopping_rate: int = 0, n_startup_runs: int = 0, n_warmup_steps: float = 0.0,
                 interval_steps: float = 0.0, confirmations: int = 1) -> None:
        if min_resource != "auto" and not (isinstance(min_resource, (int, float)) and min_resource > 0):
            raise InputError(f"min_resource must be positive or 'auto', got {min_resource!r}")
        if not reduction_factor >= 2:
            raise InputError(f"reduction_factor must be >= 2, got {reduction_factor!r}")
        if int(min_early_stopping_rate) != min_early_stopping_rate or min_early_stopping_rate < 0:
            raise InputError(f"min_early_stopping_rate must be a non-negative integer, got {min_early_stopping_rate!r}")
        self.min_resource, self.reduction_factor = min_resource, float(reduction_factor)
        self.min_early_stopping_rate = int(min_early_stopping_rate)
        super().__init__(n_startup_runs, n_warmup_steps, 0.0, interval_steps, 0.0, confirmations)

    def rungs(self, run: RunView) -> np.ndarray:
        """x of every rung below the run's budget."""
        first = AUTO_FRACTION * run.budget if self.min_resource == "auto" else float(self.min_resource)
        first *= self.reduction_factor**self.min_early_stopping_rate
        count = max(int(math.floor(math.log(run.budget / first, self.reduction_factor) + 1e-9)) + 1, 0) if first < run.budget else 0
        rungs = first * self.reduction_factor ** np.arange(count)
        return rungs[rungs < run.budget]

    def judge(self, run: RunView, sweep: SweepView) -> Decision:
        rungs = self.rungs(run)
        reached = rungs[rungs <= run.current_x]
        done = self._rung_count.get(run.name, 0)
        if reached.size <= done:
            return Decision(False, "continue", None, f"between rungs (next at x={rungs[done]:g})" if done < rungs.size else "past the last rung")
        for index in range(done, reached.size):
            self._rung_count[run.name] = index + 1
            rung = float(reached[index])
            value = _value_at_rung(run, rung)
            competing = [v for other in sweep.others(run.name) for v in [_value_at_rung(other, rung)] if np.isfinite(v)]
            competing = sorted(competing + [value])
            keep = max(int(len(competing) // self.reduction_factor) - 1, 0)
            if not value <= competing[keep]:
                return Decision(False, "unpromising", None, f"rung x={rung:g}: loss {value:.4g} not in the top {keep + 1} of {len(competing)}")
        return Decision(False, "continue", None, f"promoted past rung x={float(reached[-1]):g}")

    def reset(self) -> None:
        super().reset()
        self._rung_count: dict[str, int] = {}

    def state_dict(self) -> dict:
        return super().state_dict() | {"rungs_judged": dict(self._rung_count)}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self._rung_count = {str(k): int(v) for k, v in state.get("rungs_judged", {}).items()}


def _value_at_rung(run: RunView, rung: float) -> float:
    """Loss at the run's first logged point at or past the rung (NaN when it has not reached it)."""
    index = int(np.searchsorted(run.x, rung, side="left"))
    return float(run.loss[index]) if index < run.x.size else float("nan")
