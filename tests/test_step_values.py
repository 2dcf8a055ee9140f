"""Step payloads to numbers: un-scaling for accumulation, one batched copy, missing losses."""

from __future__ import annotations

import math

import torch

from scaling_callback.callback.step_values import materialise, reduce_across_ranks


def test_materialise_unscales_and_averages_micro_batches():
    payloads = [
        (torch.tensor(1.0), 2, 8.0, math.nan, 10.0),  # two micro-batches whose losses were divided by 2: sum 1.0
        (0.25, 1, 4.0, 16.0, 5.0),  # a plain float, one micro-batch
        (None, 0, 4.0, math.nan, 5.0),  # no loss at all
    ]
    values = materialise(payloads, scale=2)
    loss, samples, tokens, flops = values[0]
    assert (loss, samples, flops) == (1.0, 8.0, 10.0) and math.isnan(tokens)
    assert values[1] == (0.5, 4.0, 16.0, 5.0)
    assert math.isnan(values[2][0])


def test_single_process_reduction_is_the_local_vector():
    vector = reduce_across_ranks(
        (torch.tensor(3.0), 1, 2.0, math.nan, 7.0), scale=1, world_size=1, device=torch.device("cpu")
    )
    assert vector.dtype == torch.float64 and vector[0] == 3.0 and vector[1] == 2.0 and vector[3] == 7.0
    assert materialise([vector], scale=1)[0][:2] == (3.0, 2.0)
