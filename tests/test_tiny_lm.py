import logging
import warnings

import lightning.pytorch as pl
import numpy as np
import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from toy_models.schedules import lr_at
from toy_models.tiny_lm import TinyLM, make_tiny_lm
from toy_models.zipf_corpus import ZipfDataModule

logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Small models train many times faster on one thread when the cores are shared."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _fit(model: TinyLM, data: ZipfDataModule, **trainer_options) -> pl.Trainer:
    """Train ``model`` on CPU without checkpoints, progress bar or summary; returns the trainer."""
    trainer = pl.Trainer(
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
        devices=1,
        **trainer_options,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit(model, datamodule=data)
    return trainer


def test_sizes_span_ten_thousand_to_a_million_parameters():
    small = make_tiny_lm(d_model=16, n_layers=1)
    large = make_tiny_lm(d_model=128, n_layers=4)
    assert 5_000 < small.n_params < 20_000
    assert 500_000 < large.n_params < 1_200_000
    assert small.n_params_non_embedding < small.n_params


def test_flops_per_batch_counts_matmuls_and_attention():
    model = make_tiny_lm(d_model=32, n_layers=2, batch_size=4, seq_len=16)
    tokens = torch.randint(0, 256, (4, 16))
    counter = FlopCounterMode(display=False)
    with counter:
        model._loss(tokens).backward()
    assert isinstance(model.flops_per_batch, int)
    # the counter sees every matmul but (on CPU) not the fused attention kernel our count adds
    assert 1.0 <= model.flops_per_batch / counter.get_total_flops() < 1.3


def test_trains_on_the_zipf_corpus_and_logs_train_and_val_loss():
    data = ZipfDataModule(vocab_size=64, batch_size=8, seq_len=16, val_batches=2, seed=0)
    model = make_tiny_lm(
        d_model=32,
        n_layers=1,
        vocab_size=64,
        seq_len=16,
        batch_size=8,
        kind="wsd",
        peak_lr=1e-2,
        max_steps=40,
        warmup_steps=5,
    )
    trainer = _fit(model, data, max_steps=40, val_check_interval=20, check_val_every_n_epoch=None, logger=False)
    metrics = trainer.callback_metrics
    assert float(metrics["val_loss"]) < np.log(64) - 0.15  # better than uniform guessing: it learns
    assert "train_loss" in metrics
    assert float(metrics["val_loss_tokens"]) == 2 * 8 * 15  # 2 batches of 8 sequences, 15 predicted tokens each
    assert 0 < float(metrics["val_loss_sd"]) < 0.5
    assert trainer.optimizers[0].param_groups[0]["lr"] == pytest.approx(lr_at(model.schedule, 40)[-1])


def test_training_loss_is_logged_on_the_steps_the_trainer_writes_and_the_last(tmp_path):
    from lightning.pytorch.loggers import CSVLogger

    data = ZipfDataModule(vocab_size=64, batch_size=4, seq_len=8, val_batches=1, seed=0)
    model = make_tiny_lm(d_model=16, n_layers=1, vocab_size=64, seq_len=8, batch_size=4, max_steps=25, warmup_steps=5)
    logger = CSVLogger(tmp_path, name="run", version=0)
    trainer = _fit(model, data, max_steps=25, log_every_n_steps=10, limit_val_batches=0, logger=logger)
    import pandas as pd

    rows = pd.read_csv(tmp_path / "run" / "version_0" / "metrics.csv").dropna(subset=["train_loss"])
    assert rows["step"].tolist() == [9, 19]  # 0-based steps 10 and 20 of 25
    assert "train_loss" in trainer.callback_metrics  # the last step's, for whoever reads it after fit


def test_training_step_outside_a_trainer_returns_the_loss_without_logging():
    model = make_tiny_lm(d_model=16, n_layers=1, vocab_size=64, seq_len=8, batch_size=2)
    loss = model.training_step(torch.randint(0, 64, (2, 8)), 0)
    assert loss.ndim == 0 and float(loss) > 0


def test_optimizer_is_adamw_with_a_per_step_scheduler_and_decay_on_matrices_only():
    model = make_tiny_lm(d_model=16, n_layers=1, kind="two_stage", max_steps=100)
    config = model.configure_optimizers()
    assert isinstance(config["optimizer"], torch.optim.AdamW)
    assert config["lr_scheduler"]["interval"] == "step"
    decayed, undecayed = config["optimizer"].param_groups
    assert all(p.dim() >= 2 for p in decayed["params"]) and undecayed["weight_decay"] == 0.0


def test_accepts_dict_batches_schedule_dicts_and_validates():
    model = TinyLM(
        vocab_size=32,
        d_model=16,
        n_layers=1,
        n_heads=2,
        seq_len=8,
        schedule={"kind": "constant", "peak_lr": 1e-3, "max_steps": 10},
    )
    tokens = torch.randint(0, 32, (2, 8))
    assert torch.allclose(model._loss({"tokens": tokens}), model._loss(tokens))
    assert model(tokens).shape == (2, 8, 32)
    same = TinyLM(vocab_size=32, d_model=16, n_layers=1, n_heads=2, seq_len=8, seed=0)
    assert torch.equal(same.token_embedding.weight, model.token_embedding.weight)  # seeded initialisation
    with pytest.raises(ValueError, match="divisible"):
        TinyLM(d_model=30, n_heads=4)
    with pytest.raises(ValueError, match="schedule kind"):
        make_tiny_lm(kind="linear")


def test_validation_reports_the_mean_held_out_loss_and_its_standard_error_from_whole_sequences():
    data = ZipfDataModule(vocab_size=32, batch_size=4, seq_len=12, val_batches=3, val_batch_size=50, val_seed=5)
    model = make_tiny_lm(d_model=16, n_layers=1, vocab_size=32, seq_len=12, batch_size=4)
    trainer = pl.Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False, accelerator="cpu")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        metrics = trainer.validate(model, datamodule=data, verbose=False)[0]
    with torch.no_grad():
        per_sequence = torch.cat(
            [
                torch.nn.functional.cross_entropy(model(b[:, :-1]).transpose(1, 2), b[:, 1:], reduction="none").mean(1)
                for b in data.val_dataloader()
            ]
        ).double()
    assert metrics["val_loss"] == pytest.approx(float(per_sequence.mean()), rel=1e-5)
    assert metrics["val_loss_sd"] == pytest.approx(float(per_sequence.std() / 150**0.5), rel=1e-4)
    assert metrics["val_loss_tokens"] == 150 * 11
