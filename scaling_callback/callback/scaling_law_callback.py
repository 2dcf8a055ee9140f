"""``ScalingLawCallback``: the Lightning adapter that records a run's curve, fits it online and stores both.

Thin glue over framework-free pieces: :mod:`recorder` (the per-step record), :mod:`flops`
(FLOPs and N), :mod:`planned_schedule` (LRs still to come), :mod:`online_fits` and
:mod:`fit_worker` (when and where fits run, within a CPU budget), :mod:`stopping` (the
early-stopping seam) and :mod:`scaling_callback.store`; :mod:`lightning_io` reads the Trainer.

Lightning facts it relies on (docs/reference.md, "Lightning"): the LR a step uses is read at
``on_before_optimizer_step``; ``on_train_batch_end`` fires per micro-batch, after ``global_step``
has advanced; in automatic optimization ``outputs["loss"]`` is the loss divided by
``accumulate_grad_batches``; state is initialised in ``setup`` and restored before
``on_train_start``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.utilities import rank_zero_warn
from torch.utils.flop_counter import FlopCounterMode

from scaling_callback.callback.arguments import check_arguments
from scaling_callback.callback.fit_job import FitRequest
from scaling_callback.callback.fit_worker import NICENESS, FitBudget, FitWorker, worker_for_store
from scaling_callback.callback.flops import MicroBatchFlops, count_parameters
from scaling_callback.callback.lightning_io import (
    first_optimizer,
    generated_run_name,
    log_points,
    optimization_note,
    plan_schedule,
    planned_total_steps,
    validation_values,
)
from scaling_callback.callback.online_fits import MIN_FIT_STEPS, OnlineFits, first_fit_step
from scaling_callback.callback.planned_schedule import PlannedSchedule, combined_lrs, warmup_steps_of
from scaling_callback.callback.recorder import Point, StepRecorder
from scaling_callback.callback.step_values import materialise, reduce_across_ranks
from scaling_callback.callback.stopping import StopSeam, decision_recorder
from scaling_callback.callback.store_views import compute_per_step
from scaling_callback.errors import InputError
from scaling_callback.store import BatchedWriter, SweepStore
from scaling_callback.store.engine import normalise_url

log = logging.getLogger("scaling_callback")
STATE_VERSION = 1
STORE_OPEN_TIMEOUT_S = 60.0  # longest wait for the writer thread to open the store, when the store object is needed


class ScalingLawCallback(Callback):
    """Record loss against steps, samples, tokens, FLOPs and LR sums; fit the per-run law online; share via a store.

    Example:
        >>> trainer = Trainer(max_steps=5000, callbacks=[ScalingLawCallback(store="sweep.sqlite", sweep="width")])

    Args:
        store: SQLite file path, SQLAlchemy URL or :class:`SweepStore`; None records, fits and logs without storing.
        run_name: the run's unique name in the store; default: generated (kept across resumes via the checkpoint).
        sweep: the sweep the run belongs to; its finished runs lend their drop-term fits as priors.
        fit_every_n_steps: optimizer steps between online fits (also the early-stopping check interval); None: record only.
        early_stopping: a :class:`~scaling_callback.stopping.StoppingPolicy` asked after each online fit.
        synchronous_stopping: each check (every ``fit_every_n_steps``) fits the curve up to its step and training
            waits for the policy's decision, so a stop lands on the check that decided it, the same on every
            rerun (docs/early-stopping.md); False: fits run in the background within ``max_fit_fraction``.
        law: per-run law to fit: ``mpl``, ``opl``, ``lldl`` or ``momentum``.
        config: the run's hyper-parameters, stored with the run.
        fit_worker: ``"process"`` (default; no GIL contention) or ``"thread"``.
        fit_niceness: ``nice`` increment of the fit process: 10 keeps training first; 0 lets fits (and so
            early stopping) keep up when every core is training, as in a sweep with one worker per core.
        max_fit_fraction: most CPU time fitting may take, as a fraction of wall time (None: no limit).
        budget_on_accelerator: apply ``max_fit_fraction`` also when training runs on a GPU (whose host CPU is mostly idle).
        max_fit_points: the curve is reduced to at most this many bin means before fitting.
        wait_for_final_fit: at the end of training wait for the final fit (True), never (False), or when the budget allows (None).
        final_fit_timeout_s: longest wait for the final fit (and, with ``synchronous_stopping``, for each check's).
        flops_per_batch: FLOPs of one micro-batch (forward+backward); default: module attribute, measurement, 6·N·D.
        measure_flops: measure FLOPs with ``FlopCounterMode`` on a meta-device copy (once per input shape).
        tokens_per_sample: tokens in each sample; default: counted when the first batch tensor is (batch, seq) integers.
        lr_group: param group of the first optimizer whose LR is recorded.
        val_metrics: names in ``trainer.callback_metrics`` recorded after validation; ``"auto"``: names with "val" and "loss".
        log_every_n_steps: steps between metric logs to the Trainer's loggers; default: the Trainer's.
        flush_every_n_steps: steps between store writes (a killed run loses at most this many points).
        flush_interval_s: also write when this many seconds passed since the last write.
        first_prediction_fraction: the first online fit is requested at this fraction of the planned steps (at
            the earliest warmup + 10 steps), outside the CPU budget, so that a short CPU run logs a prediction
            early (default 5 %: the answer arrives within the first 10 % of a run of ≥ ~1 min). Its cost, once per
            run: the fit process's start-up (≈ 2.3 CPU-s) and one fit (0.1–1.5 CPU-s), on another core; later
            fits wait until the budget has absorbed it. None: the budget decides from the first fit on.

    Every argument is checked here: a bad value raises :class:`~scaling_callback.errors.InputError` naming it.
    """

    def __init__(
        self,
        store: str | SweepStore | None = None,
        run_name: str | None = None,
        sweep: str | None = None,
        fit_every_n_steps: int | None = 100,
        early_stopping: Any = None,
        synchronous_stopping: bool = False,
        law: str = "mpl",
        config: dict | None = None,
        fit_worker: str = "process",
        fit_niceness: int = NICENESS,
        max_fit_fraction: float | None = 0.02,
        budget_on_accelerator: bool = False,
        max_fit_points: int = 128,
        wait_for_final_fit: bool | None = None,
        final_fit_timeout_s: float = 120.0,
        flops_per_batch: float | None = None,
        measure_flops: bool = True,
        tokens_per_sample: int | None = None,
        lr_group: int = 0,
        val_metrics: str | list[str] | None = "auto",
        log_every_n_steps: int | None = None,
        flush_every_n_steps: int = 100,
        flush_interval_s: float = 10.0,
        first_prediction_fraction: float | None = 0.05,
    ) -> None:
        check_arguments(**{k: v for k, v in locals().items() if k != "self"})
        self.store, self.run_name, self.sweep, self.law, self.config = store, run_name, sweep, law, config
        self.fit_every_n_steps, self.early_stopping, self.fit_worker = fit_every_n_steps, early_stopping, fit_worker
        self.fit_niceness, self.synchronous_stopping = int(fit_niceness), synchronous_stopping
        self.max_fit_fraction, self.budget_on_accelerator = max_fit_fraction, budget_on_accelerator
        self.max_fit_points, self.wait_for_final_fit, self.final_fit_timeout_s = (
            max_fit_points,
            wait_for_final_fit,
            final_fit_timeout_s,
        )
        self.flops_per_batch, self.measure_flops, self.tokens_per_sample = (
            flops_per_batch,
            measure_flops,
            tokens_per_sample,
        )
        self.lr_group, self.val_metrics, self.log_every_n_steps = lr_group, val_metrics, log_every_n_steps
        self.flush_every_n_steps, self.flush_interval_s = flush_every_n_steps, flush_interval_s
        self.first_prediction_fraction = first_prediction_fraction
        self._recorder: StepRecorder | None = None
        self._run: str | None = run_name
        self._reset()

    def _reset(self) -> None:
        self._restored_step = 0
        self._writer: BatchedWriter | None = None
        self._fits: OnlineFits | None = None
        self._trainer: Trainer | None = None
        self._stopping = StopSeam(self.early_stopping)
        self._next_fit_step = self.fit_every_n_steps or 0
        self._last_logged = 0
        self._rank_zero, self._world_size, self._scale = False, 1, 1
        self._live_count: FlopCounterMode | None = None

    # -------------------------------------------------------------- lifecycle
    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        if stage != "fit":
            return
        self._reset()
        self._trainer = trainer
        self._recorder = StepRecorder()
        self._rank_zero = trainer.is_global_zero
        self._world_size = trainer.world_size
        name = self.run_name or generated_run_name(self.sweep)
        self._run = name if self.run_name or self._world_size == 1 else trainer.strategy.broadcast(name, src=0)

    def state_dict(self) -> dict[str, Any]:
        if self._recorder is None:
            return {}
        if self._trainer is not None and self._recorder.pending:
            self._flush(self._trainer)
        state = self._recorder.state()
        policy_state = getattr(self.early_stopping, "state_dict", None)
        return {
            "version": STATE_VERSION,
            "run_name": self._run,
            "totals": state["totals"],
            "columns": state["columns"],
            "curve": torch.from_numpy(np.ascontiguousarray(state["curve"])),
            "next_fit_step": self._fits.next_step if self._fits is not None else self._next_fit_step,
            "policy": policy_state() if callable(policy_state) else None,  # the policy's own resume state (primitives)
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if not state_dict:
            return
        if self._recorder is None:
            self._recorder = StepRecorder()
        curve = state_dict["curve"]
        curve = curve.numpy() if isinstance(curve, torch.Tensor) else np.asarray(curve)
        self._recorder.load_state({"totals": state_dict["totals"], "columns": state_dict["columns"], "curve": curve})
        self._restored_step = self._recorder.step
        self._next_fit_step = int(state_dict.get("next_fit_step", self.fit_every_n_steps or 0))
        if self.run_name is None:
            self._run = state_dict["run_name"]
        if state_dict.get("policy") is not None and callable(getattr(self.early_stopping, "load_state_dict", None)):
            self.early_stopping.load_state_dict(state_dict["policy"])

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._trainer = trainer
        self._scale = trainer.accumulate_grad_batches if pl_module.automatic_optimization else 1
        self._optimizer = first_optimizer(trainer)
        if self._optimizer is not None and not 0 <= self.lr_group < len(self._optimizer.param_groups):
            raise InputError(
                f"lr_group={self.lr_group} but the first optimizer has {len(self._optimizer.param_groups)} param groups"
            )
        note = optimization_note(pl_module.automatic_optimization, len(trainer.optimizers), self.lr_group)
        if note:
            rank_zero_warn(note)
        self._counts = count_parameters(pl_module)
        self._flops = MicroBatchFlops(
            pl_module, self._counts.total, self.flops_per_batch, self.measure_flops, self.tokens_per_sample
        )
        self._device = trainer.strategy.root_device
        self._last_global_step = trainer.global_step
        self._last_flush = time.monotonic()
        self._log_every = self.log_every_n_steps or max(int(trainer.log_every_n_steps), 1)
        self._total_steps = planned_total_steps(trainer)
        self._plan: PlannedSchedule | None = None
        if not self._rank_zero:
            return  # other ranks record (they take part in the reductions) but neither store nor fit
        self._plan = plan_schedule(trainer, self._optimizer, self._total_steps, self.lr_group)
        self._open_store()
        if self.fit_every_n_steps is not None:
            budgeted = self._device.type == "cpu" or self.budget_on_accelerator
            self._fits = OnlineFits(
                self.fit_every_n_steps,
                FitBudget(self.max_fit_fraction if budgeted else None),
                self._make_worker,
                warmup_steps_of(self._schedule_lrs()) + MIN_FIT_STEPS,
                self._next_fit_step,
                first_fit_step(self.first_prediction_fraction, self._total_steps),
                self.synchronous_stopping,
            )
            if self._fits.budget.max_fraction is None or self.early_stopping is not None or self._fits.first_fit_step:
                self._fits.start_worker()  # start now, so that its imports overlap training (stopping wants early fits)

    def on_train_batch_start(self, trainer: Trainer, pl_module: LightningModule, batch: Any, batch_idx: int) -> None:
        if self._flops.watch_batch_start and self._flops.wants_live_count(batch):  # the meta copy cannot run it
            self._live_count = FlopCounterMode(display=False)
            self._live_count.__enter__()

    def on_before_optimizer_step(self, trainer: Trainer, pl_module: LightningModule, optimizer: Any) -> None:
        if self._optimizer is not None and (
            optimizer is self._optimizer or getattr(optimizer, "_optimizer", None) is self._optimizer
        ):
            self._recorder.set_lr(self._optimizer.param_groups[self.lr_group]["lr"])

    def on_train_batch_end(
        self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        recorder = self._recorder
        loss = outputs.get("loss") if isinstance(outputs, (dict, Mapping)) else outputs
        if isinstance(loss, torch.Tensor):
            loss = loss.detach() if loss.requires_grad else loss
        elif not isinstance(loss, (int, float)):
            loss = None
        samples, tokens, flops = self._flops.facts(batch, self._end_live_count() if self._live_count else None)
        recorder.add_micro_batch(loss, samples, tokens, flops)
        step = trainer.global_step
        if step == self._last_global_step:
            return  # accumulating: the optimizer has not stepped yet
        self._last_global_step = step
        if self._world_size > 1:
            payload = reduce_across_ranks(
                recorder.local_payload(), self._scale, self._world_size, self._device, trainer.strategy.reduce
            )
            recorder.end_step(step, payload)
        else:
            recorder.end_step(step)
        now = time.monotonic()
        if step % self.flush_every_n_steps == 0 or now - self._last_flush >= self.flush_interval_s:
            self._flush(trainer)
        fits = self._fits
        if fits is not None:
            if fits.busy:
                for result in fits.results():
                    self._on_fit_result(result)
            if fits.due(step, now):
                self._flush(trainer)
                fits.submit(self._request(final=False))
                if fits.synchronous:  # this step's check waits for its fit and the policy's decision
                    for result in fits.wait(self.final_fit_timeout_s):
                        self._on_fit_result(result)
        if self.early_stopping is not None and step % self.fit_every_n_steps == 0:
            if self._stopping.agree(lambda flag: trainer.strategy.reduce_boolean_decision(flag, all=False), step):
                trainer.should_stop = True  # on every rank, at the same step

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if not self._rank_zero or trainer.sanity_checking or self._writer is None or self.val_metrics is None:
            return
        values = validation_values(trainer.callback_metrics, self.val_metrics)
        if values:
            self._writer.submit(SweepStore.add_evals, self._run, trainer.global_step, values)

    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        points = self._flush(trainer, log=False)
        if not self._rank_zero:
            return
        step = self._recorder.step
        status, reason = self._stopping.end_status(step, self._total_steps)
        if self._writer is not None:
            self._writer.submit(SweepStore.update_run, self._run, flops_source=self._flops.source or "none")
            self._writer.submit(SweepStore.set_run_status, self._run, status, step=step, reason=reason)
        fits = self._fits
        if fits is not None:
            for result in fits.results():
                self._on_fit_result(result)
            if len(self._recorder) >= 3 and (fits.latest is None or fits.latest["step"] < step):
                fits.submit(self._request(final=True))
                wait = self.wait_for_final_fit
                if wait if wait is not None else fits.final_may_wait():
                    for result in fits.wait(self.final_fit_timeout_s):
                        self._on_fit_result(result)
        last = [p for p in self._recorder.points_after(step - 1) if p not in points]
        self._log(trainer, list(points) + last, final=True)

    def teardown(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        if stage == "fit":
            self._close()

    def _close(self, abandon_fits: bool = False) -> None:
        """Stop the fit worker, drain the store writer (Lightning skips ``teardown`` after an exception).

        ``abandon_fits`` (Ctrl-C): the fit in flight is dropped, not awaited at exit (a niced fit process
        still starting up under load held an interrupted sweep for 25 s)."""
        if self._fits is not None:
            self._fits.close(abandon_fits)  # else a final fit still running completes in the background, stored
        if self._writer is not None:
            self._writer.close()
            lost = self._writer.unwritten_points
            if lost:
                rank_zero_warn(
                    f"ScalingLawCallback: {lost} of run {self._run!r}'s points were not stored "
                    f"({len(self._writer.errors)} store writes failed; first: {self._writer.errors[0]})"
                )
            elif self._writer.errors:
                rank_zero_warn(
                    f"ScalingLawCallback: {len(self._writer.errors)} store writes failed; first: {self._writer.errors[0]}"
                )

    def on_exception(self, trainer: Trainer, pl_module: LightningModule, exception: BaseException) -> None:
        self._end_live_count()
        if self._recorder is None or not self._rank_zero:
            return
        try:
            self._flush(trainer, log=False)
        except Exception:
            pass
        if self._writer is not None:
            status = "interrupted" if isinstance(exception, KeyboardInterrupt) else "failed"
            reason = f"{type(exception).__name__}: {exception}"[:500]
            self._writer.submit(SweepStore.set_run_status, self._run, status, step=self._recorder.step, reason=reason)
        self._close(abandon_fits=isinstance(exception, KeyboardInterrupt))

    # ------------------------------------------------------------- recording
    def _end_live_count(self) -> float | None:
        if self._live_count is None:
            return None
        counter, self._live_count = self._live_count, None
        counter.__exit__(None, None, None)
        return float(counter.get_total_flops())

    def _flush(self, trainer: Trainer, log: bool = True) -> list[Point]:
        points = self._recorder.commit(lambda payloads: materialise(payloads, self._scale))
        self._last_flush = time.monotonic()
        if points and self._rank_zero:
            if self._writer is not None:
                self._writer.add_points(self._run, points)
            if log:
                self._log(trainer, points)
        return points

    def _log(self, trainer: Trainer, points: list[Point], final: bool = False) -> None:
        """Log every ``log_every_n_steps`` steps; the planned last step waits for the end, to carry the final fit."""
        if not trainer.loggers:
            return
        last_step = self._recorder.step

        def due(point: Point) -> bool:
            regular = point.step % self._log_every == 0 and point.step != self._total_steps
            return point.step > self._last_logged and (regular or (final and point.step == last_step))

        logged = log_points(trainer.loggers, points, self.latest_fit, due)
        self._last_logged = max(self._last_logged, logged)

    def _open_store(self) -> None:
        """Open the store, register (or rewind) the run and store its plan, all on the writer thread."""
        if self.store is None:
            return
        self._writer = BatchedWriter(self.store)
        restored = self._recorder.points_after(0) if self._restored_step else []
        self._writer.submit(
            SweepStore.register_or_rewind,
            self._run,
            restored_step=self._restored_step,
            restored_points=restored,
            sweep=self.sweep,
            config=self.config,
            n_params=self._counts.total,
            n_params_nonembedding=self._counts.non_embedding,
            max_steps=self._total_steps,
            flops_source=self._flops.source or "pending",
            world_size=self._world_size,
        )
        if self._plan is not None:
            self._writer.submit(SweepStore.set_planned_schedule, self._run, self._schedule_lrs(), note=self._plan.note)

    @property
    def _store(self) -> SweepStore | None:
        return None if self._writer is None else self._writer.opened_store(timeout=STORE_OPEN_TIMEOUT_S)

    def _make_worker(self) -> FitWorker:
        url = (
            None
            if self.store is None
            else self.store.url
            if isinstance(self.store, SweepStore)
            else normalise_url(self.store)
        )
        return worker_for_store(self.fit_worker, url, lambda: self._store, self.fit_niceness)

    # -------------------------------------------------------------- fitting
    def _schedule_lrs(self) -> np.ndarray:
        return combined_lrs(self._recorder.column("lr"), self._plan, self._total_steps)

    def _request(self, final: bool) -> FitRequest:
        recorder = self._recorder
        judge, policy = self._stopping.for_request(final)
        steps = recorder.column("step")
        return FitRequest(
            run=self._run,
            step=recorder.step,
            steps=steps,
            loss=recorder.column("loss"),
            lrs=self._schedule_lrs(),
            law=self.law,
            sweep=self.sweep,
            final=final,
            max_points=self.max_fit_points,
            flops_per_step=compute_per_step(recorder.column("flops"), steps),
            judge=judge,
            policy=policy,
            conventions={
                "step": "optimizer steps (global_step)",
                "loss": "mean un-scaled training loss of the step's micro-batches, all ranks",
                "n_params": self._counts.total,
                "n_params_nonembedding": self._counts.non_embedding,
                "n_used": "none by the per-run law (steps and LR sums); both N recorded for cross-run laws",
                "flops": self._flops.convention,
                "lr_sum": "sum of the LRs used by all steps so far, warmup included",
                "lr_group": self.lr_group,
                "world_size": self._world_size,
            },
        )

    def _on_fit_result(self, result: dict[str, Any]) -> None:
        if result.get("status", "").startswith("failed"):
            log.info("ScalingLawCallback: fit at step %s %s", result.get("step"), result["status"])
        if result.get("worker_died") and self._writer is not None and result.get("step", -1) >= 0:
            # the worker stores its fits itself; one that died cannot say so: record the failed fit here
            self._writer.submit(
                SweepStore.add_fit,
                self._run,
                {**result, "law": self.law, "record": {"worker": "died during the fit; restarted for the next one"}},
            )
        if result.get("decision") is not None:  # the worker asked the policy right after the fit
            step, writer = int(result["step"]), self._writer
            record = None if writer is None else decision_recorder(writer, self._run, step, self.early_stopping)
            self._stopping.take(result, record)

    @property
    def run(self) -> str | None:
        """The run's name in the store."""
        return self._run

    @property
    def latest_fit(self) -> dict[str, Any] | None:
        """The most recent fit result received (a dict as stored in the ``fits`` table)."""
        return None if self._fits is None else self._fits.latest

    def wait_for_fits(self, timeout: float | None = None) -> bool:
        """Block until fits still running (e.g. the final one, after training) are stored; False on timeout."""
        if self._fits is None:
            return True
        self._fits.wait(timeout)
        return not self._fits.busy
