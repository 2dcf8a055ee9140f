"""A run's final loss with its standard error: what the frontier, the report and stopping compare.

Three kinds, best first (``source``):

- ``evaluated``: the mean loss on a held-out evaluation stream at the run's last step, with the
  standard error the evaluation measured. A sweep sizes that stream so this is small (0.003 on
  the quickstart) and shares it between runs.
- ``observed``: without an evaluation, the training loss smoothed at the last step (below), with
  its standard error. The training stream never repeats data, so each step's loss is an unbiased
  draw of the population loss at that step; their noise is the minibatch's (SD ≈ 0.055 per
  512-token step on the quickstart's tiny LM), so this final is several times noisier.
- ``predicted``: a run that did not reach its end: its forecast at the planned end, with the
  forecast's predictive SD.

The smoothed training final is a straight line fitted by least squares to the last 20 % of the
steps (at least 10), read at the last step. Reading the line at the end, rather than averaging
the window, removes the first-order bias of a curve still falling; its standard error is the
fitted line's at that point, σ·√(1/n + (x_end − x̄)²/Σ(x − x̄)²) ≈ 2σ/√n for n evenly spaced points
with residual SD σ (ordinary least squares). Why
20 %: under the warmup-cosine schedules of the sweeps the LR there is within 10 % of its final
value ((1 + cos 0.8π)/2 = 0.095 of its range), so the curve is nearly straight; a longer window
would average in curvature, a shorter one more noise.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

SOURCES = ("evaluated", "observed", "predicted")
MEASURED_SOURCES = ("evaluated", "observed")  # measured at the run's end, not forecast
SMOOTHING_FRACTION = 0.2
SMOOTHING_MIN_POINTS = 10


@dataclass(frozen=True)
class RunFinal:
    """A final loss, its standard error (None when unknown), where it comes from and how it was computed."""

    loss: float
    sd: float | None
    source: str
    method: str

    @property
    def measured(self) -> bool:
        return self.source in MEASURED_SOURCES


def training_final(steps: Sequence[float], losses: Sequence[float]) -> RunFinal:
    """The smoothed training-loss final at the last step and its standard error (module docstring)."""
    x = np.asarray(steps, dtype=float)
    y = np.asarray(losses, dtype=float)
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    if y.size == 0:
        return RunFinal(math.nan, None, "observed", "no finite training loss")
    window = min(y.size, max(SMOOTHING_MIN_POINTS, math.ceil(SMOOTHING_FRACTION * y.size)))
    x, y = x[-window:] - x[-1], y[-window:]
    if window < 3 or np.ptp(x) == 0:
        sd = float(np.std(y, ddof=1) / math.sqrt(window)) if window > 1 else None
        return RunFinal(float(np.mean(y)), sd, "observed", f"mean training loss of the last {window} steps")
    slope, intercept = np.polyfit(x, y, 1)
    residual = y - (intercept + slope * x)
    sigma = math.sqrt(float(residual @ residual) / (window - 2))
    centred = x - x.mean()
    se = sigma * math.sqrt(1.0 / window + x.mean() ** 2 / float(centred @ centred))
    method = f"training loss smoothed by a straight line over the last {window} steps, read at the last step"
    return RunFinal(float(intercept), se, "observed", method)


def forecast_final(loss: float | None, sd: float | None) -> RunFinal | None:
    """A run's forecast at its planned end as a final (None without a finite forecast)."""
    if loss is None or not math.isfinite(loss):
        return None
    spread = sd if sd is not None and math.isfinite(sd) and sd >= 0 else None
    return RunFinal(float(loss), spread, "predicted", "forecast of the per-run law at the planned end")
