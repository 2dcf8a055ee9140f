"""ScalingLawCallback in real (tiny) Lightning runs: exact LR sums, un-scaled loss, FLOPs, fits and
priors, resume without double counting, early-stopping seam, odd models, LightningCLI config."""

from __future__ import annotations

import csv
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import pytest
import torch
from callback_models import BASE_LR, BATCH, MPLShaped, Regressor, SlowSteps, loader, lr_factor, trainer
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from scaling_callback import ScalingLawCallback, SweepStore
from scaling_callback.errors import InputError

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "callback_lightningcli.yaml"


def test_lr_sum_loss_and_flops_with_gradient_accumulation(tmp_path):
    total = 40
    callback = ScalingLawCallback(
        store=tmp_path / "s.sqlite",
        run_name="acc",
        fit_worker="thread",
        fit_every_n_steps=1000,
        log_every_n_steps=5,
        wait_for_final_fit=True,
    )
    model = Regressor(total)
    run = trainer(
        tmp_path,
        callback,
        max_steps=total,
        accumulate_grad_batches=2,
        limit_val_batches=2,
        logger=CSVLogger(tmp_path, name="logs", version="acc"),
    )
    run.fit(model, loader(), loader(n=16, seed=1))  # 20 micro-batches per epoch: validation every 10 steps
    points = SweepStore(tmp_path / "s.sqlite").points("acc")
    assert points.step.tolist() == list(range(1, total + 1))

    expected_lrs = [BASE_LR * lr_factor(i, total) for i in range(total)]
    expected_sums = np.cumsum(expected_lrs)
    assert np.max(np.abs(points.lr_sum / expected_sums - 1)) < 1e-9
    np.testing.assert_allclose(points.lr, expected_lrs, rtol=1e-15)

    raw = np.array(model.raw_losses).reshape(total, 2).mean(axis=1)  # un-scaled mean of each step's 2 micro-batches
    np.testing.assert_allclose(points.loss, raw, rtol=1e-6)
    assert points.samples.tolist() == [2 * BATCH * s for s in range(1, total + 1)]

    x, y = next(iter(loader()))
    with FlopCounterMode(display=False) as counter:
        nn.functional.mse_loss(Regressor().net(x).squeeze(-1), y).backward()
    per_micro_batch = counter.get_total_flops()
    assert abs(points.flops.iloc[-1] / (per_micro_batch * 2 * total) - 1) < 0.03

    with open(tmp_path / "logs" / "acc" / "metrics.csv") as handle:
        rows = [r for r in csv.DictReader(handle) if r.get("scaling/lr_sum")]
    assert [int(r["step"]) for r in rows] == list(range(5, total + 1, 5))
    for row in rows:
        step = int(row["step"])
        assert abs(float(row["scaling/lr_sum"]) / expected_sums[step - 1] - 1) < 1e-9
        assert abs(float(row["scaling/flops"]) / (per_micro_batch * 2 * step) - 1) < 0.03
        assert (
            float(row["scaling/lr"]) == expected_lrs[step - 1]
        )  # the LR the step used, so the log alone can be fitted
        assert abs(float(row["scaling/loss"]) / raw[step - 1] - 1) < 1e-6
    assert rows[-1]["scaling/pred_final_high"] != ""  # the final fit reached the logger on the last step

    stored = SweepStore(tmp_path / "s.sqlite")
    run_row = stored.get_run("acc")
    assert run_row["status"] == "finished" and run_row["max_steps"] == total
    assert run_row["flops_source"] == "measured live"  # Regressor's .item() cannot run on the meta copy
    np.testing.assert_allclose(stored.planned_schedule("acc"), expected_lrs, rtol=1e-15)
    evals = stored.evals("acc")
    assert evals.step.tolist() == [10, 20, 30, 40] and set(evals.name) == {"val_loss"}


def test_online_fits_take_the_sweep_prior_from_finished_runs(tmp_path):
    store = tmp_path / "sweep.sqlite"
    first = ScalingLawCallback(
        store=store, run_name="done", sweep="wsd", fit_every_n_steps=1000, fit_worker="thread", wait_for_final_fit=True
    )
    trainer(tmp_path, first, max_steps=300).fit(MPLShaped(300, decay_from=150), loader(n=8 * 300))
    finished = SweepStore(store).fits("done").iloc[-1]
    assert finished.final and finished.status == "ok"

    second = ScalingLawCallback(
        store=store,
        run_name="new",
        sweep="wsd",
        fit_every_n_steps=100,
        max_fit_fraction=None,
        fit_worker="thread",
        wait_for_final_fit=True,
    )
    trainer(tmp_path, second, max_steps=300).fit(MPLShaped(300, decay_from=250), loader(n=8 * 300))
    fits = SweepStore(store).fits("new")
    early = fits[~fits.final].iloc[0]
    assert early.step < 250 and early.drop_term == "sweep prior" and early.forecast["evidence"]["donors"] == ["done"]
    assert np.isfinite(early.pred_final_loss) and early.pred_final_low <= early.pred_final_loss <= early.pred_final_high
    assert early.record["conventions"]["n_params"] == 1 and "FlopCounterMode" in early.record["conventions"]["flops"]
    assert second.latest_fit["final"] and SweepStore(store).get_run("new")["status"] == "finished"


class CrashAt(pl.Callback):
    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if trainer.global_step == self.step:
            raise RuntimeError("simulated crash")


def _plain(value) -> bool:
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return all(_plain(v) for v in value)
    return value is None or isinstance(value, (bool, int, float, str, torch.Tensor))


def test_resume_from_mid_epoch_checkpoint_has_no_duplicate_or_missing_steps(tmp_path, store_url):
    store = store_url
    reference = ScalingLawCallback(store=store, run_name="reference", fit_worker="thread", fit_every_n_steps=1000)
    trainer(tmp_path, reference, max_steps=30).fit(Regressor(30), loader())  # 20 batches per epoch

    checkpoints = ModelCheckpoint(dirpath=tmp_path / "ckpt", every_n_train_steps=7, save_top_k=-1)
    crashing = ScalingLawCallback(store=store, fit_worker="thread", fit_every_n_steps=1000, flush_every_n_steps=3)
    with pytest.raises(RuntimeError, match="simulated crash"):
        trainer(
            tmp_path, crashing, max_steps=30, enable_checkpointing=True, extra_callbacks=[checkpoints, CrashAt(24)]
        ).fit(Regressor(30), loader())
    name = crashing.run
    assert SweepStore(store).get_run(name)["status"] == "failed"
    assert SweepStore(store).last_step(name) == 24  # flushed on the exception

    checkpoint = tmp_path / "ckpt" / "epoch=1-step=21.ckpt"  # mid-epoch: step 21 is batch 1 of epoch 2
    saved = torch.load(checkpoint, weights_only=True)  # primitives and tensors only
    state = next(v for k, v in saved["callbacks"].items() if "ScalingLawCallback" in k)
    assert _plain(state) and state["totals"]["step"] == 21 and state["run_name"] == name

    resumed = ScalingLawCallback(
        store=store, fit_worker="thread", fit_every_n_steps=1000
    )  # run name from the checkpoint
    trainer(tmp_path, resumed, max_steps=30).fit(Regressor(30), loader(), ckpt_path=checkpoint)
    assert resumed.run == name
    points, expected = SweepStore(store).points(name), SweepStore(store).points("reference")
    assert points.step.tolist() == list(range(1, 31))
    for column in ("samples", "flops", "lr", "lr_sum"):
        np.testing.assert_allclose(points[column], expected[column], rtol=1e-12)
    np.testing.assert_array_equal(resumed._recorder.column("step"), np.arange(1, 31))
    assert SweepStore(store).get_run(name)["status"] == "finished"

    restored = ScalingLawCallback()
    restored.load_state_dict(state)
    again = restored.state_dict() if restored._recorder is not None else {}
    assert again["totals"] == state["totals"]
    torch.testing.assert_close(again["curve"], state["curve"], rtol=0, atol=0, equal_nan=True)


class NaNAtFifth(Regressor):
    def training_step(self, batch, batch_idx):
        loss = super().training_step(batch, batch_idx)
        return loss + torch.tensor(float("nan")) if batch_idx % 5 == 4 else loss  # NaN value, finite gradients


class NoParameters(pl.LightningModule):
    def training_step(self, batch, batch_idx):
        return batch[0].pow(2).mean().requires_grad_()  # a loss, but nothing to train

    def configure_optimizers(self):
        return None


@pytest.mark.parametrize("case", ["nan_loss", "no_parameters", "no_scheduler"])
def test_odd_runs_do_not_crash_training(tmp_path, case):
    model = {
        "nan_loss": NaNAtFifth(20),
        "no_parameters": NoParameters(),
        "no_scheduler": Regressor(20, scheduler=False),
    }[case]
    callback = ScalingLawCallback(
        store=tmp_path / "s.sqlite",
        run_name=case,
        fit_worker="thread",
        fit_every_n_steps=5,
        max_fit_fraction=None,
        wait_for_final_fit=True,
    )
    trainer(tmp_path, callback, max_steps=20, max_epochs=1).fit(model, loader())
    store = SweepStore(tmp_path / "s.sqlite")
    points, run = store.points(case), store.get_run(case)
    assert points.step.tolist() == list(range(1, 21)) and run["status"] == "finished"
    if case == "no_parameters":  # Lightning steps a stand-in optimizer with no LR: nothing to sum, nothing to fit
        assert run["n_params"] == 0 and points.flops.iloc[-1] == 0 and points.lr.isna().all()
        assert store.fits(case).status.str.startswith("failed").all()
        return
    if case == "nan_loss":
        assert points.loss.isna().sum() == 4 and store.fits(case).status.notna().all()
    else:
        np.testing.assert_allclose(points.lr_sum, BASE_LR * np.arange(1, 21), rtol=1e-12)
        np.testing.assert_allclose(store.planned_schedule(case), [BASE_LR] * 20)


def test_invalid_arguments_name_the_value(tmp_path):
    with pytest.raises(InputError, match=r"fit_every_n_steps.*0"):
        ScalingLawCallback(fit_every_n_steps=0)
    with pytest.raises(InputError, match="'fork'"):
        ScalingLawCallback(fit_worker="fork")
    with pytest.raises(InputError, match="StoppingPolicy"):
        ScalingLawCallback(early_stopping=object())
    with pytest.raises(InputError, match="directory"):
        ScalingLawCallback(store=tmp_path)


def test_lightningcli_example_config_builds_the_callback(tmp_path):
    """The example YAML's callback entry is what LightningCLI parses (via jsonargparse) into a callback."""
    jsonargparse = pytest.importorskip("jsonargparse")
    yaml = pytest.importorskip("yaml")
    entries = yaml.safe_load(CONFIG.read_text())["trainer"]["callbacks"]
    parser = jsonargparse.ArgumentParser()
    parser.add_argument("--callbacks", type=list[pl.Callback])
    built = parser.instantiate(parser.parse_object({"callbacks": entries})).callbacks
    assert len(built) == 1 and isinstance(built[0], ScalingLawCallback)
    assert built[0].sweep == "width-sweep" and built[0].fit_every_n_steps == 100 and built[0].config["width"] == 256


def _lightning_cli_available() -> bool:
    from lightning.pytorch import cli

    return bool(cli._JSONARGPARSE_SIGNATURES_AVAILABLE)


@pytest.mark.skipif(
    not _lightning_cli_available(), reason="LightningCLI needs jsonargparse[signatures] (not installed)"
)
def test_lightningcli_runs_the_example_config(tmp_path):
    from lightning.pytorch import cli

    lightning_cli = cli.LightningCLI(
        Regressor, run=False, args=["--config", str(CONFIG), "--trainer.default_root_dir", str(tmp_path)]
    )
    assert sum(isinstance(c, ScalingLawCallback) for c in lightning_cli.trainer.callbacks) == 1


@pytest.mark.slow
def test_sigkill_loses_at_most_the_unflushed_points_and_resume_is_gapless(tmp_path):
    import os
    import subprocess
    import sys

    script = Path(__file__).with_name("kill_train_script.py")
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", PYTHONWARNINGS="ignore")
    killed = subprocess.run(
        [sys.executable, str(script), str(tmp_path), "kill"], env=env, timeout=180, capture_output=True
    )
    assert killed.returncode == -9, killed.stderr[-2000:]
    store = SweepStore(tmp_path / "s.sqlite")
    kept = store.points("killed").step.tolist()
    # flushed every 5 steps, killed at 57: the steps after the last flush and at most one batch being written are lost
    assert kept == list(range(1, len(kept) + 1)) and len(kept) >= 57 - 2 * 5
    assert store.get_run("killed")["status"] == "running"  # nobody could say otherwise

    resumed = subprocess.run(
        [sys.executable, str(script), str(tmp_path), "resume"], env=env, timeout=180, capture_output=True
    )
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    points = SweepStore(tmp_path / "s.sqlite").points("killed")
    assert points.step.tolist() == list(range(1, 81))
    np.testing.assert_allclose(points.samples, 8 * points.step)
    lrs = [0.01 * (1.0 - 0.9 * min(i, 80) / 80) for i in range(80)]  # LinearLR 1.0 -> 0.1 over 80 steps
    np.testing.assert_allclose(points.lr_sum, np.cumsum(lrs), rtol=1e-9)
    assert SweepStore(tmp_path / "s.sqlite").get_run("killed")["status"] == "finished"


@pytest.mark.slow
def test_a_short_cpu_run_logs_a_prediction_early_by_default(tmp_path):
    """Default settings (2 % budget, process worker): the first fit is requested at 5 % of the planned steps."""
    callback = ScalingLawCallback(store=tmp_path / "s.sqlite", run_name="short")
    logger = CSVLogger(tmp_path, name="logs", version="short")
    run = trainer(
        tmp_path, callback, max_steps=600, logger=logger, log_every_n_steps=10, extra_callbacks=[SlowSteps(0.02)]
    )  # ~12 s: a 2 % budget alone would admit no online fit
    run.fit(Regressor(600), loader(n=8 * 600))
    callback.wait_for_fits(60)
    store = SweepStore(tmp_path / "s.sqlite")
    online = store.fits("short")
    online = online[~online["final"].astype(bool)]
    assert len(online) and int(online["step"].iloc[0]) == 30
    store.close()
    with open(Path(logger.log_dir) / "metrics.csv") as handle:
        rows = [row for row in csv.DictReader(handle) if row.get("scaling/pred_final_loss")]
    assert rows and int(rows[0]["step"]) < 600  # a prediction reached the logger during the run


class TwoOptimizersManual(pl.LightningModule):
    """Manual optimization with two optimizers, each stepped every batch (a GAN-style loop)."""

    def __init__(self) -> None:
        super().__init__()
        self.automatic_optimization = False
        self.a, self.b = nn.Linear(16, 1), nn.Linear(16, 1)

    def training_step(self, batch, batch_idx):
        x, y = batch
        first, second = self.optimizers()
        loss = nn.functional.mse_loss(self.a(x).squeeze(-1), y) + nn.functional.mse_loss(self.b(x).squeeze(-1), y)
        first.zero_grad()
        second.zero_grad()
        self.manual_backward(loss)
        first.step()
        second.step()
        return loss

    def configure_optimizers(self):
        return [torch.optim.SGD(self.a.parameters(), lr=0.01), torch.optim.SGD(self.b.parameters(), lr=0.02)]


def test_manual_optimization_with_two_optimizers_warns_and_says_what_it_records(tmp_path):
    callback = ScalingLawCallback(store=tmp_path / "s.sqlite", run_name="manual", fit_every_n_steps=None)
    with pytest.warns(UserWarning, match="2 optimizers"):
        trainer(tmp_path, callback, max_steps=20).fit(TwoOptimizersManual(), loader())
    store = SweepStore(tmp_path / "s.sqlite")
    steps = store.points("manual")["step"].tolist()
    store.close()
    assert steps[:3] == [2, 4, 6]  # global_step counts both optimizers' steps, as the warning says
