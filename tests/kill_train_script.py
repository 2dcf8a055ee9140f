"""A CPU run that kills itself with SIGKILL mid-run, then its resume; used by tests/test_scaling_law_callback.py.

python tests/kill_train_script.py OUT_DIR kill     # checkpoints every 10 steps, SIGKILLs itself at step 57
python tests/kill_train_script.py OUT_DIR resume   # resumes from OUT_DIR/ckpt/last.ckpt to step 80
"""

from __future__ import annotations

import os
import signal
import sys
import warnings
from pathlib import Path

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from scaling_callback import ScalingLawCallback

MAX_STEPS, KILL_AT, FLUSH_EVERY = 80, 57, 5


class Model(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Linear(8, 1)

    def training_step(self, batch, batch_idx):
        x, y = batch
        return nn.functional.mse_loss(self.net(x).squeeze(-1), y)

    def configure_optimizers(self):
        optimizer = torch.optim.SGD(self.parameters(), lr=0.01)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {
                "scheduler": torch.optim.lr_scheduler.LinearLR(optimizer, 1.0, 0.1, MAX_STEPS),
                "interval": "step",
            },
        }


class KillAt(pl.Callback):
    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if trainer.global_step == KILL_AT:
            os.kill(os.getpid(), signal.SIGKILL)


def main(out: Path, mode: str) -> None:
    warnings.filterwarnings("ignore")
    torch.manual_seed(0)
    x = torch.randn(8 * 30, 8)  # 30 batches per epoch: the step-50 checkpoint is mid-epoch
    callbacks = [
        ScalingLawCallback(
            store=out / "s.sqlite",
            run_name="killed",
            fit_worker="thread",
            fit_every_n_steps=1000,
            flush_every_n_steps=FLUSH_EVERY,
            wait_for_final_fit=False,
        ),
        ModelCheckpoint(dirpath=out / "ckpt", every_n_train_steps=10, save_last=True),
    ]
    if mode == "kill":
        callbacks.append(KillAt())
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=1,
        max_steps=MAX_STEPS,
        logger=False,
        callbacks=callbacks,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(
        Model(),
        DataLoader(TensorDataset(x, x.sum(1)), batch_size=8),
        ckpt_path=out / "ckpt" / "last.ckpt" if mode == "resume" else None,
    )


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2])
