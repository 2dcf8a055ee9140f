"""Ray Tune on the 2 local cores: our policy scheduler against Ray's ASHA, and a Ray sweep against the local runner.

Part ``scheduler``: the 27 recorded runs of the stopping benchmark's ``main`` group
(benchmarks/stopping_sweep.csv) replayed as Tune trials (each reports its logged points, one every 40
steps, with ``step`` as the resource), 4 at a time, under :class:`PolicyScheduler` with the law
policy and under Ray's real ``ASHAScheduler`` (its defaults, ``max_t`` the runs' 4000 steps), and
with FIFO (no stops) for reference. Per scheduler: compute used (FLOPs at each trial's last report over
the FLOPs of all runs to their end), whether the best run reached its end, and the regret of the
best completed run ((its final loss − the best final loss) / the best final loss), over ``--orders``
trial orders (the file's, then shuffled ones: who stops whom depends on who runs first).

Part ``sweep``: one 16-run sweep config (tiny LM: 4 widths × 4 token budgets, law policy with the
frontier objective) run by the local runner and by ``--backend ray``, 2 workers each: wall time,
the runs, which were stopped, and the frontier exponent with its interval.

    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_ray.py [--part scheduler|sweep|both] [--orders 2]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

HERE = Path(__file__).resolve().parent
SWEEP = HERE / "stopping_sweep.csv"


def _curves() -> dict[str, pd.DataFrame]:
    frame = pd.read_csv(SWEEP)
    main = frame[frame.group == "main"]
    return {name: run.sort_values("step").reset_index(drop=True) for name, run in main.groupby("run", sort=False)}


def _planned_lrs(run: pd.DataFrame) -> np.ndarray:
    """Per-step LRs 1..T from the logged ones (every 40 steps; linear in between)."""
    steps = np.arange(1, int(run.step.max()) + 1)
    return np.interp(steps, run.step.to_numpy(), run.lr.to_numpy())


def run_scheduler_part(orders: int) -> None:
    import ray
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler

    from scaling_callback.integrations.ray import PolicyScheduler
    from scaling_callback.stopping import make_policy

    curves = _curves()
    total_flops = sum(float(run.flops.iloc[-1]) for run in curves.values())
    finals = {name: float(run.loss.iloc[-1]) for name, run in curves.items()}
    best_name = min(finals, key=finals.get)
    budget = int(max(run.step.max() for run in curves.values()))
    lrs = {name: _planned_lrs(run) for name, run in curves.items()}
    payload = {name: run[["step", "flops", "loss"]].to_dict("list") for name, run in curves.items()}

    def replay(config: dict) -> None:
        run = payload[config["run"]]
        for step, flops, loss in zip(run["step"], run["flops"], run["loss"]):
            tune.report({"loss": float(loss), "step": int(step), "flops": float(flops)})

    schedulers = {
        "PolicyScheduler(law)": lambda: PolicyScheduler(
            make_policy("law"),
            metric="loss",
            mode="min",
            time_attr="step",
            budget=budget,
            lr_schedule=lambda c: lrs[c["run"]],
            run_name=lambda trial: trial.config["run"],
        ),
        "Ray ASHAScheduler": lambda: ASHAScheduler(time_attr="step", metric="loss", mode="min", max_t=budget),
        "FIFO (no stops)": lambda: FIFOScheduler(),
    }
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    rows = []
    try:
        rng = np.random.default_rng(0)
        names = list(curves)
        for order in range(orders):
            ordered = names if order == 0 else list(rng.permutation(names))
            for label, make in schedulers.items():
                began = time.perf_counter()
                tuner = tune.Tuner(
                    tune.with_resources(replay, {"cpu": 0.5}),
                    param_space={"run": tune.grid_search(ordered)},
                    tune_config=tune.TuneConfig(scheduler=make(), max_concurrent_trials=4),
                    run_config=tune.RunConfig(storage_path=tempfile.mkdtemp(prefix="bench_ray_"), verbose=0),
                )
                results = tuner.fit()
                wall = time.perf_counter() - began
                last = {r.config["run"]: r.metrics for r in results}
                used = sum(m["flops"] for m in last.values()) / total_flops
                completed = {name: m["loss"] for name, m in last.items() if m["step"] >= budget}
                regret = (
                    (min(completed.values()) - finals[best_name]) / finals[best_name] if completed else float("nan")
                )
                rows.append(
                    {
                        "order": order,
                        "scheduler": label,
                        "compute used": used,
                        "stopped": len(last) - len(completed),
                        "best kept": best_name in completed,
                        "regret": regret,
                        "wall s": wall,
                    }
                )
    finally:
        ray.shutdown()
    table = pd.DataFrame(rows)
    print(
        f"{len(curves)} recorded runs (stopping_sweep.csv main), 4 trials at a time on {os.cpu_count()} cores, "
        f"{orders} orders; best run {best_name} (final {finals[best_name]:.4f})"
    )
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    summary = table.groupby("scheduler", sort=False).agg(
        compute_used=("compute used", "mean"),
        best_kept=("best kept", "mean"),
        mean_regret=("regret", "mean"),
        worst_regret=("regret", "max"),
        stopped=("stopped", "mean"),
    )
    print(summary.to_string(float_format=lambda v: f"{v:.4f}"))
    law, asha = summary.loc["PolicyScheduler(law)"], summary.loc["Ray ASHAScheduler"]
    print(
        f"compute used law / ASHA: {law.compute_used / asha.compute_used:.2f}; "
        f"worst regret law {law.worst_regret:.4f} vs ASHA {asha.worst_regret:.4f}"
    )


SWEEP_CONFIG = {
    "name": "bench16",
    "model": {"factory": "tiny_lm", "args": {"vocab_size": 32, "seq_len": 16, "batch_size": 8}},
    "grid": {
        "sizes": [
            {"d_model": 8, "n_layers": 1},
            {"d_model": 16, "n_layers": 1},
            {"d_model": 24, "n_layers": 1},
            {"d_model": 32, "n_layers": 1},
        ],
        "tokens": [6400, 12800, 25600, 51200],
        "schedules": ["cosine"],
    },  # 16 (N, D) points for the frontier
    "optimizer": {"peak_lr": 0.01, "warmup_steps": 10},
    "callback": {"fit_every_n_steps": 25, "max_fit_fraction": 1.0, "fit_niceness": 0},
    "stopping": {"policy": "law", "objective": "frontier", "confirmations": 1, "n_startup_runs": 3},
    "frontier": {"bootstrap": 100},
    "workers": 2,
    "checkpoint_every_n_steps": 100,
}


def run_sweep_part() -> None:
    from scaling_callback.cli import main
    from scaling_callback.store import SweepStore

    root = Path(tempfile.mkdtemp(prefix="bench_ray_sweep_"))
    config_path = root / "sweep.yaml"
    config_path.write_text(yaml.safe_dump(SWEEP_CONFIG))
    outcomes = {}
    for backend in ("local", "ray"):
        out = root / backend
        began = time.perf_counter()
        code = main(["sweep", str(config_path), "--out", str(out), "--backend", backend])
        wall = time.perf_counter() - began
        store = SweepStore(out / "sweep.sqlite")
        runs = store.runs("bench16")
        store.close()
        summary = json.loads((out / "report" / "summary.json").read_text())
        outcomes[backend] = {
            "code": code,
            "wall": wall,
            "runs": set(runs.name),
            "stopped": dict(zip(runs.name[runs.status == "stopped"], runs.stop_step[runs.status == "stopped"])),
            "frontier": summary["frontier"],
            "compute_saved": summary["compute_saved"],
        }
    local, on_ray = outcomes["local"], outcomes["ray"]
    print(f"\n16-run sweep (tiny LM, 4 widths x 4 budgets, law policy), 2 workers on {os.cpu_count()} cores")
    for backend, o in outcomes.items():
        front = o["frontier"]
        a = f"{front['a']:.3f} {front['a_ci']}" if front["a"] is not None else "no fit"
        print(
            f"{backend:>6}: exit {o['code']}, wall {o['wall']:.1f} s, runs {len(o['runs'])}, "
            f"stopped {len(o['stopped'])} ({sorted(o['stopped'])}), compute saved {o['compute_saved']:.1%}, "
            f"frontier a = {a}"
        )
    print(
        f"wall ray / local: {on_ray['wall'] / local['wall']:.2f}; same runs: {local['runs'] == on_ray['runs']}; "
        f"same stopped runs: {set(local['stopped']) == set(on_ray['stopped'])}"
    )
    fronts = [local["frontier"], on_ray["frontier"]]
    if all(f["a"] is not None for f in fronts):
        agree = all(other["a_ci"][0] <= one["a"] <= other["a_ci"][1] for one, other in (fronts, fronts[::-1]))
        print(f"frontier exponents within each other's interval: {agree}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("scheduler", "sweep", "both"), default="both")
    parser.add_argument("--orders", type=int, default=2)
    args = parser.parse_args()
    if args.part in ("scheduler", "both"):
        run_scheduler_part(args.orders)
    if args.part in ("sweep", "both"):
        run_sweep_part()


if __name__ == "__main__":
    main()
