"""Per-optimizer-step record of a training run: step, samples, tokens, FLOPs, LR, LR sum, loss.

Framework-free: the Lightning adapter feeds it micro-batches and step ends. Conventions
(docs/reference.md §1): a *step* is an optimizer step (k micro-batches under gradient accumulation);
``samples``, ``tokens`` and ``flops`` are cumulative over the run (all ranks); ``lr`` is the LR the
step used and ``lr_sum`` the sum of the LRs of all steps so far, warmup included (S1 + S_W);
``loss`` is the mean un-scaled loss of the step's micro-batches.

A step's loss may be a device tensor: the recorder keeps finished steps *pending* and turns them into
floats in one batch (:meth:`commit`), so a GPU run synchronises once per flush, not once per step.
"""

from __future__ import annotations

import math
from array import array
from itertools import accumulate
from typing import Any, Callable, NamedTuple, Sequence

import numpy as np

COLUMNS = ("step", "samples", "tokens", "flops", "lr", "lr_sum", "loss")


class Point(NamedTuple):
    """One optimizer step of the curve; ``tokens`` is None when the run does not count tokens."""

    step: int
    samples: int
    tokens: int | None
    flops: float
    lr: float
    lr_sum: float
    loss: float

    def as_dict(self) -> dict[str, Any]:
        return self._asdict()


class PendingStep(NamedTuple):
    """A finished step whose values may still be device tensors; ``payload`` is the adapter's."""

    step: int
    lr: float
    payload: Any


# Turns pending payloads into (loss, samples, tokens, flops) increments of each step, in one batch.
Materialise = Callable[[Sequence[Any]], Sequence[tuple[float, float, float, float]]]


class StepRecorder:
    """Accumulates micro-batches into steps and steps into a cumulative curve kept in memory."""

    def __init__(self) -> None:
        self.step = 0
        self.samples = 0
        self.tokens: int | None = None
        self.flops = 0.0
        self.lr_sum = 0.0
        self.pending: list[PendingStep] = []
        self._set_columns({c: array("d") for c in COLUMNS})
        self._lr = math.nan
        self.reset_micro_batches()

    # ------------------------------------------------------------ recording
    def reset_micro_batches(self) -> None:
        """Forget the micro-batches of an unfinished step."""
        self.loss_sum: Any = None
        self.n_micro = 0
        self.micro_samples = 0
        self.micro_tokens: int | None = None
        self.micro_flops = 0.0

    def add_micro_batch(self, loss: Any, samples: int, tokens: int | None, flops: float) -> None:
        """One micro-batch: its loss (float or tensor, None if absent; any scaling is undone at commit), size, FLOPs."""
        if loss is not None:
            self.loss_sum = loss if self.loss_sum is None else self.loss_sum + loss
            self.n_micro += 1
        self.micro_samples += samples
        if tokens is not None:
            self.micro_tokens = (self.micro_tokens or 0) + tokens
        self.micro_flops += flops

    def set_lr(self, lr: float) -> None:
        """The LR the step about to be taken uses (read just before the optimizer steps)."""
        self._lr = float(lr)

    def end_step(self, step: int, payload: Any = None) -> None:
        """Close optimizer step ``step``; ``payload`` (default: :meth:`local_payload`) is what ``commit`` materialises."""
        if payload is None:
            tokens = math.nan if self.micro_tokens is None else float(self.micro_tokens)
            payload = (self.loss_sum, self.n_micro, float(self.micro_samples), tokens, float(self.micro_flops))
        self.pending.append(PendingStep(step, self._lr, payload))
        self.loss_sum, self.n_micro, self.micro_samples, self.micro_tokens, self.micro_flops = None, 0, 0, None, 0.0

    def local_payload(self) -> tuple[Any, int, float, float, float]:
        """The current step's own (loss sum, micro-batches with a loss, samples, tokens, flops)."""
        tokens = math.nan if self.micro_tokens is None else float(self.micro_tokens)
        return self.loss_sum, self.n_micro, float(self.micro_samples), tokens, float(self.micro_flops)

    def commit(self, materialise: Materialise | None = None) -> list[Point]:
        """Turn pending steps into points (cumulative sums), append them to the curve and return them."""
        pending = [p for p in self.pending if p.step > self.step]  # a step replayed after a resume is not new
        values = materialise([p.payload for p in pending]) if materialise is not None else [_plain(p.payload) for p in pending]
        self.pending = []
        if not pending:
            return []
        losses, samples, tokens, flops = zip(*values)
        steps = [p.step for p in pending]
        lrs = [p.lr for p in pending]
        samples_sum = list(accumulate((int(round(s)) for s in samples), initial=self.samples))[1:]
        flops_sum = list(accumulate(flops, initial=self.flops))[1:]
        lr_sum = list(accumulate(lrs, initial=self.lr_sum))[1:]
        tokens_sum = self._cumulative_tokens(tokens)
        points = list(map(Point._make, zip(steps, samples_sum, tokens_sum, flops_sum, lrs, lr_sum, map(float, losses))))
        self.step, self.samples, self.flops, self.lr_sum = steps[-1], samples_sum[-1], flops_sum[-1], lr_sum[-1]
        self.tokens = tokens_sum[-1]
        for column, values_ in zip(self._arrays, (steps, samples_sum, tokens_sum, flops_sum, lrs, lr_sum, losses)):
            column.extend(math.nan if v is None else v for v in values_)
        return points

    def _cumulative_tokens(self, tokens: Sequence[float]) -> list[int | None]:
        """Running token totals; None while the run has never counted tokens."""
        totals, total = [], self.tokens
        for value in tokens:
            if not math.isnan(value):
                total = (total or 0) + int(round(value))
            totals.append(total)
        return totals

    def _set_columns(self, columns: dict[str, array]) -> None:
        self._columns = columns
        self._arrays = [columns[c] for c in COLUMNS]

    # --------------------------------------------------------------- access
    def __len__(self) -> int:
        return len(self._columns["step"])

    def column(self, name: str) -> np.ndarray:
        """A copy of one column of the committed curve (``tokens`` NaN when not counted)."""
        return np.frombuffer(self._columns[name], dtype=float).copy() if len(self) else np.empty(0)

    def points_after(self, step: int) -> list[Point]:
        """Committed points with a step above ``step`` (for re-writing them to a store)."""
        steps = self.column("step")
        first = int(np.searchsorted(steps, step, side="right"))
        return [self._point(i) for i in range(first, len(self))]

    def _point(self, i: int) -> Point:
        raw = {c: self._columns[c][i] for c in COLUMNS}
        tokens = None if math.isnan(raw["tokens"]) else int(raw["tokens"])
        return Point(int(raw["step"]), int(raw["samples"]), tokens, raw["flops"], raw["lr"], raw["lr_sum"], raw["loss"])

    # --------------------------------------------------------------- resume
    def state(self) -> dict[str, Any]:
        """Plain-Python totals plus the curve as an (n, 7) float64 array (uncommitted steps must be committed first)."""
        if self.pending:
            raise RuntimeError("commit pending steps before saving the recorder's state")
        curve = np.column_stack([self.column(c) for c in COLUMNS]) if len(self) else np.empty((0, len(COLUMNS)))
        totals = {"step": self.step, "samples": self.samples, "tokens": self.tokens, "flops": self.flops, "lr_sum": self.lr_sum}
        return {"totals": totals, "columns": list(COLUMNS), "curve": curve}

    def load_state(self, state: dict[str, Any]) -> None:
        """Restore from :meth:`state`; steps after the restored one are recorded as new."""
        totals = state["totals"]
        self.step, self.samples = int(totals["step"]), int(totals["samples"])
        self.tokens = None if totals["tokens"] is None else int(totals["tokens"])
        self.flops, self.lr_sum = float(totals["flops"]), float(totals["lr_sum"])
        curve = np.asarray(state["curve"], dtype=float).reshape(-1, len(COLUMNS))
        order = [list(state["columns"]).index(c) for c in COLUMNS]
        self._set_columns({c: array("d", curve[:, j].tolist()) for c, j in zip(COLUMNS, order)})
        self.pending = []
        self.reset_micro_batches()


def _plain(payload: tuple[Any, int, float, float, float]) -> tuple[float, float, float, float]:
    """(loss mean, samples, tokens, flops) of a :meth:`StepRecorder.local_payload` holding plain numbers."""
    loss_sum, n_micro, samples, tokens, flops = payload
    loss = float(loss_sum) / n_micro if loss_sum is not None and n_micro else math.nan
    return loss, samples, tokens, flops
