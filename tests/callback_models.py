"""Small Lightning models, loaders and trainers the callback's tests share."""

from __future__ import annotations

import math
import time
from pathlib import Path

import lightning.pytorch as pl
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from scaling_callback import ScalingLawCallback

BASE_LR, WARMUP, BATCH = 0.05, 10, 8


def lr_factor(i: int, total: int) -> float:
    """Linear warmup over WARMUP steps, then cosine to 10 % at ``total`` (LambdaLR's factor of step i+1)."""
    if i < WARMUP:
        return (i + 1) / WARMUP
    return 0.1 + 0.45 * (1 + math.cos(math.pi * (i - WARMUP) / (total - WARMUP)))


class Regressor(pl.LightningModule):
    """BoringModel-style MLP that remembers the raw loss of every micro-batch."""

    def __init__(self, total: int = 40, scheduler: bool = True) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 1))
        self.total, self.scheduler = total, scheduler
        self.raw_losses: list[float] = []

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = nn.functional.mse_loss(self.net(x).squeeze(-1), y)
        self.raw_losses.append(float(loss))  # .item() in training_step: the meta copy cannot run it
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_loss", nn.functional.mse_loss(self.net(x).squeeze(-1), y))

    def configure_optimizers(self):
        optimizer = torch.optim.SGD(self.parameters(), lr=BASE_LR)
        if not self.scheduler:
            return optimizer
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda i: lr_factor(i, self.total))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}


class MPLShaped(pl.LightningModule):
    """Its 'loss' is a noiseless loss-vs-LR-sum curve with an annealing drop, so the fitter has a clean target."""

    def __init__(self, total: int, decay_from: int) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.zeros(1))
        self.total, self.decay_from, self.lr_sum = total, decay_from, 0.0

    def _lr(self, i: int) -> float:
        warm = min((i + 1) / 10, 1.0)
        return (
            0.1
            * warm
            * (1.0 if i < self.decay_from else max(1 - (i - self.decay_from) / (self.total - self.decay_from), 0.05))
        )

    def training_step(self, batch, batch_idx):
        i = self.global_step
        lr = self._lr(i)
        self.lr_sum += lr
        value = 2.0 + 1.5 * self.lr_sum**-0.5 - 3.0 * (0.1 - lr)
        return self.w.sum() * 0.0 + value

    def configure_optimizers(self):
        optimizer = torch.optim.SGD(self.parameters(), lr=0.1)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda i: self._lr(i) / 0.1)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}


def loader(n: int = 160, seed: int = 0) -> DataLoader:
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 16, generator=generator)
    y = x[:, :3].sum(1)
    return DataLoader(TensorDataset(x, y), batch_size=BATCH, shuffle=False)


def trainer(tmp_path: Path, callback: ScalingLawCallback, **kwargs) -> pl.Trainer:
    options = dict(
        max_steps=40,
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )
    options.update(kwargs)
    return pl.Trainer(default_root_dir=tmp_path, callbacks=[callback] + options.pop("extra_callbacks", []), **options)


class SlowSteps(pl.Callback):
    """Makes each training step last at least ``seconds`` (a run long enough for a worker process to start)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def on_train_batch_end(self, *args, **kwargs) -> None:
        time.sleep(self.seconds)
