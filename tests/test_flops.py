"""FLOPs of a micro-batch (measured on a meta copy, user, module, 6·N·D) and parameter counts."""

from __future__ import annotations

import lightning.pytorch as pl
import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from scaling_callback.callback.flops import (
    MicroBatchFlops,
    batch_size_and_tokens,
    count_parameters,
    meta_copy,
    shape_key,
)


class Regressor(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 1))
        self.register_buffer("scale", torch.ones(1))
        self.cache = torch.zeros(1000)  # a plain tensor attribute: must not be copied

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = nn.functional.mse_loss(self.net(x).squeeze(-1) * self.scale, y)
        self.log("loss", loss)  # a no-op on the meta copy (no Trainer)
        return loss


class TinyLM(nn.Module):
    def __init__(self, vocab: int = 50, width: int = 8) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, width)
        self.head = nn.Linear(width, vocab, bias=False)
        self.head.weight = self.embed.weight  # tied: counted once

    def forward(self, tokens):
        return self.head(self.embed(tokens))


@pytest.mark.filterwarnings(r"ignore:You are trying to `self.log\(\)`")
def test_measured_flops_equal_flop_counter_on_the_real_module():
    model = Regressor()
    batch = (torch.randn(8, 16), torch.randn(8))
    flops = MicroBatchFlops(model, count_parameters(model).total)
    samples, tokens, measured = flops.facts(batch)
    assert (samples, tokens) == (8, None)
    with FlopCounterMode(display=False) as counter:
        model.training_step(batch, 0).backward()
    assert flops.source == "measured" and measured == counter.get_total_flops() > 0
    assert all(p.device.type == "cpu" for p in model.parameters())  # the real module is untouched


def test_measurement_happens_once_per_shape(monkeypatch):
    model = Regressor()
    flops = MicroBatchFlops(model, count_parameters(model).total)
    calls = []
    original = flops._measure
    monkeypatch.setattr(flops, "_measure", lambda batch: calls.append(1) or original(batch))
    small, large = (torch.randn(4, 16), torch.randn(4)), (torch.randn(8, 16), torch.randn(8))
    values = [flops.facts(b)[2] for b in (small, small, large, small)]
    assert len(calls) == 2 and values[0] == values[1] == values[3] and values[2] == pytest.approx(2 * values[0])


def test_user_and_module_values_take_precedence():
    model = Regressor()
    batch = (torch.randn(4, 16), torch.randn(4))
    assert MicroBatchFlops(model, 10, user_flops=123.0).facts(batch) == (4, None, 123.0)
    model.flops_per_batch = lambda b: 7.0 * len(b[0])
    counter = MicroBatchFlops(model, 10)
    assert counter.facts(batch)[2] == 28.0 and counter.facts(batch[:1] + (batch[1][:2],))[2] == 28.0
    assert counter.source == "module"


def test_six_n_d_fallback_when_measurement_fails():
    class Broken(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = nn.Parameter(torch.ones(3))

        def forward(self, x):
            raise RuntimeError("no meta support")

    counter = MicroBatchFlops(Broken(), n_params=3)
    assert counter.facts(torch.zeros(5, 2, dtype=torch.long)) == (5, 10, 6 * 3 * 10)
    assert counter.source == "6ND" and "6 * N_total * D" in counter.convention


def test_live_count_is_asked_for_when_the_meta_copy_cannot_run():
    class NeedsData(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.linear = nn.Linear(4, 1)

        def forward(self, x):
            return self.linear(x) * float(x.abs().max())  # .item() on meta data fails

    counter = MicroBatchFlops(NeedsData(), n_params=5)
    batch = torch.randn(3, 4)
    assert counter.wants_live_count(batch)
    assert counter.facts(batch, live_flops=99.0) == (3, None, 99.0) and counter.source == "measured live"
    assert not counter.wants_live_count(batch) and counter.facts(batch) == (3, None, 99.0)


def test_parameter_counts_exclude_embeddings_and_count_tied_weights_once():
    counts = count_parameters(TinyLM())
    assert counts.total == 50 * 8 and counts.non_embedding == 0
    model = Regressor()
    assert count_parameters(model).total == count_parameters(model).non_embedding == 16 * 32 + 32 + 32 + 1


def test_meta_copy_drops_trainer_and_copies_no_data():
    model = Regressor()
    model._trainer = object()  # stands in for an attached Trainer
    clone = meta_copy(model)
    assert clone._trainer is None and clone.cache.device.type == "meta"
    assert all(p.device.type == "meta" for p in clone.parameters()) and clone.scale.device.type == "meta"


def test_samples_tokens_and_shape_keys():
    assert batch_size_and_tokens({"ids": torch.zeros(4, 16, dtype=torch.long)}) == (4, 64)
    assert batch_size_and_tokens((torch.randn(4, 16), torch.randn(4))) == (4, None)
    assert batch_size_and_tokens([torch.randn(3, 2)], tokens_per_sample=128) == (3, 384)
    assert shape_key((torch.zeros(2, 3), torch.zeros(2))) != shape_key((torch.zeros(4, 3), torch.zeros(4)))
