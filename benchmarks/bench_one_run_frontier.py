"""One run per model size against the full grid: the compute-optimal frontier each gives, and the compute each spends.

Model: power-law random features trained by one-pass SGD (Paquette et al. 2024), whose *expected*
loss under any LR schedule the second-moment recursion gives exactly (:func:`toy_models.plrf.sgd_expected_loss`),
with label noise of variance σ² (an irreducible loss σ²/2 that also feeds the SGD noise, so an LR decay
buys a real drop, as in LMs) and a multiplicative evaluation noise on every loss (a finite held-out
set), as in ``benchmarks/make_stopping_sweep.py``.

- **Grid**: every size × every budget, each a separate fully decayed run (cosine to 10 % of the peak;
  and, to separate the design from the schedule, WSD with a 20 % linear decay), its evaluated final
  with SD ``EVAL_NOISE``·L; approach 3 weighted by those SDs, bootstrap over runs with predictive draws.
- **One run per size**: each size once, WSD to the largest budget, evaluated every ``EVERY`` steps;
  :class:`~scaling_callback.fitting.decayed_finals.DecayedFinals` forecasts the final of a fully
  decayed run at every budget of the grid (target ``wsd`` and ``cosine``); approach 3 on those points
  weighted by their SDs, bootstrap over runs (sizes) with predictive draws.

Printed per seed (feature draw and noise) and as mean ± SD over seeds: a, b, α, β and the loss at
10× the largest budget's compute with 95 % intervals, |a − a_grid|, and compute used (6·N·D summed)::

    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_one_run_frontier.py [--seeds 5] [--bootstrap 200]

``--drop-check`` asks where the one-run forecasts' misses come from (seed 0, WSD target). The drop a
decay buys is known exactly here (the constant-LR curve minus the decayed one), so the multi-power
drop term is fitted to the exact drop along the one run's decay alone and then asked for the drop of
every shorter budget's decay: if that is right while the forecasts miss, the law's drop term is not
what misses, its separation from the power-law part on one curve is.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import time

import numpy as np
from scipy.optimize import least_squares

from scaling_callback.fitting.bootstrap import bootstrap_compute_optimal, frontier_column
from scaling_callback.fitting.compute_optimal import ComputeOptimalLaw
from scaling_callback.fitting.curve_fitter import CurveFitter
from scaling_callback.fitting.curves import Curve
from scaling_callback.fitting.decayed_finals import DecayedFinals, DecayTarget, SizeRun
from scaling_callback.laws.loss_curves import MULTI_POWER
from scaling_callback.laws.lr_terms import lr_terms
from scaling_callback.laws.schedule import Schedule
from toy_models.plrf import PLRFProblem, nested_spectra, sgd_expected_loss
from toy_models.schedules import ScheduleSpec, lr_at

ALPHA, BETA, DIMENSION = 0.7, 0.05, 8192  # Phase Ia of Paquette et al.: d* ∝ f^(1/(2α+1)) = f^0.417
LABEL_NOISE_VARIANCE = 0.2
SIZES = (32, 64, 128, 256, 512, 1024, 2048)
BATCH, WARMUP, STEPS, EVERY = 32, 80, 8000, 20
N_BUDGETS, SPAN = 9, 16.0  # budgets at factors of sqrt(2) from STEPS/16 to STEPS: the grid spends 3.26x one run
PEAK_LR = 1.5  # in units of 1/tr(D), the same for every size
FINAL_LR_FRACTION, DECAY_FRACTION = 0.1, 0.2
EVAL_NOISE = 0.001  # relative SD of an evaluated loss


def multipliers(kind: str, steps: int) -> np.ndarray:
    spec = ScheduleSpec(
        kind=kind,
        peak_lr=1.0,
        max_steps=steps,
        warmup_steps=WARMUP,
        final_lr_fraction=FINAL_LR_FRACTION,
        decay_fraction=DECAY_FRACTION,
    )
    return np.array(lr_at(spec, steps))


def budgets() -> np.ndarray:
    return np.unique(np.round(STEPS * SPAN ** (-np.arange(N_BUDGETS)[::-1] / (N_BUDGETS - 1))).astype(int))


def problem_spectra(seed: int) -> tuple[list, float]:
    """Every size's spectrum (label noise in the optimum) and the peak LR."""
    problem = PLRFProblem(alpha=ALPHA, beta=BETA, v=DIMENSION)
    spectra = [
        dataclasses.replace(s, optimum_loss=s.optimum_loss + LABEL_NOISE_VARIANCE / 2.0)
        for s in nested_spectra(problem, np.array(SIZES), seed=seed)
    ]
    return spectra, PEAK_LR / float(problem.data_variances.sum())


def simulate(seed: int) -> tuple[dict, list[SizeRun]]:
    """The grid's evaluated finals per schedule and one evaluated WSD curve per size."""
    spectra, lr = problem_spectra(seed)
    rng = np.random.default_rng(seed + 1000)
    grid = {}
    for kind in ("cosine", "wsd"):
        expected = np.array(
            [sgd_expected_loss(spectra, np.array([t]), BATCH, lr, multipliers(kind, t))[:, 0] for t in budgets()]
        ).T  # (sizes, budgets)
        grid[kind] = expected * np.exp(EVAL_NOISE * rng.standard_normal(expected.shape))
    steps = np.arange(WARMUP + EVERY, STEPS + 1, EVERY)
    wsd = multipliers("wsd", STEPS)
    curves = sgd_expected_loss(spectra, steps, BATCH, lr, wsd)
    schedule = Schedule.from_per_step(lr * wsd, WARMUP)
    runs = [
        SizeRun(
            f"d{d}",
            float(d),
            schedule,
            steps.astype(float),
            curve * np.exp(EVAL_NOISE * rng.standard_normal(steps.size)),
            BATCH,
        )
        for d, curve in zip(SIZES, curves)
    ]
    return grid, runs


def frontier(n, d, loss, sd, groups, resamples: int, seed: int) -> dict:
    """Approach 3 weighted by the SDs, its bootstrap (runs resampled, losses drawn), at 10x the largest compute."""
    law = ComputeOptimalLaw().fit(n, d, loss, loss_sd=sd)
    target = 10.0 * 6.0 * float(np.max(np.asarray(n) * np.asarray(d)))
    boot = bootstrap_compute_optimal(law, groups=groups, n_resamples=resamples, seed=seed, target_flops=[target])
    ci = boot.ci()
    column = frontier_column("loss", target)
    return {
        "a": law.a_,
        "b": law.b_,
        "alpha": law.alpha_,
        "beta": law.beta_,
        "loss": float(law.frontier([target])["loss"].iloc[0]),
        "ci": {k: ci[k] for k in ("a", "b", "alpha", "beta")} | {"loss": ci[column]},
        "status": law.status_,
    }


def one_seed(seed: int, resamples: int) -> dict[str, dict]:
    grid, runs = simulate(seed)
    tokens = budgets() * BATCH
    n_grid = np.repeat(np.array(SIZES, dtype=float), tokens.size)
    d_grid = np.tile(tokens.astype(float), len(SIZES))
    rows = {}
    for kind in ("cosine", "wsd"):
        loss = grid[kind].ravel()
        rows[f"grid, {kind}"] = frontier(n_grid, d_grid, loss, EVAL_NOISE * loss, None, resamples, seed)
        rows[f"grid, {kind}"]["compute"] = float(np.sum(6.0 * n_grid * d_grid))
    for kind in ("wsd", "cosine"):
        started = time.perf_counter()
        finals = DecayedFinals(DecayTarget(kind, DECAY_FRACTION, FINAL_LR_FRACTION)).fit(runs, tokens)
        seconds = time.perf_counter() - started
        points = finals.points_
        truth = grid[kind][
            [SIZES.index(int(n)) for n in points["n"]], [list(tokens).index(int(round(d))) for d in points["d"]]
        ]
        z = (truth - points["loss"].to_numpy()) / points["loss_sd"].to_numpy()
        row = frontier(points["n"], points["d"], points["loss"], points["loss_sd"], points["run"], resamples, seed)
        row |= {
            "compute": finals.compute_used_,
            "forecast_seconds": seconds,
            "max_error": float(np.max(np.abs(truth - points["loss"].to_numpy()))),
            "coverage": float(np.mean(np.abs(z) < 1.96)),
        }
        rows[f"one run per size, {kind} target"] = row
    return rows


def exact_drops(
    spectra: list, lr: float, totals: np.ndarray, steps: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exact drops (sizes × budgets) of each budget's WSD decay at its end, along the longest decay at ``steps``,
    and the constant-LR loss at the longest run's end (sizes)."""
    constant = sgd_expected_loss(spectra, np.arange(1, STEPS + 1), BATCH, lr, multipliers("constant", STEPS))
    ends = np.array(
        [sgd_expected_loss(spectra, np.array([t]), BATCH, lr, multipliers("wsd", t))[:, 0] for t in totals]
    ).T
    longest = sgd_expected_loss(spectra, steps, BATCH, lr, multipliers("wsd", STEPS))
    return constant[:, totals - 1] - ends, constant[:, steps - 1] - longest, constant[:, -1]


def drop_term(params: np.ndarray, terms) -> np.ndarray:
    """The multi-power law's drop term alone (L0 = A = 0; Luo et al. 2025, eq. 2): B, C, β, γ."""
    return -MULTI_POWER.loss(np.concatenate([[0.0, 0.0, 0.5], params]), terms)


def _drop_params(free: np.ndarray) -> list[float]:
    """(B, C, β, γ) from the least-squares variables (log B, log C, log β, γ)."""
    return [math.exp(free[0]), math.exp(free[1]), math.exp(free[2]), float(free[3])]


def drop_check() -> None:
    """The MPL drop term fitted to the exact drop along the one run's decay, asked for every shorter decay."""
    spectra, lr = problem_spectra(0)
    totals = budgets()
    decay_start = WARMUP + int(round((1.0 - DECAY_FRACTION) * (STEPS - WARMUP)))
    along = np.arange(decay_start + EVERY, STEPS + 1, EVERY)
    true_ends, true_along, constant_end = exact_drops(spectra, lr, totals, along)
    constant_plan = Schedule.from_per_step(lr * multipliers("constant", STEPS), WARMUP)
    along_terms = lr_terms([Schedule.from_per_step(lr * multipliers("wsd", STEPS), WARMUP)], [along])
    end_terms = [
        lr_terms([Schedule.from_per_step(lr * multipliers("wsd", t), WARMUP)], [np.array([t])]) for t in totals
    ]
    grid, runs = simulate(0)
    tokens = totals * BATCH
    points = DecayedFinals(DecayTarget("wsd", DECAY_FRACTION, FINAL_LR_FRACTION)).fit(runs, tokens).points_
    print(
        f"\n# drop check (seed 0): the MPL drop term fitted to the exact drop along steps {along[0]}..{STEPS} of the "
        f"one WSD run, then asked for the drop of each budget's decay ({totals[0]}..{totals[-1]} steps)\n"
    )
    print(
        "| size | fit along the one decay: rms (1e-3) | exact drop at the shortest / longest budget (1e-3) | "
        "drop term − exact drop, shortest → longest budget (1e-3) | one-run forecast − exact final, same budgets (1e-3) | "
        "whole-curve MPL fit: power part − exact constant-LR loss at the end (1e-3); its β, γ |"
    )
    print("|---|---|---|---|---|---|")
    for i, run in enumerate(runs):
        scale = max(float(true_along[i, -1]), 1e-12) / (lr * (1.0 - FINAL_LR_FRACTION))
        fit = least_squares(
            lambda p, exact=true_along[i]: drop_term(_drop_params(p), along_terms) - exact,
            x0=[math.log(scale), 0.0, math.log(0.5), 0.5],
            bounds=([-np.inf, -30.0, -5.0, 0.0], [np.inf, 30.0, 2.0, 2.0]),
        )
        params = _drop_params(fit.x)
        predicted = np.array([drop_term(params, t)[0] for t in end_terms])
        mine = points[points.run == run.name].set_index("d")["loss"]
        forecast = [mine.get(float(d), math.nan) - grid["wsd"][i, j] for j, d in enumerate(tokens)]
        keep = run.steps > WARMUP
        whole = CurveFitter().fit([Curve(run.schedule, run.steps[keep].astype(np.int64), run.loss[keep], run.name)])
        power_end = float(whole.predict(constant_plan, np.array([STEPS]))[0]) - constant_end[i]
        shape = whole.params_
        print(
            f"| {run.name} | {1e3 * math.sqrt(np.mean(fit.fun**2)):.2f} | {1e3 * true_ends[i, 0]:.2f} / "
            f"{1e3 * true_ends[i, -1]:.2f} | {' '.join(f'{1e3 * e:+.2f}' for e in predicted - true_ends[i])} | "
            f"{' '.join(f'{1e3 * e:+.2f}' for e in forecast)} | {1e3 * power_end:+.2f}; "
            f"{shape.get('beta', math.nan):.3g}, {shape.get('gamma', math.nan):.3g} |"
        )


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min) on {os.cpu_count()} cores"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--bootstrap", type=int, default=200)
    parser.add_argument("--drop-check", action="store_true", help="only the drop-term check (seed 0), see above")
    args = parser.parse_args()
    if args.drop_check:
        drop_check()
        return
    print(
        f"# one run per size vs the full grid (PLRF, alpha={ALPHA}, beta={BETA}, sizes {SIZES}, "
        f"{N_BUDGETS} budgets {budgets()[0]}..{budgets()[-1]} steps of {BATCH}); {load()}"
    )
    started = time.perf_counter()
    results = [one_seed(seed, args.bootstrap) for seed in range(args.seeds)]
    print(
        "\n| seed | design | a [95 %] | b | alpha | beta | loss at 10x C_max [95 %] | a - a_grid (cosine / wsd) | compute (6ND) | max forecast error | forecasts in 95 % |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for seed, rows in enumerate(results):
        for name, row in rows.items():
            ci = row["ci"]
            gaps = f"{row['a'] - rows['grid, cosine']['a']:+.3f} / {row['a'] - rows['grid, wsd']['a']:+.3f}"
            extra = (
                f"{row['max_error']:.4f} | {row['coverage']:.0%}" if "max_error" in row else "(evaluated, SD 0.1 %) | -"
            )
            print(
                f"| {seed} | {name} | {row['a']:.3f} [{ci['a'][0]:.3f}, {ci['a'][1]:.3f}] | {row['b']:.3f} | "
                f"{row['alpha']:.3f} | {row['beta']:.3f} | {row['loss']:.4f} [{ci['loss'][0]:.4f}, {ci['loss'][1]:.4f}] | "
                f"{gaps} | {row['compute']:.3g} | {extra} |"
            )
    print(
        "\n| design | a (mean ± SD over seeds) | mean 95 % width of a | a - a_grid cosine | a - a_grid wsd | loss at 10x C_max | compute / grid's |"
    )
    print("|---|---|---|---|---|---|---|")
    for name in results[0]:
        a = np.array([r[name]["a"] for r in results])
        width = np.mean([r[name]["ci"]["a"][1] - r[name]["ci"]["a"][0] for r in results])
        gap_cos = np.array([r[name]["a"] - r["grid, cosine"]["a"] for r in results])
        gap_wsd = np.array([r[name]["a"] - r["grid, wsd"]["a"] for r in results])
        loss = np.array([r[name]["loss"] for r in results])
        ratio = results[0][name]["compute"] / results[0]["grid, cosine"]["compute"]
        print(
            f"| {name} | {a.mean():.3f} ± {a.std(ddof=1) if a.size > 1 else 0:.3f} | {width:.3f} | "
            f"{gap_cos.mean():+.3f} ± {gap_cos.std(ddof=1) if a.size > 1 else 0:.3f} | "
            f"{gap_wsd.mean():+.3f} ± {gap_wsd.std(ddof=1) if a.size > 1 else 0:.3f} | {loss.mean():.4f} | {ratio:.3f} |"
        )
    print(f"\n{time.perf_counter() - started:.0f} s in all; {load()}")


if __name__ == "__main__":
    main()
