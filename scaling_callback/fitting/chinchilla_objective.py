"""The approach-3 objective in a form every refit shares: parameter variants, Huber objective, grid scoring.

Hoffmann et al. 2022, eq. (3): minimise Σ Huber_δ(LSE(a − α·log N, b − β·log D, e) − log L) over
θ = (a, b, e, α, β). Variants (α = β, fixed E) are linear maps θ = M·free + offset, so one
objective and one gradient serve all of them, and module-level functions keep it picklable for
bootstrap worker processes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from scaling_callback.errors import InputError
from scaling_callback.fitting.huber import huber
from scaling_callback.laws.chinchilla import THETA_NAMES, log_loss_lse

_SCORE_BLOCK = 2_000_000  # grid rows x points scored at once (bounds memory)


@dataclass(frozen=True)
class Variant:
    """Linear map from the optimiser's free vector to θ = (a, b, e, α, β): θ = matrix @ free + offset.

    The free vector is centred: its first two entries are a_c = a − α·x̄ and b_c = b − β·ȳ with
    x̄, ȳ the mean log N and log D of the fit. That removes the near-perfect a–α and b–β
    correlation (about 0.999 uncentred) and halves the quasi-Newton iterations; θ itself is
    unchanged. The other entries are e (unless E is fixed), α, and β (unless tied to α).
    """

    matrix: np.ndarray
    offset: np.ndarray
    source_columns: tuple[int, ...]
    label: str

    @staticmethod
    def build(tie_exponents: bool, fixed_E: float | None, center: tuple[float, float] = (0.0, 0.0)) -> Variant:
        """The free-fit, α = β, fixed-E or both variants, centred at (x̄, ȳ)."""
        rows = {"a": 0, "b": 1}
        columns = [0, 1]
        if fixed_E is None:
            rows["e"] = len(columns)
            columns.append(2)
        rows["alpha"] = len(columns)
        columns.append(3)
        rows["beta"] = rows["alpha"] if tie_exponents else len(columns)
        if not tie_exponents:
            columns.append(4)
        matrix = np.zeros((5, len(columns)))
        for name, free_index in rows.items():
            matrix[THETA_NAMES.index(name), free_index] = 1.0
        matrix[0, rows["alpha"]] += center[0]
        matrix[1, rows["beta"]] += center[1]
        offset = np.zeros(5)
        if fixed_E is not None:
            offset[THETA_NAMES.index("e")] = np.log(fixed_E)
        parts = (["alpha = beta"] if tie_exponents else []) + (
            [f"fixed E = {fixed_E:g}"] if fixed_E is not None else []
        )
        return Variant(matrix, offset, tuple(columns), ", ".join(parts) or "free")

    def bounds(self) -> list[tuple[float | None, float | None]]:
        """Optimizer bounds of the free vector: α, β ≥ 0 (a loss that grows with N or D is outside the law)."""
        exponents = (THETA_NAMES.index("alpha"), THETA_NAMES.index("beta"))
        return [(0.0, None) if column in exponents else (None, None) for column in self.source_columns]

    def theta(self, free: np.ndarray) -> np.ndarray:
        """Full θ = (a, b, e, α, β) of a free vector (or of each row of a stack)."""
        return np.asarray(free) @ self.matrix.T + self.offset

    def free_from_theta(self, theta: np.ndarray) -> np.ndarray:
        """Free (centred) vector of θ, or of each row of a stack of θ; inverse of :meth:`theta` on the variant."""
        selection = self.matrix[list(self.source_columns)]  # square: the free → selected-θ map
        selected = np.asarray(theta)[..., list(self.source_columns)] - self.offset[list(self.source_columns)]
        return np.linalg.solve(selection, np.atleast_2d(selected).T).T.reshape(np.shape(selected))

    @property
    def n_free(self) -> int:
        return self.matrix.shape[1]


def huber_objective(
    free: np.ndarray,
    log_n: np.ndarray,
    log_d: np.ndarray,
    log_loss: np.ndarray,
    variant: Variant,
    delta: float | np.ndarray,
    weights: np.ndarray | None = None,
) -> tuple[float, np.ndarray]:
    """Summed (optionally weighted) Huber loss of log-loss residuals and its analytic gradient in the free parameters.

    ``delta`` may be one threshold per point (see :func:`standardising_weights`).
    """
    prediction, gradient = log_loss_lse(variant.theta(free), log_n, log_d)
    value, psi = huber(prediction - log_loss, delta, weights)
    return value, (psi @ gradient) @ variant.matrix


def score_starts(
    free_starts: np.ndarray,
    log_n: np.ndarray,
    log_d: np.ndarray,
    log_loss: np.ndarray,
    variant: Variant,
    delta: float | np.ndarray,
    weights: np.ndarray | None = None,
) -> np.ndarray:
    """Objective at every start, vectorised (the per-point Huber value is ψ·r − ψ²/2, times the point's weight)."""
    weights = np.ones(log_n.size) if weights is None else weights
    scores = np.empty(len(free_starts))
    block = max(1, _SCORE_BLOCK // max(1, log_n.size))
    for first in range(0, len(free_starts), block):
        thetas = variant.theta(free_starts[first : first + block])
        with np.errstate(all="ignore"):
            prediction, _ = log_loss_lse(thetas, log_n, log_d, with_gradient=False)
            residual = prediction - log_loss
            _, psi = huber(residual, delta)
            scores[first : first + block] = (psi * residual - 0.5 * psi * psi) @ weights
    return scores


def standardising_weights(
    loss: np.ndarray, loss_sd: np.ndarray | None, delta: float
) -> tuple[np.ndarray, np.ndarray, float | None]:
    """Per-point Huber weights and thresholds that divide each log residual by its point's relative SD.

    A point of log-loss SD σ_i contributes ρ_δ(r_i·σ_ref/σ_i) = s_i²·ρ_(δ/s_i)(r_i) with s_i = σ_ref/σ_i
    (so the summed-Huber machinery takes weights s_i² and thresholds δ/s_i), σ_ref the median σ_i:
    a point of median precision counts as an unweighted one and δ keeps its meaning, a point twice
    as precise counts four times as much in the quadratic range (weighted least squares) and twice
    in the linear one. Returns (weights, thresholds, σ_ref); without SDs, ones, δ and None.
    """
    if loss_sd is None:
        return np.ones(loss.size), np.full(loss.size, float(delta)), None
    sd_log = loss_sd / loss
    reference = float(np.median(sd_log))
    scale = reference / sd_log
    return scale**2, delta / scale, reference


def misfit_variance(residuals: np.ndarray, sd_log: np.ndarray, n_free: int) -> float:
    """The law's own misfit as an extra log-loss variance τ² shared by every point (DerSimonian & Laird 1986).

    With Q = Σ r_i²/σ_i² over the k points' log residuals, τ² = max(0, (Q − (k − p)) / (Σw − Σw²/Σw)),
    w_i = 1/σ_i², p free parameters: zero when the residuals are as small as the points' SDs say, else
    the variance the law leaves unexplained. A fit weighting each point by 1/(σ_i² + τ²) then trusts a
    precise point only as far as the law can follow it: L(N, D) = E + A/N^α + B/D^β is an approximation,
    and weights far more unequal than the misfit would pull its exponents toward the precise points.
    """
    w = 1.0 / sd_log**2
    q = float(np.sum(w * residuals**2))
    spread = float(w.sum() - np.sum(w**2) / w.sum())
    if spread <= 0:
        return 0.0
    return max(0.0, (q - (residuals.size - n_free)) / spread)


def validate_points(
    params: Sequence[float],
    tokens: Sequence[float] | None,
    loss: Sequence[float],
    flops: Sequence[float] | None,
    loss_sd: Sequence[float] | None = None,
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Arrays of N, D, loss, C and loss SD after checking lengths, finiteness and positivity (InputError otherwise)."""
    if tokens is None and flops is None:
        raise InputError("need tokens or flops for every point (neither was given)")
    named = {"params": params, "tokens": tokens, "loss": loss, "flops": flops, "loss_sd": loss_sd}
    arrays = {}
    for name, values in named.items():
        if values is None:
            arrays[name] = None
            continue
        try:
            array = np.asarray(values, dtype=float).ravel()
        except (TypeError, ValueError) as error:
            raise InputError(f"{name} must be numeric ({error})") from None
        bad = np.flatnonzero(~np.isfinite(array) | (array <= 0))
        if bad.size:
            raise InputError(
                f"{name} must be finite and positive; point {bad[0]} has {name} = {float(array[bad[0]])!r}"
            )
        arrays[name] = array
    sizes = {name: array.size for name, array in arrays.items() if array is not None}
    if len(set(sizes.values())) != 1:
        raise InputError(f"columns differ in length: {sizes}")
    return arrays["params"], arrays["tokens"], arrays["loss"], arrays["flops"], arrays["loss_sd"]
