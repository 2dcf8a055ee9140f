"""A trainable power-law random-feature model: fixed random features, a linear readout, one-pass SGD.

The LightningModule version of :mod:`toy_models.plrf` (Paquette et al. 2024), so that a callback
can be attached to it like to any real model. Data are drawn on the fly from a seeded generator
(one pass: every sample is fresh), features are the realised W of ``PLRFProblem.features`` (the
same W the exact recursion uses for the same seed), the readout starts at zero and is trained by
SGD under a per-step LR schedule from :mod:`toy_models.schedules`.

Logged every ``log_every_n_steps`` steps (default 1; 0 never): ``train_loss`` (½·mean squared
error of the batch) and ``population_loss``, the exact ½‖D^(1/2)(Wθ − b)‖² that the recursion
predicts. A ``self.log`` call costs about a millisecond here, more than the step itself, so sweeps
of this toy model may log less often; :meth:`PLRFModule.population_loss` can be called at any time. ``flops_per_batch`` = 6·d·B (the
Kaplan/Chinchilla 6·N·D with N = d trainable parameters and D = B samples); like Paquette et al.'s
f = r·d it leaves out the fixed feature map x ↦ Wᵀx, whose cost does not depend on training.

Batch format: a tuple ``(x, y)`` with x of shape [B, v] and y of shape [B].
"""

from __future__ import annotations

import dataclasses

import lightning.pytorch as pl
import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset

from toy_models.plrf import PLRFProblem, stable_learning_rate
from toy_models.schedules import ScheduleSpec, lightning_optimizer_config


class PLRFStream(IterableDataset):
    """Endless batches (x, y): x ~ N(0, diag(j^(−2α))), y = ⟨x, b⟩; restarts identically for a seed."""

    def __init__(self, problem: PLRFProblem, batch_size: int, seed: int) -> None:
        super().__init__()
        if int(batch_size) != batch_size or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer; got {batch_size!r}")
        self.batch_size, self.seed = int(batch_size), int(seed)
        self.scale = torch.as_tensor(np.sqrt(problem.data_variances), dtype=torch.float32)
        self.target = torch.as_tensor(problem.target, dtype=torch.float32)

    def __iter__(self):
        generator = torch.Generator().manual_seed(self.seed)
        while True:
            x = torch.randn(self.batch_size, self.scale.numel(), generator=generator) * self.scale
            yield x, x @ self.target


class PLRFModule(pl.LightningModule):
    """Fixed features W (v × d) and a trainable readout θ ∈ R^d trained by SGD with a schedule."""

    def __init__(
        self,
        d: int,
        v: int,
        alpha: float,
        beta: float,
        batch_size: int,
        schedule: ScheduleSpec | dict,
        feature_seed: int = 0,
        data_seed: int = 0,
        log_every_n_steps: int = 1,
    ) -> None:
        super().__init__()
        if int(log_every_n_steps) != log_every_n_steps or log_every_n_steps < 0:
            raise ValueError(f"log_every_n_steps must be an integer >= 0; got {log_every_n_steps!r}")
        schedule = schedule if isinstance(schedule, ScheduleSpec) else ScheduleSpec(**schedule)
        self.save_hyperparameters(
            {
                "d": d,
                "v": v,
                "alpha": alpha,
                "beta": beta,
                "batch_size": batch_size,
                "schedule": dataclasses.asdict(schedule),
                "feature_seed": feature_seed,
                "data_seed": data_seed,
                "log_every_n_steps": log_every_n_steps,
            }
        )
        self.log_every_n_steps = int(log_every_n_steps)
        self.problem = PLRFProblem(alpha, beta, v)
        self.schedule = schedule
        self.batch_size = int(batch_size)
        self.data_seed = int(data_seed)
        features = self.problem.features(d, feature_seed)
        self.register_buffer("features", torch.as_tensor(features, dtype=torch.float32))
        self.register_buffer("variances", torch.as_tensor(self.problem.data_variances, dtype=torch.float32))
        self.register_buffer("target", torch.as_tensor(self.problem.target, dtype=torch.float32))
        self.readout = torch.nn.Parameter(torch.zeros(int(d)))
        self.flops_per_batch: int = 6 * int(d) * self.batch_size

    @property
    def d(self) -> int:
        return self.readout.numel()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x @ self.features) @ self.readout

    def population_loss(self) -> torch.Tensor:
        """½‖D^(1/2)(Wθ − b)‖²: the exact expected loss of the current readout."""
        with torch.no_grad():
            residual = self.features @ self.readout - self.target
            return 0.5 * torch.sum(self.variances * residual**2)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        x, y = batch
        loss = 0.5 * torch.mean((self(x) - y) ** 2)
        every = self.log_every_n_steps
        if every and self.global_step % every == 0:
            self.log("train_loss", loss)
            self.log("population_loss", self.population_loss())
        return loss

    def configure_optimizers(self) -> dict:
        optimizer = torch.optim.SGD([self.readout], lr=self.schedule.peak_lr)
        return lightning_optimizer_config(optimizer, self.schedule)

    def train_dataloader(self) -> DataLoader:
        return DataLoader(PLRFStream(self.problem, self.batch_size, self.data_seed), batch_size=None)


def make_plrf_module(
    d: int = 64,
    v: int = 512,
    alpha: float = 1.0,
    beta: float = 1.5,
    batch_size: int = 8,
    max_steps: int = 1000,
    kind: str = "constant",
    warmup_steps: int = 0,
    peak_lr: float | None = None,
    final_lr_fraction: float = 0.1,
    feature_seed: int = 0,
    data_seed: int = 0,
    log_every_n_steps: int = 1,
) -> PLRFModule:
    """A :class:`PLRFModule` with a schedule built from the arguments.

    ``peak_lr=None`` uses the paper's stable step 0.5/tr(H) of the realised features. Train it
    with ``Trainer(max_steps=max_steps)``; the data stream is endless.
    """
    problem = PLRFProblem(alpha, beta, v)
    if peak_lr is None:
        features = problem.features(d, feature_seed)
        peak_lr = stable_learning_rate(float(np.sum(problem.data_variances[:, None] * features**2)))
    schedule = ScheduleSpec(
        kind=kind, peak_lr=peak_lr, max_steps=max_steps, warmup_steps=warmup_steps, final_lr_fraction=final_lr_fraction
    )
    return PLRFModule(d, v, alpha, beta, batch_size, schedule, feature_seed, data_seed, log_every_n_steps)
