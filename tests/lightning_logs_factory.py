"""A real Lightning run logging to CSVLogger and TensorBoardLogger with the callback storing its points."""

from __future__ import annotations

import math
from pathlib import Path

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import LearningRateMonitor
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
from torch import nn

from scaling_callback.callback.scaling_law_callback import ScalingLawCallback

STEPS, WARMUP, EVERY, PEAK = 240, 20, 10, 0.05


def lr_factor(t: int) -> float:
    """LambdaLR factor of the t-th scheduler call (0-based): linear warmup, then cosine to 10 %."""
    if t < WARMUP:
        return (t + 1) / WARMUP
    progress = (t - WARMUP) / (STEPS - WARMUP)
    return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress))


class Model(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(8, 32), nn.Tanh(), nn.Linear(32, 1))

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = nn.functional.mse_loss(self.net(x).squeeze(-1), y) + 0.1
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_loss", nn.functional.mse_loss(self.net(x).squeeze(-1), y) + 0.1)

    def configure_optimizers(self):
        optimizer = torch.optim.SGD(self.parameters(), lr=PEAK)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}


def train(root: Path) -> dict[str, Path]:
    """Train once; return the paths of the CSV log, the TensorBoard log and the store."""
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(512, 8, generator=generator)
    y = torch.sin(x.sum(1))
    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=16)
    torch.manual_seed(0)
    trainer = pl.Trainer(
        max_steps=STEPS,
        accelerator="cpu",
        devices=1,
        log_every_n_steps=EVERY,
        val_check_interval=40,
        check_val_every_n_epoch=None,
        limit_val_batches=2,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        logger=[
            CSVLogger(root / "csv", name="model", version="v0"),
            TensorBoardLogger(root / "tb", name="model", version="v0"),
        ],
        callbacks=[
            LearningRateMonitor("step"),
            ScalingLawCallback(store=root / "store.sqlite", run_name="model-v0", fit_every_n_steps=None),
        ],
    )
    trainer.fit(Model(), data, data)
    return {"csv": root / "csv", "tb": root / "tb", "store": root / "store.sqlite"}
