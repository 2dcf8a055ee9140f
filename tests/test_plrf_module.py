import logging
import warnings

import lightning.pytorch as pl
import numpy as np
import pytest
import torch

from toy_models.plrf import PLRFProblem, spectrum_of, stable_learning_rate
from toy_models.plrf_module import PLRFModule, PLRFStream, make_plrf_module
from toy_models.schedules import ScheduleSpec, lr_at

logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Small models train many times faster on one thread when the cores are shared."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _trainer(max_steps: int, **kwargs) -> pl.Trainer:
    return pl.Trainer(
        max_steps=max_steps,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
        devices=1,
        **kwargs,
    )


def test_trains_with_a_plain_trainer_and_logs_losses():
    module = make_plrf_module(d=16, v=64, batch_size=4, max_steps=100, kind="cosine", warmup_steps=10)
    start = float(module.population_loss())
    trainer = _trainer(100)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit(module)
    assert trainer.global_step == 100
    assert float(module.population_loss()) < 0.2 * start
    assert {"train_loss", "population_loss"} <= set(trainer.callback_metrics)
    # the scheduler stepped every step: after 150 steps of a cosine schedule the LR is the final one
    assert trainer.optimizers[0].param_groups[0]["lr"] == pytest.approx(lr_at(module.schedule, 100)[-1])


def test_flops_per_batch_is_an_int_and_the_default_lr_is_the_stable_step():
    module = make_plrf_module(d=32, v=128, batch_size=8)
    assert isinstance(module.flops_per_batch, int) and module.flops_per_batch == 6 * 32 * 8
    problem = PLRFProblem(1.0, 1.5, 128)
    spectrum = spectrum_of(problem, problem.features(32, 0))
    assert module.schedule.peak_lr == pytest.approx(stable_learning_rate(spectrum.eigenvalues.sum()), rel=1e-9)
    np.testing.assert_allclose(module.features.numpy(), problem.features(32, 0), rtol=1e-6)


def test_population_loss_is_the_expected_batch_loss():
    module = make_plrf_module(d=8, v=32, batch_size=4096)
    with torch.no_grad():
        module.readout.copy_(torch.linspace(-0.5, 0.5, 8))
    x, y = next(iter(PLRFStream(module.problem, 4096, seed=3)))
    with torch.no_grad():
        batch_loss = 0.5 * torch.mean((module(x) - y) ** 2)
    assert float(batch_loss) == pytest.approx(float(module.population_loss()), rel=0.1)


def test_stream_is_deterministic_and_module_validates():
    problem = PLRFProblem(1.0, 1.5, 16)
    first = next(iter(PLRFStream(problem, 2, seed=5)))
    again = next(iter(PLRFStream(problem, 2, seed=5)))
    assert torch.equal(first[0], again[0]) and first[0].shape == (2, 16) and first[1].shape == (2,)
    schedule = ScheduleSpec(kind="constant", peak_lr=0.1, max_steps=10)
    with pytest.raises(ValueError, match="log_every_n_steps"):
        PLRFModule(4, 16, 1.0, 1.5, 2, schedule, log_every_n_steps=-1)
    with pytest.raises(ValueError, match="batch_size"):
        PLRFStream(problem, 0, seed=0)
