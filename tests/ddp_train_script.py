"""Two-process CPU (gloo) DDP run with ScalingLawCallback, used by tests/test_ddp.py.

    python tests/ddp_train_script.py OUT_DIR [law]

Lightning's "ddp" strategy re-launches this script for rank 1. Each rank writes OUT_DIR/rank{r}.json with
its view of the run: the callback's curve, the final step, and the raw loss of its own micro-batches.
With ``law`` the run is judged by the real :class:`LawPolicy` against the sweep's other runs (the test
stores a finished run far ahead of it first), on a noisy target with a power-law spectrum.
"""

from __future__ import annotations

import json
import sys
import time
import warnings
from pathlib import Path

import lightning.pytorch as pl
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import scaling_callback.fitting.sweep_forecaster  # noqa: F401 - imported up front so the thread worker's first fit is quick
from scaling_callback import ScalingLawCallback
from scaling_callback.stopping import Decision, LawPolicy, StoppingPolicy

MAX_STEPS, BATCH = 400, 4


class Model(pl.LightningModule):
    def __init__(self, step_seconds: float = 0.005) -> None:
        super().__init__()
        self.net = nn.Linear(8, 1)
        self.local_losses: dict[int, float] = {}
        self.step_seconds = step_seconds

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = nn.functional.mse_loss(self.net(x).squeeze(-1), y)
        self.local_losses[self.global_step + 1] = loss.item()
        time.sleep(self.step_seconds)  # a step long enough for a fit (and a policy's) to return before the run would end
        return loss

    def configure_optimizers(self):
        optimizer = torch.optim.SGD(self.parameters(), lr=0.01)
        return {"optimizer": optimizer,
                "lr_scheduler": {"scheduler": torch.optim.lr_scheduler.LinearLR(optimizer, 1.0, 0.1, MAX_STEPS), "interval": "step"}}


class StopOnceFitted(StoppingPolicy):
    """Stops the run at the first fit that has seen 20 steps (only rank 0 is asked)."""

    def judge(self, run, sweep):
        return Decision(False, "unpromising" if run.current_x >= 20 else "continue")


def main(out: Path, law: bool = False) -> None:
    warnings.filterwarnings("ignore")
    torch.manual_seed(0)
    x = torch.randn(2048, 8)
    if law:  # a power-law spectrum, so the loss falls as a power law (and levels off at the noise)
        x = x * torch.arange(1, 9) ** -0.75
    y = x.sum(1) + (0.3 * torch.randn(2048) if law else 0.0)
    policy = LawPolicy(warmup_fraction=0.05, interval_fraction=0.025) if law else StopOnceFitted()
    callback = ScalingLawCallback(store=out / "s.sqlite", sweep="ddp", fit_every_n_steps=10, fit_worker="thread",
                                  max_fit_fraction=None, early_stopping=policy, flush_every_n_steps=7)
    trainer = pl.Trainer(accelerator="cpu", devices=2, strategy="ddp", max_steps=MAX_STEPS, logger=False, callbacks=[callback],
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    model = Model(0.02 if law else 0.005)
    trainer.fit(model, DataLoader(TensorDataset(x, y), batch_size=BATCH))
    recorder = callback._recorder
    view = {
        "rank": trainer.global_rank, "global_step": trainer.global_step, "run": callback.run,
        "curve": {c: [None if v != v else v for v in recorder.column(c).tolist()] for c in ("step", "samples", "flops", "lr_sum", "loss")},
        "local_losses": model.local_losses,
    }
    (out / f"rank{trainer.global_rank}.json").write_text(json.dumps(view))


if __name__ == "__main__":
    main(Path(sys.argv[1]), law=sys.argv[2:] == ["law"])
