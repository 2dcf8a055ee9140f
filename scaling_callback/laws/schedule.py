"""Learning-rate schedules as the per-run laws see them.

Convention of Luo et al. 2025 (MPL, §3): optimizer steps 1..W are warmup and enter the laws only
through their LR sum S_W; t = 1 is the first post-warmup step and η_0 is the peak LR. A step
number elsewhere in this package is the *absolute* optimizer step (warmup included), as Lightning's
``global_step`` and logged CSVs count it: t = step − W.
"""

from __future__ import annotations

import numpy as np

from scaling_callback.errors import InputError


# A piece is linear when rebuilding it from its ends reproduces every LR to this fraction of the
# largest LR: 64 float64 ulps, so linspace-built decays (which differ from a line by rounding) merge.
_LINEAR_TOLERANCE = 64 * np.finfo(float).eps
_CHUNK = 2**20  # steps examined at once when splitting per-step LRs into pieces (bounds temporaries)


class Schedule:
    """Post-warmup LRs η_1..η_T as contiguous linear pieces, the peak LR η_0 and the warmup sum S_W.

    ``Schedule(lrs, peak_lr, warmup_sum, warmup_steps)`` takes per-step LRs (``lrs[t-1]`` is η_t)
    and stores them as pieces; :meth:`from_pieces` and :meth:`from_logged` never build a per-step
    array, so a 1e8-step schedule logged at a few hundred rows costs memory in its rows, not its
    steps. Piece j covers t = ``piece_start[j]`` .. ``piece_start[j+1] − 1`` with
    η_t = ``piece_value[j]`` + ``piece_slope[j]``·(t − ``piece_start[j]``).
    """

    def __init__(self, lrs: np.ndarray, peak_lr: float, warmup_sum: float, warmup_steps: int = 0) -> None:
        lrs = np.asarray(lrs, dtype=float)
        if lrs.ndim != 1:
            raise InputError(f"schedule LRs must be one-dimensional, got shape {lrs.shape}")
        if not np.all(np.isfinite(lrs)) or np.any(lrs < 0):
            raise InputError("schedule LRs must be finite and non-negative")
        starts, values, slopes = _linear_pieces(lrs)
        self._set(starts, values, slopes, lrs.size, peak_lr, warmup_sum, warmup_steps)

    @classmethod
    def from_pieces(
        cls, starts: np.ndarray, values: np.ndarray, slopes: np.ndarray, n_steps: int,
        peak_lr: float, warmup_sum: float, warmup_steps: int = 0,
    ) -> "Schedule":
        """A schedule of ``n_steps`` post-warmup steps given as linear pieces (see the class docstring)."""
        self = cls.__new__(cls)
        starts = np.asarray(starts, dtype=np.int64)
        values, slopes = np.asarray(values, dtype=float), np.asarray(slopes, dtype=float)
        if not (starts.ndim == values.ndim == slopes.ndim == 1 and starts.size == values.size == slopes.size):
            raise InputError("schedule pieces need matching one-dimensional starts, values and slopes")
        if n_steps > 0 and (starts.size == 0 or starts[0] != 1 or np.any(np.diff(starts) <= 0) or starts[-1] > n_steps):
            raise InputError(f"schedule pieces must start at step 1 and increase within 1..{n_steps}")
        ends = np.append(starts[1:], n_steps + 1) - 1 if starts.size else starts
        last = values + slopes * (ends - starts)
        if not (np.all(np.isfinite(values)) and np.all(np.isfinite(last))) or np.any(values < 0) or np.any(last < 0):
            raise InputError("schedule LRs must be finite and non-negative")
        self._set(starts, values, slopes, int(n_steps), peak_lr, warmup_sum, warmup_steps)
        return self

    def _set(self, starts, values, slopes, n_steps, peak_lr, warmup_sum, warmup_steps) -> None:
        if not (np.isfinite(peak_lr) and peak_lr > 0):
            raise InputError(f"peak LR must be positive, got {peak_lr!r}")
        if not (np.isfinite(warmup_sum) and warmup_sum >= 0):
            raise InputError(f"warmup LR sum S_W must be non-negative, got {warmup_sum!r}")
        if warmup_steps < 0:
            raise InputError(f"warmup steps must be non-negative, got {warmup_steps!r}")
        if n_steps < 0:
            raise InputError(f"a schedule cannot have {n_steps} steps")
        self.piece_start, self.piece_value, self.piece_slope = starts, values, slopes
        self.n_steps = int(n_steps)
        self.peak_lr, self.warmup_sum, self.warmup_steps = float(peak_lr), float(warmup_sum), int(warmup_steps)
        lengths = np.append(starts[1:], self.n_steps + 1) - starts
        piece_sums = lengths * values + slopes * lengths * (lengths - 1) / 2.0
        self._sum_before = np.concatenate([[0.0], np.cumsum(piece_sums)])  # S1 at the end of each piece

    def __repr__(self) -> str:
        return (f"Schedule({self.n_steps} steps in {self.piece_start.size} linear pieces, peak_lr={self.peak_lr!r}, "
                f"warmup_sum={self.warmup_sum!r}, warmup_steps={self.warmup_steps})")

    @property
    def n_pieces(self) -> int:
        """Number of linear pieces: the schedule's size in memory."""
        return int(self.piece_start.size)

    def _piece_of(self, t: np.ndarray) -> np.ndarray:
        return np.clip(np.searchsorted(self.piece_start, t, side="right") - 1, 0, max(self.n_pieces - 1, 0))

    def lr_at(self, t: np.ndarray) -> np.ndarray:
        """η_t at post-warmup steps ``t`` (1..T; t = 0 gives the peak η_0)."""
        t = np.asarray(t, dtype=np.int64)
        if self.n_pieces == 0:
            return np.full(t.shape, self.peak_lr)
        j = self._piece_of(t)
        return np.where(t > 0, self.piece_value[j] + self.piece_slope[j] * (t - self.piece_start[j]), self.peak_lr)

    def lr_sum_at(self, t: np.ndarray) -> np.ndarray:
        """S1(t) = η_1 + … + η_t at post-warmup steps ``t`` (0..T), in closed form per piece."""
        t = np.asarray(t, dtype=np.int64)
        if self.n_pieces == 0:
            return np.zeros(t.shape)
        j = self._piece_of(t)
        n = np.maximum(t - self.piece_start[j] + 1, 0).astype(float)
        return np.where(t > 0, self._sum_before[j] + n * self.piece_value[j] + self.piece_slope[j] * n * (n - 1) / 2.0, 0.0)

    @property
    def lrs(self) -> np.ndarray:
        """Per-step LRs η_1..η_T, materialised (O(T) memory: 8 bytes a step, twice that while built)."""
        lengths = np.append(self.piece_start[1:], self.n_steps + 1) - self.piece_start
        out = np.repeat(self.piece_value, lengths)
        if np.any(self.piece_slope != 0):
            offset = np.arange(1, self.n_steps + 1, dtype=float)
            offset -= np.repeat(self.piece_start.astype(float), lengths)
            offset *= np.repeat(self.piece_slope, lengths)
            out += offset
        return out

    @property
    def final_lr_sum(self) -> float:
        """S1(T), the sum of every post-warmup LR, in O(1)."""
        return float(self._sum_before[-1])

    @property
    def total_steps(self) -> int:
        """Absolute step of the schedule's last step (warmup included)."""
        return self.warmup_steps + self.n_steps

    @property
    def lr_sum(self) -> np.ndarray:
        """S1(t) for t = 0..T (post-warmup sums; index 0 is 0), materialised (O(T) memory)."""
        out = np.zeros(self.n_steps + 1)
        np.cumsum(self.lrs, out=out[1:])
        return out

    def decrease_until(self, steps: np.ndarray | int) -> np.ndarray:
        """LR decreases summed (rises do not count) up to absolute ``steps``, as a fraction of the peak LR.

        What identifies a drop term: the MPL's loss drop is B times LR decreases (Luo et al. 2025, eq. 2).
        From the schedule's pieces (:meth:`change_runs`), so its cost does not grow with the step count.
        """
        t = np.clip(np.asarray(steps, dtype=np.int64) - self.warmup_steps, 0, self.n_steps)
        first_k, counts, drops = self.change_runs()
        falling = drops > 0
        first_k, counts, drops = first_k[falling], counts[falling], drops[falling]
        seen = np.clip(t[..., None] - first_k + 1, 0, counts)  # steps of each run at or before t
        return (seen * drops).sum(axis=-1) / self.peak_lr

    def truncated(self, total_steps: int) -> "Schedule":
        """The same schedule ending at absolute step ``total_steps``."""
        n = int(np.clip(total_steps - self.warmup_steps, 0, self.n_steps))
        keep = self.piece_start <= n
        return Schedule.from_pieces(self.piece_start[keep], self.piece_value[keep], self.piece_slope[keep], n,
                                    self.peak_lr, self.warmup_sum, self.warmup_steps)

    def change_runs(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Runs of steps k where η_k ≠ η_{k−1} (η_0 the peak), each with one drop η_{k−1} − η_k per step.

        Returns ``(first_k, n_steps, drop)``: a piece contributes its first step (the jump from the
        previous piece) and, when it slopes, its remaining steps with drop −slope each.
        """
        starts, values, slopes = self.piece_start, self.piece_value, self.piece_slope
        if starts.size == 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), np.zeros(0)
        lengths = np.append(starts[1:], self.n_steps + 1) - starts
        previous = np.concatenate([[self.peak_lr], (values + slopes * (lengths - 1))[:-1]])
        first_k = np.concatenate([starts, starts + 1])
        counts = np.concatenate([np.ones_like(lengths), lengths - 1])
        drops = np.concatenate([previous - values, -slopes])
        order = np.argsort(first_k, kind="stable")
        first_k, counts, drops = first_k[order], counts[order], drops[order]
        keep = (counts > 0) & (drops != 0)
        return first_k[keep], counts[keep], drops[keep]

    def post_warmup_steps(self, steps: np.ndarray) -> np.ndarray:
        """Convert absolute steps to post-warmup t, checking they lie inside the schedule."""
        t = np.asarray(steps, dtype=np.int64) - self.warmup_steps
        if t.size and (t.min() < 0 or t.max() > self.n_steps):
            raise InputError(
                f"steps {int(np.min(steps))}..{int(np.max(steps))} fall outside the schedule "
                f"(warmup {self.warmup_steps}, last step {self.total_steps})"
            )
        return t

    @classmethod
    def from_per_step(cls, lrs: np.ndarray, warmup_steps: int | None = None) -> "Schedule":
        """Build from the LR used by every absolute step 1..T (``lrs[i]`` is the LR of step i+1).

        ``warmup_steps=None`` detects a warmup as the rising run of LRs up to the first peak.
        """
        lrs = np.asarray(lrs, dtype=float)
        if lrs.size == 0:
            raise InputError("an LR schedule needs at least one step")
        if warmup_steps is None:
            warmup_steps = _detect_warmup(lrs)
        if not 0 <= warmup_steps <= lrs.size:
            raise InputError(f"warmup_steps={warmup_steps} is outside 0..{lrs.size}")
        warmup = lrs[:warmup_steps]
        peak = float(warmup[-1]) if warmup_steps else float(lrs[0])
        if peak <= 0:
            peak = float(lrs.max())
        return cls(lrs[warmup_steps:], peak, float(warmup.sum()), warmup_steps)

    @classmethod
    def from_logged(
        cls,
        steps: np.ndarray,
        lrs: np.ndarray,
        warmup_steps: int = 0,
        warmup_sum: float | None = None,
        total_steps: int | None = None,
    ) -> "Schedule":
        """Rebuild per-step LRs from sparse logged ``(step, lr)`` pairs by linear interpolation.

        The warmup is linear from 0 to the first logged LR over ``warmup_steps`` steps, unless
        ``warmup_sum`` gives S_W directly. LRs before the first or after the last logged step
        are held constant. ``total_steps`` defaults to the last logged step.
        """
        steps = np.asarray(steps, dtype=float)
        lrs = np.asarray(lrs, dtype=float)
        if steps.size == 0 or steps.shape != lrs.shape:
            raise InputError("logged schedule needs matching, non-empty step and LR arrays")
        order = np.argsort(steps, kind="stable")
        steps, lrs = steps[order], lrs[order]
        if np.any(np.diff(steps) == 0):
            raise InputError(f"logged schedule repeats step {int(steps[np.flatnonzero(np.diff(steps) == 0)[0]])}")
        if not (np.all(np.isfinite(steps)) and np.all(np.isfinite(lrs))):
            raise InputError("logged schedule steps and LRs must be finite")
        end = int(steps[-1]) if total_steps is None else int(total_steps)
        if end <= warmup_steps:
            raise InputError(f"schedule ends at step {end}, not after the warmup of {warmup_steps} steps")
        # linear interpolation between rows, held constant outside them: one piece per row interval
        first = np.clip(np.ceil(steps), warmup_steps + 1, end + 1).astype(np.int64)
        starts = np.unique(np.concatenate([[warmup_steps + 1], first[first <= end]]))
        line = np.searchsorted(steps, starts, side="right") - 1
        inside = (line >= 0) & (line < steps.size - 1)
        safe = np.clip(line, 0, max(steps.size - 2, 0))
        slopes = np.zeros(starts.size)
        if steps.size > 1:
            slopes = np.where(inside, (lrs[safe + 1] - lrs[safe]) / (steps[safe + 1] - steps[safe]), 0.0)
        values = np.interp(starts.astype(float), steps, lrs)
        peak = float(np.interp(float(warmup_steps), steps, lrs)) if warmup_steps else float(values[0])
        if warmup_sum is None:
            warmup_sum = linear_warmup_sum(peak, warmup_steps)
        return cls.from_pieces(starts - warmup_steps, values, slopes, end - warmup_steps, peak, float(warmup_sum), warmup_steps)


def linear_warmup_sum(peak_lr: float, warmup_steps: int) -> float:
    """S_W of a linear warmup whose step i (1..W) uses η_max·i/W: η_max·(W+1)/2."""
    return float(peak_lr) * (warmup_steps + 1) / 2.0 if warmup_steps > 0 else 0.0


def _linear_pieces(lrs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Split per-step LRs into linear pieces (starts 1-based); a non-linear stretch becomes one piece per step.

    Works through the array in chunks of :data:`_CHUNK` steps, so its temporaries stay near
    10 · 8 · _CHUNK bytes whatever the schedule's length (the output is O(pieces)).
    """
    n = lrs.size
    if n == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0), np.zeros(0)
    tolerance = _LINEAR_TOLERANCE * max(float(np.max(np.abs(lrs))), np.finfo(float).tiny)
    bends = [np.zeros(1, dtype=np.int64)]
    for a in range(2, n, _CHUNK):  # index i starts a piece when its step differs from the step before
        b = min(a + _CHUNK, n)
        window = lrs[a - 2 : b]
        second = np.abs(window[2:] - 2.0 * window[1:-1] + window[:-2])
        bends.append(np.flatnonzero(second > tolerance) + a)
    begin = np.concatenate(bends)
    slope = _slopes(lrs, begin)
    bad = np.zeros(begin.size, dtype=bool)
    for a in range(0, n, _CHUNK):  # a piece whose line drifts off its LRs (a slow curve) is split into steps
        b = min(a + _CHUNK, n)
        owner = np.searchsorted(begin, np.arange(a, b), side="right") - 1
        drift = np.abs(lrs[begin[owner]] + slope[owner] * (np.arange(a, b) - begin[owner]) - lrs[a:b]) > tolerance
        bad[np.unique(owner[drift])] = True
    if np.any(bad):
        stop = np.append(begin[1:], n)
        singles = [np.arange(start, finish) for start, finish in zip(begin[bad], stop[bad])]
        begin = np.unique(np.concatenate([begin[~bad]] + singles))
        slope = _slopes(lrs, begin)
    return begin.astype(np.int64) + 1, lrs[begin].copy(), slope


def _slopes(lrs: np.ndarray, begin: np.ndarray) -> np.ndarray:
    """Slope of each piece from its two ends (0 for one-step pieces)."""
    stop = np.append(begin[1:], lrs.size)
    length = stop - begin
    return np.where(length > 1, (lrs[stop - 1] - lrs[begin]) / np.maximum(length - 1, 1), 0.0)


def _detect_warmup(lrs: np.ndarray) -> int:
    """Number of leading steps whose LR strictly rises before the first peak (0 when it does not rise)."""
    rises = np.diff(lrs) > 0
    if lrs.size < 2 or not rises[0]:
        return 0
    first_flat_or_fall = np.flatnonzero(~rises)
    return int(first_flat_or_fall[0] + 1) if first_flat_or_fall.size else int(lrs.size)
