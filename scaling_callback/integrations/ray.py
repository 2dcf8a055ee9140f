"""Ray Tune: our stopping policies as a Tune scheduler, sweep runs as Tune trials, ``sweep --backend ray``.

* :class:`PolicyScheduler` applies any stopping policy (the law policy by default) to the curves
  Tune trials report: each result's ``time_attr`` is x, its ``metric`` the loss. It is a drop-in
  for Ray's own ``ASHAScheduler`` (``benchmarks/bench_ray.py`` compares the two on the same trials).
* :func:`sweep_trainable` turns a sweep config into a Tune function trainable: each trial trains one
  run of the grid with the scaling callback attached, writing to a store URL every node can reach.
* :func:`run_sweep_on_ray` is ``scaling-callback sweep CONFIG --backend ray [--address ADDR]``: the
  local runner's grid, resume and store, with Ray placing the runs (one CPU each).

Needs the optional ``ray`` extra (``pip install 'scaling-callback[ray]'``).
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import lightning.pytorch as pl
import numpy as np

try:
    from ray import tune
    from ray.tune.schedulers import FIFOScheduler, TrialScheduler
except ImportError as error:  # pragma: no cover - depends on the environment
    raise ImportError(
        "scaling_callback.integrations.ray needs Ray Tune: pip install 'scaling-callback[ray]'"
    ) from error

from scaling_callback.errors import InputError
from scaling_callback.stopping import Decision, RunView, SweepView, make_policy

if TYPE_CHECKING:
    from ray.tune.experiment import Trial

    from scaling_callback.sweep.config import SweepConfig
    from scaling_callback.sweep.runner import SweepOutcome

__all__ = ["PolicyScheduler", "TuneReporter", "reachable_address", "run_sweep_on_ray", "sweep_trainable"]

# A live Ray head answers its cluster-id call within one round trip (milliseconds inside a data centre, well
# under 1 s across continents; the GCS answers it from memory); Linux resends an unanswered SYN after 1, 3 and
# 7 s, so 10 s outlasts three lost SYNs, and an address silent that long is down or filtered. Without this
# check ray.init retries an unreachable address for about 13 minutes (20 tries of ~41 s, measured with Ray
# 2.60) before giving up. A head still recovering its state (Ray allows it ~20 s or more) fails it: retry then.
CONNECT_TIMEOUT_S = 10.0


class PolicyScheduler(FIFOScheduler):
    """A Tune scheduler that stops a trial when ``policy.decide(trial's curve, the sweep's curves)`` says so.

    Args:
        policy: any stopping policy (default: ``make_policy("law")``).
        metric: the reported loss (``tune.TuneConfig(metric=...)`` also sets it).
        mode: must be ``min`` (a loss).
        time_attr: the reported resource, increasing (optimizer steps, tokens...).
        budget: x of a trial's planned end: a number or a function of the trial's config.
        lr_schedule: a function of the config giving the planned LR of every step 1..budget (law policy).
        compute_per_x: a function of the config giving compute per unit of x (frontier objective).
        run_name: a function of the trial giving the run's name (default: ``config["run"]["name"]``, else the trial id).
        store: a store URL; each stop is recorded there (decision and ``stopped`` status).

    Trials that completed are the sweep's finished runs, those it stopped its stopped runs; errored
    trials are left out. ``decisions`` maps each run name to the policy's latest :class:`Decision`.
    """

    def __init__(
        self,
        policy: Any = None,
        *,
        metric: str | None = None,
        mode: str | None = "min",
        time_attr: str = "training_iteration",
        budget: float | Callable[[dict], float] | None = None,
        lr_schedule: Callable[[dict], np.ndarray] | None = None,
        compute_per_x: Callable[[dict], float] | None = None,
        run_name: Callable[[Trial], str] | None = None,
        store: str | None = None,
    ) -> None:
        super().__init__()
        if budget is None:
            raise InputError(
                "PolicyScheduler needs budget: x of a trial's planned end (a number or a function of its config)"
            )
        if not callable(budget) and not (isinstance(budget, (int, float)) and budget > 0):
            raise InputError(f"budget must be a positive number or a function of the config, got {budget!r}")
        _check_mode(mode)
        self.policy = policy if policy is not None else make_policy("law")
        self._metric, self._mode, self.time_attr = metric, mode, time_attr
        self.budget, self.lr_schedule, self.compute_per_x = budget, lr_schedule, compute_per_x
        self._run_name = run_name
        self.store = store
        self.decisions: dict[str, Decision] = {}
        self._curves: dict[str, tuple[list[float], list[float]]] = {}
        self._status: dict[str, str] = {}
        self._configs: dict[str, dict] = {}

    def set_search_properties(self, metric: str | None, mode: str | None, **spec: Any) -> bool:
        if self._metric and metric and metric != self._metric:
            return False  # set here already (Tune's rule for every scheduler)
        if metric:
            self._metric = metric
        if mode:
            _check_mode(mode)
            self._mode = mode
        return True

    def on_trial_add(self, tune_controller: Any, trial: Trial) -> None:
        name = self.name_of(trial)
        self._curves.setdefault(name, ([], []))
        self._status[name] = "running"
        self._configs[name] = dict(trial.config)

    def on_trial_result(self, tune_controller: Any, trial: Trial, result: dict) -> str:
        if self._metric is None:
            raise InputError("PolicyScheduler needs metric: the name of the reported loss")
        name = self.name_of(trial)
        if self._metric not in result or self.time_attr not in result:
            return TrialScheduler.CONTINUE
        x, loss = float(result[self.time_attr]), float(result[self._metric])
        xs, losses = self._curves.setdefault(name, ([], []))
        if math.isfinite(loss) and loss > 0 and (not xs or x > xs[-1]):
            xs.append(x)
            losses.append(loss)
        self._configs.setdefault(name, dict(trial.config))
        run = self._view(name, "running")
        others = tuple(
            self._view(n, s) for n, s in self._status.items() if n != name and s != "failed" and self._curves[n][0]
        )
        decision = self.policy.decide(run, SweepView(others + (run,)))
        self.decisions[name] = decision
        if not decision.stop:
            return TrialScheduler.CONTINUE
        self._status[name] = "stopped"
        if self.store is not None:
            self._record_stop(name, int(xs[-1]) if xs else 0, decision)
        return TrialScheduler.STOP

    def on_trial_complete(self, tune_controller: Any, trial: Trial, result: dict) -> None:
        name = self.name_of(trial)
        if self._status.get(name) != "stopped":
            self._status[name] = "finished"

    def on_trial_error(self, tune_controller: Any, trial: Trial) -> None:
        self._status[self.name_of(trial)] = "failed"

    def on_trial_remove(self, tune_controller: Any, trial: Trial) -> None:
        name = self.name_of(trial)
        if self._status.get(name) == "running":
            self._status[name] = "failed"

    def debug_string(self) -> str:
        counts = {s: list(self._status.values()).count(s) for s in ("running", "finished", "stopped")}
        return f"PolicyScheduler({getattr(self.policy, 'name', type(self.policy).__name__)}): {counts}"

    def name_of(self, trial: Trial) -> str:
        """The run name of a trial (see ``run_name``)."""
        if self._run_name is not None:
            return str(self._run_name(trial))
        run = trial.config.get("run") if isinstance(trial.config, dict) else None
        return str(run["name"]) if isinstance(run, dict) and "name" in run else str(trial.trial_id)

    def _view(self, name: str, status: str) -> RunView:
        xs, losses = self._curves[name]
        config = self._configs.get(name, {})
        budget = float(self.budget(config) if callable(self.budget) else self.budget)
        if status != "running" and xs:
            budget = max(budget, xs[-1])
        lrs = None if self.lr_schedule is None else np.asarray(self.lr_schedule(config), dtype=float)
        per_x = 1.0 if self.compute_per_x is None else float(self.compute_per_x(config))
        return RunView(
            name, np.asarray(xs), np.asarray(losses), budget, "running" if status == "running" else status, lrs, per_x
        )

    def _record_stop(self, name: str, step: int, decision: Decision) -> None:
        """The trial's actor is ended by Tune, so the scheduler (on the driver) records the stop; never raises."""
        from scaling_callback.store import SweepStore

        try:
            store = SweepStore(self.store)
            try:
                if store.get_run(name) is None:
                    store.register_run(name, config=self._configs.get(name))
                store.add_decision(
                    name,
                    step,
                    True,
                    probability=decision.probability,
                    reason=decision.reason,
                    policy=getattr(self.policy, "name", type(self.policy).__name__),
                )
                store.mark_stopped(name, step, decision.reason)
            finally:
                store.close()
        except Exception as error:
            print(f"PolicyScheduler: could not record the stop of {name} in {self.store}: {error}", file=sys.stderr)


def _check_mode(mode: str | None) -> None:
    if mode not in (None, "min"):
        raise InputError(f"PolicyScheduler compares losses: mode must be 'min', got {mode!r}")


class TuneReporter(pl.Callback):
    """Report ``{"loss", "step"}`` to Ray Tune every ``every_n_steps`` optimizer steps (inside a Tune trial)."""

    def __init__(self, every_n_steps: int = 50) -> None:
        if int(every_n_steps) != every_n_steps or every_n_steps < 1:
            raise InputError(f"every_n_steps must be a positive integer, got {every_n_steps!r}")
        self.every_n_steps = int(every_n_steps)
        self._last_step = -1

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        step = trainer.global_step
        if step == self._last_step or step % self.every_n_steps:
            return
        self._last_step = step
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        if loss is not None:
            value = float(loss) * (trainer.accumulate_grad_batches if pl_module.automatic_optimization else 1)
            tune.report({"loss": value, "step": step})


def sweep_trainable(
    raw_config: dict, out_dir: str | Path, store_url: str, resume: bool = False, report_every_n_steps: int | None = None
) -> Callable[[dict], None]:
    """A Tune function trainable training ``config["run"]`` (a :class:`RunSpec` as a dict) of the sweep.

    The run writes to ``store_url`` (every node must reach it: PostgreSQL for several machines) and
    checkpoints under ``out_dir`` (a folder every node sees, for ``resume``). It reports the loss every
    ``report_every_n_steps`` (default: the config's ``callback.fit_every_n_steps``) and, at its end,
    the run's status, stop step and reason from the store.
    """
    from scaling_callback.store.engine import is_memory, normalise_url
    from scaling_callback.sweep.config import parse_config

    config = parse_config(raw_config)
    store_url = normalise_url(store_url)  # a relative path means the driver's folder, not the trial's
    if is_memory(store_url):
        raise InputError("sweep_trainable: an in-memory store cannot be shared with Ray workers; give a file or a URL")
    every = report_every_n_steps or config.callback.fit_every_n_steps
    out = str(Path(out_dir).resolve())

    def train_one_run(trial_config: dict) -> None:
        from scaling_callback.store import SweepStore
        from scaling_callback.sweep.runs import RunSpec
        from scaling_callback.sweep.train_run import train_run

        run = RunSpec(**trial_config["run"])
        train_run(raw_config, run, out, store_url, resume, extra_callbacks=[TuneReporter(every)])
        store = SweepStore(store_url)
        try:
            row = store.get_run(run.name) or {}
            last = store.last_step(run.name)
        finally:
            store.close()
        tune.report(
            {
                "step": last,
                "status": row.get("status"),
                "stop_step": row.get("stop_step"),
                "stop_reason": row.get("stop_reason") or "",
            }
        )

    return train_one_run


def run_sweep_on_ray(
    config: SweepConfig,
    raw_config: dict,
    out_dir: Path,
    workers: int | None = None,
    resume: bool = False,
    address: str | None = None,
    stream: TextIO | None = None,
) -> SweepOutcome:
    """Train every run of the grid not yet done as a Ray Tune trial; the same plan and outcome as the local runner.

    Without ``address`` a local Ray instance with ``workers`` CPUs is started (and stopped at the end);
    with it, the sweep joins that cluster (``auto``, or ``HOST:PORT``) and runs ``workers`` runs at once
    (default: as many as the cluster has CPUs).
    """
    import ray

    from scaling_callback.store.engine import is_memory, normalise_url
    from scaling_callback.sweep.runner import SweepOutcome, plan_runs, store_url

    stream = stream or sys.stdout
    out_dir = Path(out_dir).resolve()
    url = normalise_url(store_url(config, out_dir))
    if is_memory(url):
        raise InputError(
            "config key 'store': an in-memory store cannot be shared with Ray workers; give a file or a URL"
        )
    if address:
        address = reachable_address(address)  # before anything is written: an unreachable cluster fails at once
    if address and url.startswith("sqlite"):
        stream.write(
            "note: the store is a SQLite file; on several machines every node must see that file "
            "(a PostgreSQL URL is the safe choice, see docs/cluster.md)\n"
        )
    todo, skipped = plan_runs(config, raw_config, out_dir, resume)
    if not todo:
        return SweepOutcome([], skipped, {})
    n_workers = max(1, min(workers or config.workers, len(todo))) if (workers or not address) else None
    started = not ray.is_initialized()
    if started:
        options: dict[str, Any] = {"address": address} if address else {"num_cpus": n_workers}
        ray.init(include_dashboard=False, log_to_driver=False, **options)
    try:
        trainable = tune.with_resources(sweep_trainable(raw_config, out_dir, url, resume), {"cpu": 1})
        tuner = tune.Tuner(
            trainable,
            param_space={"run": tune.grid_search([run.config() for run in todo])},
            tune_config=tune.TuneConfig(max_concurrent_trials=n_workers, reuse_actors=False),
            run_config=tune.RunConfig(
                name=config.name,
                storage_path=str(out_dir / "ray_results"),
                verbose=0,
                callbacks=[_RunLines(stream)],
                failure_config=tune.FailureConfig(max_failures=0),
            ),
        )
        grid = tuner.fit()
    finally:
        if started:
            ray.shutdown()
    trained, failed = [], {}
    for result in grid:
        name = result.config["run"]["name"]
        if result.error is not None:
            failed[name] = f"{type(result.error).__name__}: {result.error}".splitlines()[0]
        else:
            trained.append(name)
    return SweepOutcome(sorted(trained), skipped, failed)


def reachable_address(address: str, timeout_s: float = CONNECT_TIMEOUT_S) -> str:
    """``address`` (``auto``, ``HOST:PORT`` or ``ray://HOST:PORT``) once a Ray head answers there.

    It asks the head what ``ray.init`` asks first — the GCS for its cluster id (a Ray Client server,
    ``ray://``, for its cluster info) — once, within ``timeout_s`` (:data:`CONNECT_TIMEOUT_S`). A TCP
    connect alone proves nothing where a proxy accepts every connection (this sandbox's does, and even
    speaks HTTP/2); a Ray head replies, or asks for the cluster's token, which ``ray.init`` sends.
    ``auto`` is resolved as Ray resolves it (``RAY_ADDRESS``, then the cluster last started here).
    Raises :class:`InputError` naming the address when it is malformed or nothing Ray answers there.
    """
    import grpc  # a dependency of ray[tune]

    target = address
    if address == "auto":
        from ray._private.services import canonicalize_bootstrap_address  # Ray's own lookup (no public API)

        try:
            target = canonicalize_bootstrap_address("auto") or ""
        except ConnectionError:
            target = ""
        if not target:
            raise InputError("--address auto: no running Ray cluster found here (start one: ray start --head)")
    client = target.startswith("ray://")
    host, _, port = target.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise InputError(f"--address {address!r}: expected auto, HOST:PORT or ray://HOST:PORT")
    method = "/ray.rpc.RayletDriver/ClusterInfo" if client else "/ray.rpc.NodeInfoGcsService/GetClusterId"
    channel = grpc.insecure_channel(f"{host}:{port}")
    try:
        channel.unary_unary(method)(b"", timeout=timeout_s)  # an empty request message; the reply is not read
    except grpc.RpcError as error:
        if error.code() != grpc.StatusCode.UNAUTHENTICATED:  # a head with token auth: it is there
            first = ((error.details() or "").splitlines() or [""])[0][:160]
            silent = error.code() == grpc.StatusCode.DEADLINE_EXCEEDED
            why = f"no answer within {timeout_s:g} s" if silent else f"{error.code().name}: {first}"
            raise InputError(f"--address {address}: no Ray cluster reachable at {host}:{port} ({why})") from None
    finally:
        channel.close()
    return address


class _RunLines(tune.Callback):
    """One line per run that ends (Tune's own table is turned off)."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def __getstate__(self) -> dict:  # Tune saves its callbacks with the experiment; a terminal stream does not pickle
        return {}

    def __setstate__(self, state: dict) -> None:
        self.stream = sys.stdout

    def on_trial_complete(self, iteration: int, trials: list, trial: Trial, **info: Any) -> None:
        result = trial.last_result or {}
        status = result.get("status") or "done"
        extra = f" at step {result.get('stop_step')}: {result.get('stop_reason')}" if status == "stopped" else ""
        self.stream.write(f"run {trial.config['run']['name']} {status}{extra}\n")
        self.stream.flush()

    def on_trial_error(self, iteration: int, trials: list, trial: Trial, **info: Any) -> None:
        self.stream.write(f"run {trial.config['run']['name']} failed (resume with --resume)\n")
        self.stream.flush()
