"""Downstream-metric prediction in two stages, FLP-style: compute → loss → metric (Chen et al. 2024).

Stage 1 fits L(C) = E + A·C^(−a) (:class:`~scaling_callback.fitting.power_law.PowerLawFit`) to the
compute frontier of the sweep (as the loss-to-loss fit does). Stage 2 maps loss to the metric with
the sigmoid link of :mod:`scaling_callback.laws.downstream`, fitted by least squares on the metric
over every point (checkpoints included: the link is a property of the loss, not of the run).
A metric that is not monotone in the loss cannot be any function of a monotone loss; for those
(``link="bnsl"``, or ``"auto"`` when the middle third of the points, ordered by loss, lies significantly
beyond both outer thirds at the 5 % level) the
metric is fitted against compute directly with a broken power law (Caballero et al. 2023).

The reported interval is predictive: a bootstrap over points (or ``groups``: runs) refits both
stages, and each draw moves the target's loss and its metric by Gaussian scatter of the size of
that resample's stage-1 and stage-2 residuals, so it covers the scatter one trained and evaluated target model
shows (seed-to-seed loss and benchmark sampling noise), not only the mean. With ~10 models the
percentiles are read at Hesterberg's expanded levels (:mod:`.small_sample`).

Example:
    >>> fit = DownstreamLaw(chance=0.25).fit(flops, loss, accuracy)
    >>> fit.predict([1e22]), fit.interval([1e22])
"""

from __future__ import annotations

import time
from typing import Any, Sequence

import numpy as np
from scipy.optimize import least_squares
from scipy.stats import spearmanr, ttest_ind

from scaling_callback.errors import InputError
from scaling_callback.fitting.broken_power import BrokenPowerLaw
from scaling_callback.fitting.inputs import positive_pair
from scaling_callback.fitting.loss_to_loss_compute import frontier
from scaling_callback.fitting.power_law import PowerLawFit
from scaling_callback.fitting.small_sample import expanded_tails
from scaling_callback.laws.downstream import SIGMOID_PARAMS, sigmoid_link, sigmoid_link_gradient

LINKS = ("auto", "sigmoid", "bnsl")
MONOTONE_P = 0.05  # test level for "not monotone in the loss" (link="auto") and for "no trend" warnings
MIN_POINTS = 5  # four sigmoid parameters, plus one
_MID_QUANTILES = (0.1, 0.5, 0.9)
_SCALE_FRACTIONS = (0.05, 0.2, 1.0)  # |scale| starts as fractions of the loss range


def metric_ceiling(metric: np.ndarray) -> float:
    """Largest value the metric can take: 1 for fractions, 100 for percentages, else unbounded."""
    top = float(np.max(metric))
    return 1.0 if top <= 1.0 else 100.0 if top <= 100.0 else np.inf


def interior_extremum_p(x: np.ndarray, y: np.ndarray) -> float:
    """One-sided p-value that y, over the middle third of x, lies beyond both outer thirds (a turn).

    A monotone function's middle third lies between its two ends; a middle third significantly
    above both (or below both) says y turns inside x's range (Welch t-test against the nearer end).
    """
    if x.size < 6:
        return 1.0
    thirds = np.array_split(y[np.argsort(x)], 3)
    if min(part.size for part in thirds) < 2:
        return 1.0
    means = [float(part.mean()) for part in thirds]
    ends = (0, 2)
    if means[1] > max(means[0], means[2]):
        nearer = max(ends, key=lambda i: means[i])
    elif means[1] < min(means[0], means[2]):
        nearer = min(ends, key=lambda i: means[i])
    else:
        return 1.0
    test = ttest_ind(thirds[1], thirds[nearer], equal_var=False)
    return float(test.pvalue / 2) if np.isfinite(test.pvalue) else 1.0


class SigmoidLink:
    """Least-squares fit of P(L) = floor + (ceiling − floor)·σ(−(L − mid)/scale); ``chance`` fixes the floor."""

    def __init__(self, chance: float | None = None, direction: int = 1) -> None:
        self.chance = chance
        self.direction = direction

    def fit(self, loss: np.ndarray, metric: np.ndarray, warm: dict[str, float] | None = None) -> "SigmoidLink":
        """Fit from a grid of (mid, |scale|) starts, or from ``warm`` parameters and the grid's centre (bootstrap refits)."""
        span = max(float(np.ptp(loss)), 1e-9)
        cap = metric_ceiling(metric)
        low_floor = 0.0 if metric.min() >= 0 else -np.inf
        top = float(metric.max())
        bottom = float(metric.min()) if self.chance is None else min(float(metric.min()), self.chance)
        lower = [low_floor, bottom, loss.min() - 5 * span, 1e-3 * span]  # noise can put the ceiling below the top point
        upper = [top, cap if np.isfinite(cap) else np.inf, loss.max() + 5 * span, 10 * span]
        if self.chance is not None:
            lower[0], upper[0] = self.chance - 1e-12, self.chance + 1e-12
        lower_arr, upper_arr = np.array(lower), np.array(upper)
        upper_arr = np.maximum(upper_arr, lower_arr + 1e-12)
        best = None
        ceiling0 = min(top + 0.1 * max(np.ptp(metric), 1e-3), upper_arr[1])
        floor0 = self.chance if self.chance is not None else float(metric.min())
        grid = [(q, f) for q in _MID_QUANTILES for f in _SCALE_FRACTIONS] if warm is None else [(0.5, 0.2)]
        starts = [[floor0, ceiling0, float(np.quantile(loss, q)), f * span] for q, f in grid]
        if warm is not None:
            starts.append([warm["floor"], warm["ceiling"], warm["mid"], abs(warm["scale"])])
        for start in starts:
            start = np.clip(start, lower_arr, upper_arr)
            result = least_squares(self._residual, start, jac=self._jacobian, bounds=(lower_arr, upper_arr),
                                   args=(loss, metric), x_scale="jac", xtol=1e-12, ftol=1e-12, gtol=1e-12, max_nfev=2000)
            if best is None or result.cost < best.cost:
                best = result
        self.params_ = dict(zip(SIGMOID_PARAMS, (float(v) for v in best.x)))
        self.params_["scale"] *= self.direction
        self.residuals_ = -best.fun
        self.converged_ = bool(best.success)
        on_bound = [n for n, v, lo, hi in zip(SIGMOID_PARAMS, best.x, lower_arr, upper_arr)
                    if n != "floor" or self.chance is None
                    if np.isfinite(lo) and abs(v - lo) <= 1e-6 * (hi - lo) or np.isfinite(hi) and abs(v - hi) <= 1e-6 * (hi - lo)]
        self.on_bound_ = on_bound
        return self

    def _signed(self, theta: np.ndarray) -> tuple[float, float, float, float]:
        return theta[0], theta[1], theta[2], self.direction * theta[3]

    def _residual(self, theta: np.ndarray, loss: np.ndarray, metric: np.ndarray) -> np.ndarray:
        return sigmoid_link(loss, *self._signed(theta)) - metric

    def _jacobian(self, theta: np.ndarray, loss: np.ndarray, metric: np.ndarray) -> np.ndarray:
        jac = sigmoid_link_gradient(loss, *self._signed(theta))
        jac[:, 3] *= self.direction
        return jac

    def predict(self, loss: Sequence[float]) -> np.ndarray:
        return sigmoid_link(np.asarray(loss, dtype=float), **self.params_)


def _unbiased_sd(residuals: np.ndarray, n_params: int) -> float:
    """Residual standard deviation with n − p degrees of freedom (0 when there are none)."""
    dof = residuals.size - n_params
    return float(np.sqrt(residuals @ residuals / dof)) if dof > 0 else 0.0


class ComputeLossStage:
    """FLP's stage 1, L(C) = E + A·C^(−a) on the compute frontier, with its bootstrap refits.

    Fitted once per sweep and shared by every metric's :class:`DownstreamLaw` (stage 1 is most of
    the cost, and sharing the resamples keeps the metrics' intervals consistent).

    Learned: ``law_`` (:class:`PowerLawFit`), ``indices_`` (the resamples' point indices),
    ``draws_`` (one law per resample, None where it failed), ``log_residuals_`` (per resample).
    """

    def __init__(self, *, n_bootstrap: int = 200, random_state: int = 0) -> None:
        self.n_bootstrap = n_bootstrap
        self.random_state = random_state

    def fit(self, compute: Sequence[float], loss: Sequence[float], groups: Sequence[Any] | None = None) -> "ComputeLossStage":
        c, l = positive_pair(compute, loss, ("compute", "loss"))
        if np.unique(c).size < MIN_POINTS:
            raise InputError(f"{np.unique(c).size} distinct compute values cannot determine the two stages (need {MIN_POINTS})")
        if self.n_bootstrap < 0:
            raise InputError(f"n_bootstrap must be >= 0, got {self.n_bootstrap!r}")
        self.compute_, self.loss_ = c, l
        self.law_, self.log_residuals_full_ = self._fit(c, l)
        labels = np.arange(c.size) if groups is None else np.unique(np.asarray(groups).astype(str), return_inverse=True)[1]
        if labels.size != c.size:
            raise InputError(f"groups has {labels.size} labels for {c.size} points")
        members = [np.flatnonzero(labels == g) for g in np.unique(labels)]
        rng = np.random.default_rng(self.random_state)
        self.indices_, self.draws_, self.log_residuals_ = [], [], []
        for _ in range(self.n_bootstrap):
            index = np.concatenate([members[i] for i in rng.integers(0, len(members), len(members))])
            law, residuals = self._fit(c[index], l[index]) if np.unique(c[index]).size >= MIN_POINTS else (None, None)
            ok = law is not None and np.isfinite(law.alpha_)
            self.indices_.append(index)
            self.draws_.append(law if ok else None)
            self.log_residuals_.append(residuals if ok else None)
        self.unit_ = "points" if groups is None else "groups"
        return self

    @staticmethod
    def _fit(c: np.ndarray, l: np.ndarray) -> tuple[PowerLawFit, np.ndarray]:
        front = frontier(c, l)
        if front.size < 4:  # too few frontier points for three parameters: every point
            front = np.arange(c.size)
        law = PowerLawFit(n_bootstrap=0).fit(c[front], l[front])
        return law, np.log(l[front]) - np.log(law.predict(c[front])) if np.isfinite(law.alpha_) else np.zeros(0)


class DownstreamLaw:
    """Predict a downstream metric at a target compute: compute → loss → metric (FLP, Chen et al. 2024).

    Args:
        link: "sigmoid" (loss → metric), "bnsl" (metric against compute), or "auto" (sigmoid unless the
            metric turns inside the loss range, see :func:`interior_extremum_p`).
        chance: the metric's chance level (e.g. 0.25 for 4-way multiple choice); fixes the sigmoid's floor.
        n_bootstrap, level, random_state: the predictive interval's resamples, coverage and seed (used when
            ``fit`` is not handed a fitted stage 1).

    Learned: ``link_`` (the link used), ``compute_law_`` (stage 1), ``params_`` (stage 2), ``status_``,
    ``warnings_``, ``choices_``, ``n_points_``.
    """

    def __init__(self, *, link: str = "auto", chance: float | None = None, n_bootstrap: int = 200, level: float = 0.9,
                 random_state: int = 0) -> None:
        self.link = link
        self.chance = chance
        self.n_bootstrap = n_bootstrap
        self.level = level
        self.random_state = random_state

    def fit(self, compute: Sequence[float], loss: Sequence[float], metric: Sequence[float],
            groups: Sequence[Any] | None = None, stage1: ComputeLossStage | None = None) -> "DownstreamLaw":
        """Fit both stages on points (compute, loss, metric); ``stage1``: a stage 1 already fitted to these compute, loss."""
        started = time.perf_counter()
        if self.link not in LINKS:
            raise InputError(f"link must be one of {', '.join(LINKS)}, got {self.link!r}")
        if not 0 < self.level < 1:
            raise InputError(f"level must be in (0, 1), got {self.level!r}")
        if stage1 is None:
            stage1 = ComputeLossStage(n_bootstrap=self.n_bootstrap, random_state=self.random_state).fit(compute, loss, groups)
        c, l = stage1.compute_, stage1.loss_
        m = np.asarray(metric, dtype=float).ravel()
        if m.size != c.size or not np.all(np.isfinite(m)):
            raise InputError(f"metric must hold {c.size} finite values")
        if self.chance is not None and not (np.isfinite(self.chance) and self.chance < m.max()):
            raise InputError(f"chance = {self.chance!r} must lie below the highest metric value {m.max():.4g}")
        self.warnings_: list[str] = []
        rho, p_value = spearmanr(l, m)
        turn_p = interior_extremum_p(l, m)
        self.link_ = self.link if self.link != "auto" else ("bnsl" if turn_p < MONOTONE_P else "sigmoid")
        if turn_p < MONOTONE_P:
            self.warnings_.append(f"the metric turns inside the loss range (middle third beyond both ends, p = {turn_p:.2g}): "
                                  "not monotone in the loss")
        elif not (np.isfinite(p_value) and p_value < MONOTONE_P):
            self.warnings_.append(f"the metric shows no trend in the loss (Spearman rho = {rho:.2f}, p = {p_value:.2g}): "
                                  "not emerged in the fitted range, or noise")
        if self.link_ == "bnsl" and m.min() <= 0:
            raise InputError("the broken-power-law link needs a positive metric")
        self._direction = 1 if not np.isfinite(rho) or rho <= 0 else -1
        self.compute_law_ = stage1.law_
        self._link = self._fit_link(c, l, m)
        self.residual_sd_ = float(np.std(m - self._link_values(self._link, c, l), ddof=1))
        if self.link_ == "sigmoid":
            self.params_ = dict(self._link.params_)
            for name in self._link.on_bound_:
                self.warnings_.append(f"sigmoid {name} = {self._link.params_[name]:.4g} sits on its bound: not determined by these points")
        else:
            self.params_ = {k: v for k, v in self._link.to_dict().items() if isinstance(v, (int, float))}
        if self.compute_law_.status_ != "ok":
            self.warnings_.append(f"compute -> loss law: {self.compute_law_.status_}")
        self.status_ = "ok" if np.isfinite(self.compute_law_.alpha_) else "failed"
        self._draws = self._bootstrap(stage1, m)
        self.n_points_ = int(c.size)
        self.choices_ = {
            "method": "FLP (Chen et al. 2024): compute -> loss -> metric",
            "stage1": "L(C) = E + A*C^-a, Huber on log residuals, fitted to the compute frontier",
            "stage2": ("P(L) = floor + (ceiling - floor)*sigmoid(-(L - mid)/scale) (Dubey et al. 2024), least squares on the metric"
                       if self.link_ == "sigmoid" else "BNSL of the metric against compute (Caballero et al. 2023), 1 break"),
            "link": self.link_,
            "link_rule": (f"auto: bnsl when the middle third (by loss) lies beyond both outer thirds, one-sided Welch p < {MONOTONE_P}"
                          if self.link == "auto" else "given"),
            "chance": self.chance, "ceiling_bound": metric_ceiling(m) if np.isfinite(metric_ceiling(m)) else None,
            "interval": f"predictive, expanded percentile (Hesterberg 2015, n - p dof) {self.level:.0%} of {len(stage1.draws_)} "
                        "bootstrap refits of both stages, "
                        "each with Gaussian target scatter: the resample's stage-1 (log loss) and stage-2 (metric) residual SD, n - p dof",
            "bootstrap_unit": stage1.unit_, "seed": stage1.random_state,
            "bootstrap_failed": len(stage1.draws_) - len(self._draws),
        }
        self.fit_seconds_ = time.perf_counter() - started
        return self

    def _fit_link(self, c: np.ndarray, l: np.ndarray, m: np.ndarray, warm: dict[str, float] | None = None):
        if self.link_ == "sigmoid":
            return SigmoidLink(self.chance, self._direction).fit(l, m, warm)
        return BrokenPowerLaw(n_breaks=1).fit(c, m)

    def _link_values(self, link, c: np.ndarray, l: np.ndarray) -> np.ndarray:
        return link.predict(l) if self.link_ == "sigmoid" else link.predict(c)

    def _bootstrap(self, stage1: ComputeLossStage, m: np.ndarray) -> list[tuple]:
        """Per resample: (stage-1 law, link, log-loss shift, metric noise) — the target's own scatter, drawn
        Gaussian with the resample's residual scatter of each stage (sum of squares over n − p: with ~10
        points, resampling the residuals themselves would cut the tails off)."""
        rng = np.random.default_rng(stage1.random_state + 1)
        draws = []
        warm = self.params_ if self.link_ == "sigmoid" else None
        for index, law, log_residuals in zip(stage1.indices_, stage1.draws_, stage1.log_residuals_):
            if law is None:
                continue
            c, l, metric = stage1.compute_[index], stage1.loss_[index], m[index]
            try:
                link = self._fit_link(c, l, metric, warm)
            except (InputError, ValueError):
                continue
            residuals = metric - self._link_values(link, c, l)
            shift = rng.normal(0.0, _unbiased_sd(log_residuals, 3))
            noise = rng.normal(0.0, _unbiased_sd(residuals, 4))
            draws.append((law, link, shift, noise))
        return draws

    def _metric(self, law: PowerLawFit, link, compute: np.ndarray, log_loss_shift: float = 0.0) -> np.ndarray:
        if self.link_ != "sigmoid":
            return link.predict(compute)
        return link.predict(law.predict(compute) * np.exp(log_loss_shift))

    def predict_loss(self, compute: Sequence[float]) -> np.ndarray:
        """Stage 1: the loss at budgets C."""
        return self.compute_law_.predict(np.asarray(compute, dtype=float))

    def predict(self, compute: Sequence[float]) -> np.ndarray:
        """The metric at budgets C."""
        return self._metric(self.compute_law_, self._link, np.asarray(compute, dtype=float))

    def interval(self, compute: Sequence[float]) -> np.ndarray:
        """Predictive interval of the metric at budgets C, shape (n, 2); NaN without bootstrap draws."""
        c = np.asarray(compute, dtype=float)
        if len(self._draws) < 2:
            return np.full((c.size, 2), np.nan)
        values = np.array([self._metric(law, link, c, shift) + noise for law, link, shift, noise in self._draws])
        return np.percentile(values, expanded_tails(self.level, self.n_points_, self._n_link_params()), axis=0).T

    def _n_link_params(self) -> int:
        if self.link_ == "sigmoid":
            return 3 if self.chance is not None else 4
        return len(self.params_)

    def to_dict(self) -> dict:
        """JSON-ready stages, status, warnings and choices."""
        def finite(value: float) -> float | None:
            return float(value) if np.isfinite(value) else None

        law = self.compute_law_
        return {"link": self.link_, "compute_law": {"E": finite(law.E_), "A": finite(law.A_), "a": finite(law.alpha_), "status": law.status_},
                "params": {k: finite(v) for k, v in self.params_.items()}, "residual_sd": self.residual_sd_,
                "status": self.status_, "warnings": list(self.warnings_), "n_points": self.n_points_,
                "n_draws": len(self._draws), "fit_seconds": self.fit_seconds_, "choices": self.choices_}
