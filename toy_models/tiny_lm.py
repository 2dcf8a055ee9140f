"""A tiny causal transformer language model (about 10k to 1M parameters) for demos, sweeps and tests.

GPT-style pre-norm blocks (causal self-attention, then a 4× GELU MLP), learned position embeddings,
output head tied to the token embedding. Trained with AdamW (weight decay on matrices only) and a
per-step LR schedule from :mod:`toy_models.schedules`. Input batches are ``torch.long`` tensors
``[B, T]`` (or a dict with key ``"tokens"``), as :mod:`toy_models.zipf_corpus` yields them; the
model predicts ``tokens[:, 1:]`` from ``tokens[:, :-1]``. Logs ``train_loss`` each step and, after
each validation pass, ``val_loss`` (mean over every held-out token, nats), ``val_loss_sd`` (its
standard error) and ``val_loss_tokens`` (tokens scored). The standard error is the SD of the
per-sequence mean losses over √(sequences): tokens of one sequence are correlated (they share
their contexts), whole sequences are independent draws, so this needs no assumption about how
strongly (on the Zipf corpus the per-sequence variance is 1.1× the per-token variance over the
tokens per sequence, measured in docs/toy-models.md).

Parameter counts (recorded as both conventions, see Pearce & Song 2024): ``n_params`` (all) and
``n_params_non_embedding`` (without the token and position embeddings; Kaplan et al. 2020).
``flops_per_batch`` for a [batch_size, seq_len] batch is Kaplan et al.'s 6·N·D per token with N the
parameters used in matmuls (non-embedding plus the tied output head, d_model·vocab) plus their
attention term 6·n_layers·n_ctx·d_model per token, n_ctx = seq_len − 1.

Example (the training stream is endless, so validate every k steps rather than per epoch)::

    data = ZipfDataModule(vocab_size=256, batch_size=32, seq_len=64)
    model = make_tiny_lm(d_model=64, n_layers=2, kind="wsd", max_steps=2000, warmup_steps=100)
    Trainer(max_steps=2000, val_check_interval=200, check_val_every_n_epoch=None).fit(model, data)
"""

from __future__ import annotations

import dataclasses
from typing import Any

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from torch import nn

from toy_models.schedules import ScheduleSpec, lightning_optimizer_config


class _Block(nn.Module):
    def __init__(self, d_model: int, n_heads: int, dropout: float) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.norm_attention = nn.LayerNorm(d_model)
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.attention_out = nn.Linear(d_model, d_model)
        self.norm_mlp = nn.LayerNorm(d_model)
        self.mlp = nn.Sequential(nn.Linear(d_model, 4 * d_model), nn.GELU(), nn.Linear(4 * d_model, d_model))
        self.dropout = nn.Dropout(dropout)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        batch, length, width = h.shape
        q, k, v = self.qkv(self.norm_attention(h)).split(width, dim=2)
        q, k, v = (t.view(batch, length, self.n_heads, width // self.n_heads).transpose(1, 2) for t in (q, k, v))
        attended = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        h = h + self.dropout(self.attention_out(attended.transpose(1, 2).reshape(batch, length, width)))
        return h + self.dropout(self.mlp(self.norm_mlp(h)))


class TinyLM(pl.LightningModule):
    """Causal transformer LM; width ``d_model`` and depth ``n_layers`` set the size."""

    def __init__(
        self,
        vocab_size: int = 256,
        d_model: int = 64,
        n_layers: int = 2,
        n_heads: int = 4,
        seq_len: int = 64,
        batch_size: int = 32,
        schedule: ScheduleSpec | dict | None = None,
        weight_decay: float = 0.1,
        dropout: float = 0.0,
        seed: int = 0,
    ) -> None:
        super().__init__()
        for name, value, low in (
            ("vocab_size", vocab_size, 2),
            ("d_model", d_model, 1),
            ("n_layers", n_layers, 1),
            ("n_heads", n_heads, 1),
            ("seq_len", seq_len, 2),
            ("batch_size", batch_size, 1),
        ):
            if int(value) != value or value < low:
                raise ValueError(f"{name} must be an integer >= {low}; got {value!r}")
        if d_model % n_heads:
            raise ValueError(f"d_model={d_model} is not divisible by n_heads={n_heads}")
        schedule = ScheduleSpec() if schedule is None else schedule
        self.schedule = schedule if isinstance(schedule, ScheduleSpec) else ScheduleSpec(**schedule)
        self.save_hyperparameters(
            {
                "vocab_size": vocab_size,
                "d_model": d_model,
                "n_layers": n_layers,
                "n_heads": n_heads,
                "seq_len": seq_len,
                "batch_size": batch_size,
                "schedule": dataclasses.asdict(self.schedule),
                "weight_decay": weight_decay,
                "dropout": dropout,
                "seed": seed,
            }
        )
        generator_state = torch.random.get_rng_state()
        torch.manual_seed(seed)  # the initialisation depends on the seed only
        self.token_embedding = nn.Embedding(vocab_size, d_model)
        self.position_embedding = nn.Embedding(seq_len, d_model)
        self.blocks = nn.ModuleList(_Block(d_model, n_heads, dropout) for _ in range(n_layers))
        self.norm_out = nn.LayerNorm(d_model)
        self.apply(self._init_weights)
        torch.random.set_rng_state(generator_state)
        self.weight_decay = weight_decay
        self.n_params = sum(p.numel() for p in self.parameters())
        self.n_params_non_embedding = (
            self.n_params - self.token_embedding.weight.numel() - self.position_embedding.weight.numel()
        )
        context = seq_len - 1
        matmul_params = self.n_params_non_embedding + d_model * vocab_size
        self.flops_per_batch: int = int(6 * (matmul_params + n_layers * context * d_model) * batch_size * context)

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """Logits [B, T, vocab] for input tokens [B, T] (T <= seq_len)."""
        positions = torch.arange(tokens.shape[1], device=tokens.device)
        h = self.token_embedding(tokens) + self.position_embedding(positions)
        for block in self.blocks:
            h = block(h)
        return self.norm_out(h) @ self.token_embedding.weight.T

    def _loss(self, batch: torch.Tensor | dict) -> torch.Tensor:
        tokens = batch["tokens"] if isinstance(batch, dict) else batch
        logits = self(tokens[:, :-1])
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tokens[:, 1:].reshape(-1))

    def training_step(self, batch: torch.Tensor | dict, batch_idx: int) -> torch.Tensor:
        loss = self._loss(batch)
        if self._logs_this_step():
            self.log("train_loss", loss)
        return loss

    def _logs_this_step(self) -> bool:
        """Whether the trainer writes this step's metrics (every ``log_every_n_steps``, and the last step).

        One ``self.log`` costs ~1 ms of CPU in Lightning, as much as this model's forward pass, and a value
        logged between writes is dropped, so the training loss is logged on the written steps only.
        """
        try:
            trainer = self.trainer
        except RuntimeError:  # not attached to a Trainer: nothing would be written
            return False
        step = self.global_step + 1
        return step % max(trainer.log_every_n_steps, 1) == 0 or trainer.should_stop or step == trainer.max_steps

    def on_validation_epoch_start(self) -> None:
        self._sequence_losses: list[torch.Tensor] = []  # each held-out sequence's mean loss
        self._held_out_tokens = 0

    def validation_step(self, batch: torch.Tensor | dict, batch_idx: int) -> None:
        tokens = batch["tokens"] if isinstance(batch, dict) else batch
        logits = self(tokens[:, :-1])
        per_token = F.cross_entropy(logits.transpose(1, 2), tokens[:, 1:], reduction="none")
        self._sequence_losses.append(per_token.mean(dim=1).detach().double())
        self._held_out_tokens += per_token.numel()

    def on_validation_epoch_end(self) -> None:
        if not getattr(self, "_sequence_losses", None):
            return
        means = torch.cat(self._sequence_losses)
        self._sequence_losses = []
        self.log("val_loss", float(means.mean()))
        self.log("val_loss_tokens", float(self._held_out_tokens))
        if means.numel() > 1:
            self.log("val_loss_sd", float(means.std() / means.numel() ** 0.5))

    def configure_optimizers(self) -> dict:
        matrices = [p for p in self.parameters() if p.dim() >= 2]
        others = [p for p in self.parameters() if p.dim() < 2]
        groups = [{"params": matrices, "weight_decay": self.weight_decay}, {"params": others, "weight_decay": 0.0}]
        optimizer = _adamw(groups, lr=self.schedule.peak_lr, betas=(0.9, 0.95))
        return lightning_optimizer_config(optimizer, self.schedule)


def _adamw(groups: list[dict], **options: Any) -> torch.optim.AdamW:
    """AdamW with its fused kernel where this PyTorch has one for the parameters' device (CPU since 2.4).

    On the tiny LM's CPU steps the fused update takes 0.39 ms against 1.0 ms for the per-tensor loop
    (the same updates up to float rounding, ~2e-6 in the loss after 300 steps).
    """
    try:
        return torch.optim.AdamW(groups, fused=True, **options)
    except (RuntimeError, TypeError, ValueError):  # a device or release without the fused kernel
        return torch.optim.AdamW(groups, **options)


def make_tiny_lm(
    d_model: int = 64,
    n_layers: int = 2,
    n_heads: int | None = None,
    vocab_size: int = 256,
    seq_len: int = 64,
    batch_size: int = 32,
    kind: str = "cosine",
    peak_lr: float = 3e-3,
    max_steps: int = 1000,
    warmup_steps: int = 50,
    final_lr_fraction: float = 0.1,
    seed: int = 0,
    **kwargs: float,
) -> TinyLM:
    """A :class:`TinyLM` with a schedule built from the arguments; ``n_heads`` defaults to d_model/16 (>= 1).

    Sizes with the default vocabulary (256) and seq_len (64): d_model=16, n_layers=1 has about
    9k parameters; d_model=128, n_layers=4 about 0.8M.
    """
    heads = n_heads
    if heads is None:
        heads = max(1, d_model // 16)
        while d_model % heads:
            heads -= 1
    schedule = ScheduleSpec(
        kind=kind, peak_lr=peak_lr, max_steps=max_steps, warmup_steps=warmup_steps, final_lr_fraction=final_lr_fraction
    )
    return TinyLM(vocab_size, d_model, n_layers, heads, seq_len, batch_size, schedule, seed=seed, **kwargs)
