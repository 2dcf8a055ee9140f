"""Early stopping on a recorded sweep: the law policy against the median rule, ASHA and a fixed small budget.

The sweep (benchmarks/stopping_sweep.csv, written by make_stopping_sweep.py) is replayed with 4
parallel workers in several start orders — the file's own order, then random ones (a policy's
outcome depends on which runs finish first) —, under every policy at its default settings, with ``scaling_callback.stopping.replay``.
Per policy: mean compute saved, how often the best run was kept, mean and worst relative regret.

"At equal or lower regret": each baseline is also replayed over a grid of its aggressiveness knob
(median: warm-up fraction; ASHA: first rung and η; fixed budget: the fraction), and the setting
that saves the most while its worst regret over the orders is no higher than the law policy's,
and it keeps the best run at least as often, is reported.

Groups: ``main`` (27 runs: widths × LRs × cosine/WSD/constant; the best run is a WSD run ranked
~16th before its decay), ``crossing`` (8 runs whose early leaders end worst), ``main, doubling grid``
(main logged at 6 points per run, at budget/32 … budget) and ``240 runs`` (multi-power-law runs of
random size, LR and schedule). With the MPL paper's curves beside the project
(../shared/reference/mpl_curves), their 9 real curves (3 sizes × 3 schedules) are replayed as held-out
checks: all sizes in one sweep (with and without the LR column) and one sweep per size. Next to the project's own baselines, Optuna's real pruners (Median, Percentile,
SuccessiveHalving, Hyperband, Patient, Wilcoxon) are driven through ask / report / should_prune / tell
in the same replay (:mod:`scaling_callback.stopping.optuna_replay`).

    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_stopping.py [--orders 6] [--jobs 2] [--quick]

Per order, the law policy is also set against the best real Optuna pruner at equal or lower regret
(the pruner saving most among those whose regret in that order is no higher than the law policy's).
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

from scaling_callback.stopping import (
    FixedBudgetPolicy,
    LawPolicy,
    MedianPolicy,
    RunView,
    SuccessiveHalvingPolicy,
    replay,
)
from scaling_callback.stopping.optuna_replay import PRUNERS, OptunaPrunerPolicy
from scaling_callback.stopping.recorded import runs_from_frame

HERE = Path(__file__).resolve().parent
SWEEP = HERE / "stopping_sweep.csv"
MPL_CURVES = HERE.parents[1] / "shared" / "reference" / "mpl_curves"
MPL_WARMUP = 2160
GRIDS = {
    "median": [dict(warmup_fraction=f) for f in (0.0, 0.1, 0.2, 0.3, 0.5, 0.7, 0.85, 0.95)],
    "asha": [dict(min_resource=f, reduction_factor=eta) for f in (0.01, 0.03, 0.1, 0.3) for eta in (2.0, 3.0, 4.0)],
    "fixed": [dict(fraction=f) for f in (0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.85, 0.95)],
}


def make(name: str, setting: dict | None = None):
    setting = dict(setting or {})
    if name in PRUNERS:
        return OptunaPrunerPolicy(name)
    if name == "law":
        return LawPolicy(**setting)
    if name == "median":
        return MedianPolicy(**setting)
    if name == "asha":
        if "min_resource" in setting:  # a fraction of the (common) budget in the grid
            setting["min_resource"] = setting["min_resource"] * setting.pop("budget", 1.0)
        return SuccessiveHalvingPolicy(**setting)
    return FixedBudgetPolicy(**setting)


def load_groups() -> dict[str, list]:
    if not SWEEP.exists():
        raise SystemExit(f"{SWEEP} is missing: run benchmarks/make_stopping_sweep.py first")
    frame = pd.read_csv(SWEEP)
    groups = {
        g: runs_from_frame(frame[frame.group == g], "run", "step", "loss", "lr", "flops") for g in ("main", "crossing")
    }
    if MPL_CURVES.is_dir():
        parts = [pd.read_csv(p).assign(run=f"{p.parent.name}/{p.stem}") for p in sorted(MPL_CURVES.glob("*/*.csv"))]
        real = pd.concat(parts)
        groups["mpl-paper (real)"] = runs_from_frame(real, "run", "step", "loss", "lr", warmup_steps=MPL_WARMUP)
        groups["mpl-paper (real), no LR"] = runs_from_frame(real, "run", "step", "loss")
        for size in ("25M", "100M", "400M"):
            one = real[real.run.str.startswith(f"{size}/")]
            groups[f"mpl-paper {size} (real)"] = runs_from_frame(
                one, "run", "step", "loss", "lr", warmup_steps=MPL_WARMUP
            )
    groups["main, doubling grid"] = [doubling(r) for r in groups["main"]]
    if MPL_CURVES.is_dir():
        groups["mpl-paper (real), doubling grid"] = [doubling(r) for r in groups["mpl-paper (real)"]]
    groups["240 runs"] = many_runs(240)
    return groups


def doubling(run: RunView) -> RunView:
    """The run logged only at budget/32, /16, /8, /4, /2 and its end (6 points, as many published curves are)."""
    targets = run.budget / 2.0 ** np.arange(5, -1, -1)
    index = np.unique([int(np.argmin(np.abs(run.x - t))) for t in targets])
    return RunView(
        run.name,
        run.x[index],
        run.loss[index],
        run.budget,
        run.status,
        run.lrs,
        run.compute_per_x,
        None,
        run.step_per_x,
    )


def many_runs(n: int, seed: int = 0) -> list[RunView]:
    """n multi-power-law runs (Luo et al. 2025, eq. 1-2) of random L0, alpha, peak LR and schedule, 0.3 % noise."""
    from scaling_callback.laws.loss_curves import MULTI_POWER
    from scaling_callback.laws.lr_terms import lr_terms
    from scaling_callback.laws.schedule import Schedule

    rng = np.random.default_rng(seed)
    total, warmup, every = 2000, 100, 25
    steps = np.arange(warmup + every, total + 1, every)
    runs = []
    for i in range(n):
        peak = 10 ** rng.uniform(-3.7, -3.0)
        t = np.arange(1, total + 1)
        kind = ("cosine", "wsd", "constant")[i % 3]
        if kind == "cosine":
            lrs = peak * (0.1 + 0.45 * (1 + np.cos(np.pi * np.clip(t - warmup, 0, None) / (total - warmup))))
        elif kind == "wsd":
            lrs = np.where(t < 0.8 * total, peak, peak * (1 - 0.9 * (t - 0.8 * total) / (0.2 * total)))
        else:
            lrs = np.full(total, peak)
        lrs[:warmup] = peak * t[:warmup] / warmup
        schedule = Schedule.from_per_step(lrs, warmup)
        params = np.array([rng.uniform(2.0, 2.6), 0.6, rng.uniform(0.35, 0.6), 450.0, 2.0, 0.55, 0.5])
        loss = MULTI_POWER.loss(params, lr_terms([schedule], [steps])) * np.exp(0.003 * rng.standard_normal(steps.size))
        runs.append(RunView(f"run{i:03d}-{kind}", steps.astype(float), loss, float(total), "finished", lrs))
    return runs


def one_replay(job: tuple) -> tuple:
    """One replay; seed 0 is the file's own order (what ``replay-stopping`` does without --shuffle), others random."""
    group, seed, name, index, setting = job
    runs = GROUPS[group]
    order = None if seed == 0 else list(np.random.default_rng(seed).permutation([r.name for r in runs]))
    if name == "asha" and setting and "min_resource" in setting:
        setting = setting | {"budget": max(r.budget for r in runs)}
    result = replay(runs, make(name, setting), workers=4, order=order)
    return group, seed, name, index, result.compute_saved, result.best_kept, result.relative_regret, result.seconds


def compare_with_optuna(rows: pd.DataFrame) -> None:
    """Per sweep and order: the law policy against the best Optuna pruner whose regret is no higher."""
    print("Per order: the law policy against the best real Optuna pruner at equal or lower regret\n")
    print("| sweep | order | law saves | law keeps best | best Optuna pruner at <= regret | it saves | law ahead |")
    print("|---|---|---|---|---|---|---|")
    for (group, seed), part in rows.groupby(["group", "seed"], sort=False):
        law = part[part.policy == "law"].iloc[0]
        rivals = part[part.policy.str.startswith("optuna-") & (part.regret <= law.regret + 1e-12)]
        best = rivals.sort_values("saved", ascending=False).iloc[0] if len(rivals) else None
        name, saved = (best.policy, best.saved) if best is not None else ("none", 0.0)
        order = "file" if seed == 0 else f"random {seed}"
        print(
            f"| {group} | {order} | {law.saved:.1%} | {'yes' if law.kept else 'no'} | {name} | {saved:.1%} | "
            f"{'yes' if law.saved >= saved - 1e-12 else 'no'} |"
        )
    print()


def summarise(rows: pd.DataFrame) -> pd.DataFrame:
    return (
        rows.groupby(["group", "policy", "setting"], sort=False)
        .agg(
            saved=("saved", "mean"),
            kept=("kept", "mean"),
            regret=("regret", "mean"),
            worst=("regret", "max"),
            seconds=("seconds", "mean"),
        )
        .reset_index()
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--orders", type=int, default=6, help="start orders per sweep: the file's own, then random ones (default 6)"
    )
    parser.add_argument("--jobs", type=int, default=2, help="parallel replay processes (default 2)")
    parser.add_argument("--quick", action="store_true", help="default settings only (no baseline grids)")
    args = parser.parse_args()
    orders = args.orders
    started = time.perf_counter()
    jobs = [
        (g, seed, name, -1, None)
        for g in GROUPS
        for seed in range(orders)
        for name in ("law", "median", "asha", "fixed", *PRUNERS)
    ]
    if not args.quick:
        jobs += [
            (g, seed, name, i, s)
            for g in GROUPS
            for seed in range(orders)
            for name, grid in GRIDS.items()
            for i, s in enumerate(grid)
        ]
    jobs.sort(key=lambda j: j[2] != "law")  # the slow ones first
    with ProcessPoolExecutor(args.jobs) as pool:
        raw = list(pool.map(one_replay, jobs))
    rows = pd.DataFrame(raw, columns=["group", "seed", "policy", "setting", "saved", "kept", "regret", "seconds"])
    table = summarise(rows)
    defaults = table[table.setting == -1]
    compare_with_optuna(rows[rows.setting == -1])
    print(
        f"Replays: 4 workers, {orders} start orders per sweep (the file's own and random ones), {len(raw)} replays, "
        f"{time.perf_counter() - started:.0f} s wall\n"
    )
    print("Default settings (mean over orders; regret relative to the best final loss):\n")
    print("| sweep | policy | compute saved | best kept | mean regret | worst regret | s / replay |")
    print("|---|---|---|---|---|---|---|")
    for r in defaults.itertuples():
        print(
            f"| {r.group} | {r.policy} | {r.saved:.1%} | {r.kept:.0%} | {r.regret:.2%} | {r.worst:.2%} | {r.seconds:.1f} |"
        )
    if args.quick:
        return
    print(
        "\nBaselines tuned to the law policy's regret (best setting whose worst regret is no higher and that "
        "keeps the best run at least as often):\n"
    )
    print("| sweep | policy | setting | compute saved | best kept | worst regret | law saves |")
    print("|---|---|---|---|---|---|---|")
    for group in GROUPS:
        law = defaults[(defaults.group == group) & (defaults.policy == "law")].iloc[0]
        for name, grid in GRIDS.items():
            mine = table[(table.group == group) & (table.policy == name) & (table.setting >= 0)]
            ok = mine[(mine.worst <= law.worst + 1e-12) & (mine.kept >= law.kept - 1e-12)]
            if ok.empty:
                print(f"| {group} | {name} | none reaches it | – | – | – | {law.saved:.1%} |")
                continue
            best = ok.sort_values("saved", ascending=False).iloc[0]
            setting = ", ".join(f"{k}={v:g}" for k, v in grid[int(best.setting)].items())
            print(
                f"| {group} | {name} | {setting} | {best.saved:.1%} | {best.kept:.0%} | {best.worst:.2%} | {law.saved:.1%} |"
            )


GROUPS = load_groups()

if __name__ == "__main__":
    main()
