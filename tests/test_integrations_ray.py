"""Ray Tune: the policy scheduler on reported curves, and ``sweep --backend ray`` against the local runner."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import numpy as np
import pytest
import yaml

ray = pytest.importorskip("ray")

from conftest import PG_URL_VARIABLE, postgres_url  # noqa: E402
from curve_factory import TOTAL, TRUE_MPL, per_step_lrs, synthetic_curve  # noqa: E402

from scaling_callback.cli import main  # noqa: E402
from scaling_callback.errors import InputError  # noqa: E402
from scaling_callback.integrations.ray import PolicyScheduler, reachable_address  # noqa: E402
from scaling_callback.stopping import make_policy  # noqa: E402
from scaling_callback.store import SweepStore  # noqa: E402

TESTS = Path(__file__).resolve().parent
TINY = {
    "name": "tiny",
    "model": {"factory": "tiny_lm", "args": {"vocab_size": 16, "seq_len": 8, "batch_size": 4}},
    "grid": {
        "sizes": [{"d_model": 8, "n_layers": 1}, {"d_model": 16, "n_layers": 1}],
        "tokens": [2560],
        "schedules": ["cosine"],
        "peak_lrs": [0.01, 0.0003],
    },  # the low-LR runs fall clearly behind
    "optimizer": {"peak_lr": 0.01, "warmup_steps": 4},
    "callback": {"fit_every_n_steps": 10},
    "stopping": {"policy": "median", "n_startup_runs": 1, "interval_steps": 10, "confirmations": 1},
    "frontier": {"bootstrap": 50},
    "workers": 1,
    "checkpoint_every_n_steps": 10,
}


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray instance (2 CPUs) for the module; its workers import the tests' helper modules."""
    previous = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join([str(TESTS.parent), str(TESTS)] + ([previous] if previous else []))
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()
    if previous is None:
        os.environ.pop("PYTHONPATH", None)
    else:
        os.environ["PYTHONPATH"] = previous


LEVELS = [3.0, 3.5, 3.4]
EVERY = 8  # a report every 8 logged points (320 steps): few enough law-policy judgements for a test


def _replay_curve(config: dict) -> None:
    from ray import tune

    curve = synthetic_curve("constant", noise=0.001, seed=config["seed"], params=TRUE_MPL | {"L0": config["level"]})
    for step, loss in zip(curve.steps[::EVERY], curve.loss[::EVERY]):
        tune.report({"loss": float(loss), "step": int(step)})


def _sequential_stops(levels: list[float]) -> dict[float, int]:
    """The last step of each trial when a fresh law policy judges every report, trials run one after another."""
    from scaling_callback.stopping import RunView, SweepView

    policy, done, last = make_policy("law"), [], {}
    lrs = per_step_lrs("constant")
    for level in levels:
        curve = synthetic_curve("constant", noise=0.001, seed=0, params=TRUE_MPL | {"L0": level})
        steps, losses = curve.steps[::EVERY].astype(float), curve.loss[::EVERY].astype(float)
        status = "finished"
        for i in range(1, len(steps) + 1):
            run = RunView(f"level{level}", steps[:i], losses[:i], TOTAL, "running", lrs)
            if policy.decide(run, SweepView(tuple(done) + (run,))).stop:
                status = "stopped"
                break
        last[level] = int(steps[i - 1])
        budget = TOTAL if status == "stopped" else max(TOTAL, steps[i - 1])
        done.append(RunView(f"level{level}", steps[:i], losses[:i], budget, status, lrs))
    return last


@pytest.mark.slow
def test_the_policy_scheduler_stops_worse_trials_and_records_why(local_ray, tmp_path):
    from ray import tune

    store = f"sqlite:///{tmp_path / 'tune.sqlite'}"
    scheduler = PolicyScheduler(
        make_policy("law"),
        metric="loss",
        time_attr="step",
        budget=TOTAL,
        lr_schedule=lambda config: per_step_lrs("constant"),
        store=store,
        run_name=lambda trial: f"level{trial.config['level']}",
    )
    tuner = tune.Tuner(
        _replay_curve,
        param_space={"level": tune.grid_search(LEVELS), "seed": 0},
        tune_config=tune.TuneConfig(scheduler=scheduler, max_concurrent_trials=1),
        run_config=tune.RunConfig(storage_path=str(tmp_path / "ray"), verbose=0),
    )
    results = {r.config["level"]: r for r in tuner.fit()}
    last = {level: r.metrics["step"] for level, r in results.items()}
    end = int(synthetic_curve("constant").steps[::EVERY][-1])
    assert last[3.0] == end  # the best trial runs to its end
    assert last[3.5] < end and last[3.4] < end  # clearly worse ones are stopped early
    stop = scheduler.decisions["level3.5"]
    assert stop.stop and stop.reason and stop.probability < 0.05
    assert last == _sequential_stops(LEVELS)  # exactly what the policy decides on the same curves, one trial at a time
    recorded = SweepStore(store)
    row = recorded.get_run("level3.5")
    assert row["status"] == "stopped" and row["stop_reason"] == stop.reason and row["stop_step"] == last[3.5]
    assert recorded.decisions("level3.5").stop.tolist() == [True]


def test_the_policy_scheduler_refuses_what_it_cannot_compare():
    with pytest.raises(InputError, match="budget"):
        PolicyScheduler()
    with pytest.raises(InputError, match="mode must be 'min'"):
        PolicyScheduler(budget=10, mode="max")


def _write(path: Path, config: dict) -> Path:
    path.write_text(yaml.safe_dump(config))
    return path


def _outcome(store_url: str) -> dict:
    store = SweepStore(store_url)
    try:
        runs = store.runs("tiny")
        result = {name: (status, step) for name, status, step in zip(runs.name, runs.status, runs.stop_step)}
        points = {name: store.points(name) for name in runs.name}
        decisions = {
            (name, int(d.step), bool(d.stop), d.kind) for name in runs.name for d in store.decisions(name).itertuples()
        }
    finally:
        store.close()
    return {"runs": result, "points": points, "decisions": decisions}


# Synchronous stop checks, one run at a time in the planned order (docs/early-stopping.md, "When a stop lands"):
# every decision of the law policy is then a function of the config alone. 4 sizes x 2 budgets of finished runs
# give a frontier fit (>= 8 runs, >= 3 sizes); the twin of d16 trained at 3 % of the peak LR (same N, so its
# forecasts never stand in for an observed final) is a stop to make at each budget.
SYNC = TINY | {
    "model": {"factory": "handicap_factory:build", "args": {"vocab_size": 64, "seq_len": 8, "batch_size": 4}},
    "grid": {
        "sizes": [
            {"d_model": 8, "n_layers": 1},
            {"d_model": 16, "n_layers": 1},
            {"d_model": 32, "n_layers": 1},
            {"d_model": 32, "n_layers": 2},
            {"d_model": 16, "n_layers": 1, "lr_factor": 0.03},
        ],
        "tokens": [1280, 5120],
        "schedules": ["cosine"],
    },
    "callback": {"fit_every_n_steps": 20},
    "stopping": {"policy": "law", "n_startup_runs": 1, "interval_steps": 20, "confirmations": 1, "synchronous": True},
    "frontier": {"bootstrap": 20},
    "workers": 1,
    "checkpoint_every_n_steps": 40,
}


@pytest.mark.slow
def test_a_ray_sweep_gives_the_local_runners_runs_stops_curves_and_frontier(local_ray, tmp_path, request):
    """Same config, same seeds, synchronous stop checks: the same runs, decisions, curves and frontier on both backends.

    The Ray side writes to PostgreSQL when a server is configured (always in CI), else to a SQLite file
    (one backend, not both: this is the suite's longest test).
    """
    in_ci = os.environ.get("CI", "").lower() == "true"
    store_url = (
        postgres_url(request) if os.environ.get(PG_URL_VARIABLE) or in_ci else f"sqlite:///{tmp_path / 'ray.sqlite'}"
    )
    local_store = f"sqlite:///{tmp_path / 'local.sqlite'}"
    for side, url, backend in (("local", local_store, []), ("ray", store_url, ["--backend", "ray"])):
        path = _write(tmp_path / f"{side}.yaml", SYNC | {"store": url})
        assert main(["sweep", str(path), "--out", str(tmp_path / side), *backend]) == 0, side
    local, on_ray = _outcome(local_store), _outcome(store_url)
    assert sorted(local["runs"]) == sorted(on_ray["runs"]) and len(local["runs"]) == 10
    assert local["runs"] == on_ray["runs"]  # statuses and stop steps
    stops = sorted((name, step, kind) for name, step, stop, kind in local["decisions"] if stop)
    assert stops == sorted((name, step, kind) for name, step, stop, kind in on_ray["decisions"] if stop)
    assert {name for name, _, _ in stops} == {n for n in local["runs"] if "lr_factor" in n}  # the poor twins
    assert {kind for _, _, kind in stops} == {"stop"}
    assert local["decisions"] == on_ray["decisions"]  # every check: same step, same verdict
    for name, points in local["points"].items():
        last = local["runs"][name][1]
        assert points["step"].tolist() == on_ray["points"][name]["step"].tolist() == list(range(1, last + 1)), name
        for column in ("flops", "lr", "lr_sum", "loss"):
            np.testing.assert_allclose(
                on_ray["points"][name][column], points[column], rtol=1e-6, err_msg=f"{name} {column}"
            )
    summaries = [json.loads((tmp_path / side / "report" / "summary.json").read_text()) for side in ("local", "ray")]
    for key in ("runs", "finished", "stopped", "compute_saved"):
        assert summaries[0][key] == summaries[1][key], key
    fronts = [s["frontier"] for s in summaries]
    assert all(f["a"] is not None and f["a_ci"] for f in fronts)
    for one, other in (fronts, fronts[::-1]):  # each exponent lies in the other's interval
        for key in ("a", "b"):
            low, high = other[f"{key}_ci"]
            assert low <= one[key] <= high, key


@pytest.mark.slow
def test_a_killed_trial_process_resumes_gapless(local_ray, tmp_path):
    marker = tmp_path / "killed.pid"
    config = TINY | {
        "model": {
            "factory": "ray_kill_factory:build",
            "args": TINY["model"]["args"] | {"marker": str(marker), "kill_at": 25},
        },
        "grid": TINY["grid"] | {"tokens": [1280], "peak_lrs": []},
        "stopping": {"policy": "none"},
        "workers": 2,
    }
    path = _write(tmp_path / "sweep.yaml", config)
    out = tmp_path / "out"
    assert (
        main(["sweep", str(path), "--out", str(out), "--backend", "ray", "--no-report"]) == 1
    )  # the killed run failed
    assert marker.exists()
    store = SweepStore(out / "sweep.sqlite")
    killed = store.runs("tiny").set_index("name")
    assert sorted(killed.status) == ["finished", "running"]  # nobody could mark the killed one
    store.close()
    assert main(["sweep", str(path), "--out", str(out), "--backend", "ray", "--resume", "--no-report"]) == 0
    store = SweepStore(out / "sweep.sqlite")
    runs = store.runs("tiny")
    assert set(runs.status) == {"finished"} and len(runs) == 2
    for name in runs.name:
        assert store.points(name).step.tolist() == list(range(1, 41)), name  # gapless, no duplicates
    store.close()


def test_address_without_the_ray_backend_is_an_input_error(tmp_path, capsys):
    path = _write(tmp_path / "sweep.yaml", TINY)
    assert main(["sweep", str(path), "--out", str(tmp_path / "out"), "--address", "auto"]) == 2
    assert "--backend ray" in capsys.readouterr().err


def _free_port() -> int:
    with socket.socket() as probe:  # bound, then released: nothing listens there
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_an_unreachable_address_fails_at_once_naming_it_and_writes_nothing(tmp_path, capsys):
    address = f"127.0.0.1:{_free_port()}"
    path = _write(tmp_path / "sweep.yaml", TINY)
    out = tmp_path / "out"
    assert main(["sweep", str(path), "--out", str(out), "--backend", "ray", "--address", address]) == 2
    error = capsys.readouterr().err.strip()
    assert address in error and len(error.splitlines()) == 1
    assert not out.exists()


def test_an_address_that_accepts_but_never_answers_fails_within_the_bound():
    with socket.socket() as silent:  # the kernel completes the TCP handshake; nobody ever replies
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        address = f"127.0.0.1:{silent.getsockname()[1]}"
        with pytest.raises(InputError, match=address):
            reachable_address(address, timeout_s=0.5)


@pytest.mark.slow
def test_a_running_cluster_is_reachable(local_ray):
    address = ray.get_runtime_context().gcs_address
    assert reachable_address(address) == address
