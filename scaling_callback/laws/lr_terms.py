"""The LR-schedule quantities every per-run law needs at a set of observed points.

The loss-drop term of Luo et al. 2025 (MPL, eq. 2) and of Tissue et al. 2024 (eq. 5, written as
the same double sum) is  Σ_{k ≤ t} (η_{k−1} − η_k) · K(η_k, S_k(t), t − k): only steps where the LR
changes contribute. :func:`lr_terms` lists those (point, change) pairs once per schedule, so a law
is evaluated for any parameters with a few vectorised passes.

Smooth schedules change the LR at every step (a cosine over 22k steps gives 22k changes per point);
``max_blocks`` merges neighbouring changes of the same sign into at most that many blocks per
curve, each represented by its Δη-weighted mean η_k and S1(k−1) (a midpoint quadrature). Blocks
are cut by equal |Δη| mass, so a sharp drop keeps its own steps, and never straddle an observed
point. ``max_blocks=None`` keeps every change step (exact).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from scaling_callback.laws.schedule import Schedule

_MIN_LR_FRACTION = 1e-12  # η_k = 0 would make η_k^(−γ) infinite; clamp at this fraction of the peak


@dataclass(frozen=True)
class LRTerms:
    """Schedule quantities at observed points, concatenated over one or more curves.

    Per point: ``s1`` = S1(t), ``warmup_sum`` = S_W, ``warmup_steps``, ``lr`` = η_t, ``peak_lr`` = η_0.
    Per change block: ``block_lr`` = η_k and its log. Per (point, block) pair with k ≤ t, sorted
    by point: ``pair_point``, ``pair_block``, ``pair_dlr`` = Σ(η_{k−1} − η_k),
    ``pair_sum`` = S_k(t) = Σ_{τ=k..t} η_τ, ``pair_lag`` = t − k.
    """

    s1: np.ndarray
    warmup_sum: np.ndarray
    warmup_steps: np.ndarray
    lr: np.ndarray
    peak_lr: np.ndarray
    block_lr: np.ndarray
    block_log_lr: np.ndarray
    pair_point: np.ndarray
    pair_block: np.ndarray
    pair_dlr: np.ndarray
    pair_sum: np.ndarray
    pair_lag: np.ndarray

    def __post_init__(self) -> None:
        counts = np.bincount(self.pair_point, minlength=self.n_points)
        object.__setattr__(self, "_starts", np.concatenate([[0], np.cumsum(counts)[:-1]]))
        object.__setattr__(self, "_has_pairs", counts > 0)

    @property
    def n_points(self) -> int:
        return int(self.s1.size)

    @property
    def pair_lr(self) -> np.ndarray:
        """η_k of every pair."""
        return self.block_lr[self.pair_block]

    def subset(self, keep: np.ndarray) -> "LRTerms":
        """The terms of the points where boolean ``keep`` is true (pairs re-indexed)."""
        keep = np.asarray(keep, dtype=bool)
        new_index = np.cumsum(keep) - 1
        pair_keep = keep[self.pair_point]
        per_point = ("s1", "warmup_sum", "warmup_steps", "lr", "peak_lr")
        per_pair = ("pair_block", "pair_dlr", "pair_sum", "pair_lag")
        return LRTerms(
            **{name: getattr(self, name)[keep] for name in per_point},
            block_lr=self.block_lr,
            block_log_lr=self.block_log_lr,
            pair_point=new_index[self.pair_point[pair_keep]],
            **{name: getattr(self, name)[pair_keep] for name in per_pair},
        )

    def point_sums(self, pair_values: np.ndarray) -> np.ndarray:
        """Sum per-pair values (last axis; pairs are contiguous per point) into per-point totals."""
        out = np.zeros(pair_values.shape[:-1] + (self.n_points,))
        if self.pair_point.size:
            sums = np.add.reduceat(pair_values, self._starts[self._has_pairs], axis=-1)
            out[..., self._has_pairs] = sums
        return out


def lr_terms(schedules: Sequence[Schedule], steps: Sequence[np.ndarray], max_blocks: int | None = None) -> LRTerms:
    """Precompute :class:`LRTerms` for absolute ``steps`` observed on each schedule."""
    parts = [_one_curve(schedule, np.asarray(s), max_blocks) for schedule, s in zip(schedules, steps, strict=True)]
    point_offsets = np.cumsum([0] + [p["s1"].size for p in parts[:-1]])
    block_offsets = np.cumsum([0] + [p["block_lr"].size for p in parts[:-1]])
    shifted = {"pair_point": point_offsets, "pair_block": block_offsets}
    fields = {name: np.concatenate([p[name] for p in parts]) for name in parts[0] if name not in shifted}
    for name, offsets in shifted.items():
        fields[name] = np.concatenate([p[name] + off for p, off in zip(parts, offsets)]).astype(np.int64)
    fields["block_log_lr"] = np.log(fields["block_lr"])
    return LRTerms(**fields)


def _one_curve(schedule: Schedule, steps: np.ndarray, max_blocks: int | None) -> dict[str, np.ndarray]:
    t = schedule.post_warmup_steps(steps)
    lrs = schedule.lrs
    cum = schedule.lr_sum  # cum[j] = S1(j)
    previous = np.concatenate([[schedule.peak_lr], lrs[:-1]])
    drops = previous - lrs  # drops[k-1] = η_{k−1} − η_k
    k = np.flatnonzero(drops != 0) + 1
    dk = drops[k - 1]
    lr_k = lrs[k - 1]
    sum_before = cum[k - 1]  # S1(k−1)
    eval_sorted = np.unique(t)
    block_start = _block_starts(k, dk, eval_sorted, max_blocks)
    if block_start.size:
        mass = np.add.reduceat(dk, block_start)
        weight = np.divide(1.0, mass, out=np.zeros_like(mass), where=mass != 0)
        lr_k = np.add.reduceat(dk * lr_k, block_start) * weight
        sum_before = np.add.reduceat(dk * sum_before, block_start) * weight
        k_mean = np.add.reduceat(dk * k, block_start) * weight
        last_k = np.append(k[block_start[1:] - 1], k[-1])
    else:
        mass = lr_k = sum_before = k_mean = last_k = np.zeros(0)
    n_blocks = np.searchsorted(last_k, t, side="right")  # blocks entirely at or before each point
    pair_point = np.repeat(np.arange(t.size), n_blocks)
    pair_block = _ranges(n_blocks)
    pair_t = t[pair_point]
    floor = _MIN_LR_FRACTION * schedule.peak_lr
    return {
        "block_lr": np.maximum(lr_k, floor),
        "s1": cum[t],
        "warmup_sum": np.full(t.size, schedule.warmup_sum),
        "warmup_steps": np.full(t.size, float(schedule.warmup_steps)),
        "lr": np.where(t > 0, lrs[np.maximum(t, 1) - 1], schedule.peak_lr),
        "peak_lr": np.full(t.size, schedule.peak_lr),
        "pair_point": pair_point,
        "pair_block": pair_block,
        "pair_dlr": mass[pair_block],
        "pair_sum": np.maximum(cum[pair_t] - sum_before[pair_block], 0.0),
        "pair_lag": np.maximum(pair_t - k_mean[pair_block], 0.0),
    }


def _block_starts(k: np.ndarray, dk: np.ndarray, eval_sorted: np.ndarray, max_blocks: int | None) -> np.ndarray:
    """Indices into the change list where a new block begins."""
    if k.size == 0:
        return np.zeros(0, dtype=np.int64)
    if max_blocks is None or k.size <= max_blocks:
        return np.arange(k.size)
    segment = np.searchsorted(eval_sorted, k, side="left")  # changes between two observed points
    size = np.abs(dk)
    position = np.cumsum(size) - 0.5 * size
    mass_bin = np.floor(position / (position[-1] + 0.5 * size[-1]) * max_blocks)
    key_changes = (np.diff(segment) != 0) | (np.diff(mass_bin) != 0) | (np.diff(np.sign(dk)) != 0)
    return np.concatenate([[0], np.flatnonzero(key_changes) + 1])


def _ranges(lengths: np.ndarray) -> np.ndarray:
    """Concatenation of arange(n) for each n in ``lengths``."""
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    starts = np.repeat(np.cumsum(lengths) - lengths, lengths)
    return np.arange(total) - starts
