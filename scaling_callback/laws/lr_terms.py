"""The LR-schedule quantities every per-run law needs at a set of observed points.

The loss-drop term of Luo et al. 2025 (MPL, eq. 2) and of Tissue et al. 2024 (eq. 5, written as
the same double sum) is  Σ_{k ≤ t} (η_{k−1} − η_k) · K(η_k, S_k(t), t − k): only steps where the LR
changes contribute. :func:`lr_terms` lists those (point, change) pairs once per schedule, so a law
is evaluated for any parameters with a few vectorised passes.

Smooth schedules change the LR at every step (a cosine over 22k steps gives 22k changes per point);
``max_blocks`` merges neighbouring changes of the same sign into at most that many blocks per
curve, each represented by its Δη-weighted mean η_k and S1(k−1) (a midpoint quadrature). Blocks
are cut by equal |Δη| mass, so a sharp drop keeps its own steps, and never straddle an observed
point. ``max_blocks=None`` keeps every change step (exact) up to the limits below.

Cost is bounded by the information, not the step count: the schedule is a list of linear pieces
(:class:`Schedule`), the changes are runs of equal drops (one per piece jump, one per sloped piece)
and a block's Δη-weighted means are closed-form sums over the sub-runs it holds. Memory and time are
O(P + B + N·B) for P pieces, N points and B ≤ max_blocks + N + (sign changes) blocks, so a 1e8-step
schedule logged at a few hundred rows costs what a 1e4-step one does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from scaling_callback.laws.schedule import Schedule

_MIN_LR_FRACTION = 1e-12  # η_k = 0 would make η_k^(−γ) infinite; clamp at this fraction of the peak
# Exact sums (``max_blocks=None``) keep every change step while there are at most EXACT_BLOCKS of
# them and points × changes stays under EXACT_PAIR_BUDGET (point, block) pairs; beyond that the
# changes are blocked (equal |Δη| mass, never across a point) to min(EXACT_BLOCKS, budget / points).
# A block costs ~15 float64 temporaries here and a pair ~120 bytes through an MPL loss-and-Jacobian
# pass (measured with tracemalloc, benchmarks/bench_fuzz.py), so the two bound an exact pass near
# 16 MB + 250 MB whatever the step count; 2^16 midpoint blocks put a smooth decay's quadrature error
# within ~1e-6 of its drop (measured against every-step sums on a 1e6-step linear decay).
EXACT_BLOCKS = 2**16
EXACT_PAIR_BUDGET = 2**21


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

    def subset(self, keep: np.ndarray) -> LRTerms:
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
    eval_sorted = np.unique(t)
    first_k, count, drop = schedule.change_runs()
    limit = (
        max_blocks
        if max_blocks is not None
        else max(min(EXACT_BLOCKS, EXACT_PAIR_BUDGET // max(eval_sorted.size, 1)), 1)
    )
    if int(count.sum()) <= limit:  # every change step is its own block
        start, n, d = (
            _ranges(count) + np.repeat(first_k, count),
            np.ones(int(count.sum()), dtype=np.int64),
            np.repeat(drop, count),
        )
        block_start = np.arange(start.size)
    else:
        start, n, d, block_start = _blocked_runs(first_k, count, drop, eval_sorted, limit)
    # closed forms over a sub-run k = s..s+n−1 of equal drops d, where η_k = η_s − d·(k − s)
    lr_s = schedule.lr_at(start)
    half = (n - 1) / 2.0
    mean_lr = lr_s - d * half
    mean_sum_before = schedule.lr_sum_at(start - 1) + lr_s * half - d * (n - 1) * (n - 2) / 6.0  # mean S1(k−1)
    mean_k = start + half
    if block_start.size:
        weight_run = d * n
        mass = np.add.reduceat(weight_run, block_start)
        # weights relative to each block's largest sub-run (same sign in a block, so |relative| <= 1 and
        # the total is at least 1 in size): means stay finite for subnormal drops, whose reciprocal overflows
        owner = np.repeat(np.arange(block_start.size), np.diff(np.append(block_start, start.size)))
        relative = weight_run / np.maximum.reduceat(np.abs(weight_run), block_start)[owner]
        total = np.add.reduceat(relative, block_start)
        lr_k = np.add.reduceat(relative * mean_lr, block_start) / total
        sum_before = np.add.reduceat(relative * mean_sum_before, block_start) / total
        k_mean = np.add.reduceat(relative * mean_k, block_start) / total
        last = np.append(block_start[1:] - 1, start.size - 1)
        last_k = start[last] + n[last] - 1
    else:
        mass = lr_k = sum_before = k_mean = last_k = np.zeros(0)
    n_blocks = np.searchsorted(last_k, t, side="right")  # blocks entirely at or before each point
    pair_point = np.repeat(np.arange(t.size), n_blocks)
    pair_block = _ranges(n_blocks)
    s1 = schedule.lr_sum_at(t)
    floor = _MIN_LR_FRACTION * schedule.peak_lr
    return {
        "block_lr": np.maximum(lr_k, floor),
        "s1": s1,
        "warmup_sum": np.full(t.size, schedule.warmup_sum),
        "warmup_steps": np.full(t.size, float(schedule.warmup_steps)),
        "lr": schedule.lr_at(t),
        "peak_lr": np.full(t.size, schedule.peak_lr),
        "pair_point": pair_point,
        "pair_block": pair_block,
        "pair_dlr": mass[pair_block],
        "pair_sum": np.maximum(s1[pair_point] - sum_before[pair_block], 0.0),
        "pair_lag": np.maximum(t[pair_point] - k_mean[pair_block], 0.0),
    }


def _blocked_runs(
    first_k: np.ndarray, count: np.ndarray, drop: np.ndarray, eval_sorted: np.ndarray, max_blocks: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Cut runs of equal drops into sub-runs, then group sub-runs into blocks of equal |Δη| mass.

    A sub-run never holds changes on both sides of an observed point nor of a mass-bin edge, so
    blocks (a new one wherever the point segment, the mass bin or the sign changes) are found
    without listing the change steps. Returns sub-run ``(start, n, drop)`` and the block starts.
    """
    size = np.abs(drop)
    mass_before = np.cumsum(size * count) - size * count
    total = float(np.sum(size * count))
    last_k = first_k + count - 1
    cuts = [first_k]
    # observed point t inside a run: the changes k ≤ t and k ≥ t + 1 go to different blocks
    run = np.searchsorted(first_k, eval_sorted + 1, side="right") - 1
    inside = (run >= 0) & (eval_sorted >= first_k[np.maximum(run, 0)]) & (eval_sorted + 1 <= last_k[np.maximum(run, 0)])
    cuts.append(eval_sorted[inside] + 1)
    # mass-bin edge b·total/B inside a run: the first change whose mid-position passes it
    edges = np.arange(1, max_blocks) * (total / max_blocks)
    run = np.clip(np.searchsorted(mass_before, edges, side="right") - 1, 0, first_k.size - 1)
    offset = np.ceil((edges - mass_before[run]) / size[run] - 0.5).astype(np.int64)
    inside = (offset >= 1) & (offset <= count[run] - 1)
    cuts.append(first_k[run[inside]] + offset[inside])
    start = np.unique(np.concatenate(cuts))
    run = np.searchsorted(first_k, start, side="right") - 1
    stop = np.minimum(np.append(start[1:], np.iinfo(np.int64).max), last_k[run] + 1)
    n, d = stop - start, drop[run]
    position = mass_before[run] + size[run] * ((start - first_k[run]) + 0.5)
    mass_bin = np.floor(position / total * max_blocks)
    segment = np.searchsorted(eval_sorted, start, side="left")
    key_changes = (np.diff(segment) != 0) | (np.diff(mass_bin) != 0) | (np.diff(np.sign(d)) != 0)
    return start, n, d, np.concatenate([[0], np.flatnonzero(key_changes) + 1])


def _ranges(lengths: np.ndarray) -> np.ndarray:
    """Concatenation of arange(n) for each n in ``lengths``."""
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    starts = np.repeat(np.cumsum(lengths) - lengths, lengths)
    return np.arange(total) - starts
