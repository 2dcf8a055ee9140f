"""A step's loss and counts as plain numbers: un-scaling, the cross-rank reduction, one host sync per flush.

The recorder keeps each finished step's payload ``(loss sum, micro-batches with a loss, samples,
tokens, flops)`` where the loss sum may be a device tensor. Under DDP each step's payload becomes a
float64 vector all-reduced (summed) right away, so that every rank holds the global values (loss:
mean over ranks; counts: sum over ranks); a single ``.cpu()`` per flush then turns all pending
steps into numbers. Lightning divides an automatically optimised loss by ``accumulate_grad_batches``
(docs/reference.md §1); ``scale`` undoes that.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import torch

Numbers = tuple[float, float, float, float]  # loss, samples, tokens, flops of one step


def reduce_across_ranks(payload: tuple, scale: float, world_size: int, device: torch.device, reduce=None) -> torch.Tensor:
    """The step's global (mean loss, samples, tokens, flops) as a float64 vector on ``device``, summed over ranks.

    Uses ``torch.distributed.all_reduce`` directly (no barrier, no host sync on NCCL) when a process
    group exists, else ``reduce(vector)`` (e.g. the strategy's reduce).
    """
    loss_sum, n_micro, samples, tokens, flops = payload
    vector = torch.tensor([0.0, samples, tokens, flops], dtype=torch.float64, device=device)
    if isinstance(loss_sum, torch.Tensor) and n_micro:
        vector[0] = loss_sum.detach().reshape(()).to(device=device, dtype=torch.float64) * (scale / n_micro / world_size)
    else:
        vector[0] = math.nan if loss_sum is None or not n_micro else float(loss_sum) * scale / n_micro / world_size
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.all_reduce(vector)
        return vector
    return vector if reduce is None else reduce(vector)


def materialise(payloads: Sequence[Any], scale: float) -> list[Numbers]:
    """Numbers of pending steps: reduced vectors (DDP) or local payloads, with one device-to-host copy."""
    if payloads and isinstance(payloads[0], torch.Tensor):
        return [tuple(row) for row in torch.stack(list(payloads)).cpu().tolist()]
    tensors = [i for i, p in enumerate(payloads) if isinstance(p[0], torch.Tensor)]
    losses = [math.nan if p[0] is None or not p[1] or isinstance(p[0], torch.Tensor) else float(p[0]) for p in payloads]
    if tensors:
        values = [payloads[i][0] for i in tensors]
        try:
            stacked = torch.stack(values)  # one kernel and one copy for all steps; losses are 0-dim
        except RuntimeError:  # mixed shapes
            stacked = torch.stack([v.reshape(-1)[0] for v in values])
        for i, value in zip(tensors, stacked.to(torch.float64).cpu().reshape(-1).tolist()):
            losses[i] = value
    return [(loss * scale / p[1] if p[1] else math.nan, p[2], p[3], p[4]) for loss, p in zip(losses, payloads)]
