"""The median rule (Optuna's ``MedianPruner``; Golovin et al. 2017, Google Vizier's median stopping rule).

At a check at resource x, a run is unpromising when its best loss so far is worse than the median
of the finished runs' losses at the same x (linearly interpolated between their logged points;
only finished runs that logged on both sides of x count). Equal x, not equal planned compute:
this is the baseline the law policy is measured against (docs/reference.md §4). NaN losses are ignored.
Optuna's defaults: 5 finished runs before any stop, no warm-up, a check at every report.
"""

from __future__ import annotations

import numpy as np

from scaling_callback.errors import InputError
from scaling_callback.stopping.policy import StoppingPolicy
from scaling_callback.stopping.views import Decision, RunView, SweepView


class MedianPolicy(StoppingPolicy):
    """Stop a run whose best loss so far is worse than the finished runs' median at the same x.

    Args:
        n_min_runs: finished runs with a value at x needed for a verdict.
        the rest: the gating of :class:`StoppingPolicy` (defaults as Optuna's ``MedianPruner``).
    """

    name = "median"

    def __init__(self, n_startup_runs: int = 5, n_warmup_steps: float = 0.0, warmup_fraction: float = 0.0,
                 interval_steps: float = 1.0, interval_fraction: float = 0.0, confirmations: int = 1,
                 n_min_runs: int = 1) -> None:
        if int(n_min_runs) != n_min_runs or n_min_runs < 1:
            raise InputError(f"n_min_runs must be a positive integer, got {n_min_runs!r}")
        self.n_min_runs = int(n_min_runs)
        super().__init__(n_startup_runs, n_warmup_steps, warmup_fraction, interval_steps, interval_fraction, confirmations)

    def judge(self, run: RunView, sweep: SweepView) -> Decision:
        x = run.current_x
        finite = run.loss[np.isfinite(run.loss)]
        if finite.size == 0:
            return Decision(False, "continue", None, "no finite loss yet")
        best = float(finite.min())
        values = [value for other in sweep.others(run.name) if other.status == "finished"
                  for value in [_interpolated(other, x)] if np.isfinite(value)]
        if len(values) < self.n_min_runs:
            return Decision(False, "continue", None, f"{len(values)} finished runs reach x={x:g}, need {self.n_min_runs}")
        median = float(np.median(values))
        if best > median:
            return Decision(False, "unpromising", None, f"best loss {best:.4g} > median {median:.4g} of {len(values)} finished runs at x={x:g}")
        return Decision(False, "continue", None, f"best loss {best:.4g} <= median {median:.4g} at x={x:g}")


def _interpolated(run: RunView, x: float) -> float:
    """The run's loss at x, linear between logged points; NaN outside its logged range."""
    ok = np.isfinite(run.loss)
    xs, losses = run.x[ok], run.loss[ok]
    if xs.size == 0 or x < xs[0] or x > xs[-1]:
        return float("nan")
    return float(np.interp(x, xs, losses))
