"""Bootstrap percentile intervals for small samples: Hesterberg's expanded percentile interval.

Percentile intervals from a case bootstrap of n points are too narrow for small n (they use normal
quantiles and the plug-in spread, which is biased low by about (n − p)/n for p fitted parameters).
Hesterberg (2015, "What teachers should know about the bootstrap", §4.3) widens them by reading the
percentiles at α′ with z_{α′/2} = √(n/(n − p)) · t_{α/2, n − p}; here p counts the fitted parameters
(Hesterberg's case, the mean, has p = 1).
"""

from __future__ import annotations

import numpy as np
from scipy.stats import norm, t


def expanded_tails(level: float, n: int, n_params: int) -> tuple[float, float]:
    """Lower and upper percentiles (0–100) to read from bootstrap draws for a ``level`` interval."""
    dof = n - n_params
    if dof < 1:
        return 0.0, 100.0
    z = np.sqrt(n / dof) * t.ppf(0.5 + level / 2, dof)
    tail = 100.0 * float(norm.sf(z))
    return tail, 100.0 - tail
