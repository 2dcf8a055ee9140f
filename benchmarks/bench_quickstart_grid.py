"""Why the quickstart's grid is what it is: the noise of a final, the LR rule, the N and D effects, the width of a.

    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_quickstart_grid.py [--workers 2] [--skip-lr]

Trains the quickstart's tiny LMs with a plain PyTorch loop (the same model, data, seeds, AdamW
and warmup-cosine schedule as the sweep's Lightning runs, without the callback) and evaluates each
on a held-out stream of 200k tokens, the quickstart's ``evaluation.tokens``. Printed, in order:

1. the per-token variance of the held-out loss, the design effect of scoring whole sequences, and
   the standard error of a final (target: <= 0.003);
2. the run-to-run SD of a final over 4 training seeds (noise the held-out stream does not remove);
3. the 1/width LR rule (``lr_width_reference: 32``) against x0.5 and x2 of it at widths 8-128, and
   against the old quickstart's one LR for every width;
4. the 7 sizes x 5 budgets grid at that rule: the loss table, the effects of N and D in units of the
   final's standard error, and approach 3's a with its 95 % bootstrap interval on the whole grid and
   on smaller subsets of it.

About 8 CPU-minutes; with 2 workers 4-5 minutes on an idle 2-core machine.
"""

from __future__ import annotations

import argparse
import itertools
import math
import os
import time
from multiprocessing import Pool

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from scaling_callback.fitting.bootstrap import bootstrap_compute_optimal
from scaling_callback.fitting.compute_optimal import ComputeOptimalLaw
from scaling_callback.sweep.runs import HELD_OUT_BATCH
from toy_models.schedules import ScheduleSpec
from toy_models.tiny_lm import TinyLM
from toy_models.zipf_corpus import ZipfMarkovSource

VOCAB, SEQ, BATCH, WARMUP, FINAL = 64, 32, 16, 20, 0.1
LR_AT_32 = 0.008  # the quickstart's grid.peak_lrs[0], at width 32
OLD_LR = 0.004  # the old quickstart's one LR for every width
WIDTHS = (8, 12, 16, 24, 32, 48, 64)
STEPS = (250, 500, 1000, 2000, 4000)
EVAL_TOKENS = 200_000


def train(job: tuple) -> dict:
    """Train one tiny LM and evaluate it on the held-out stream: mean loss, SE, per-token variance."""
    width, steps, lr, seed = job
    torch.set_num_threads(1)
    source = ZipfMarkovSource(VOCAB, 1.1, 0.7, 0)
    model = TinyLM(
        VOCAB, width, 1, max(1, width // 16), SEQ, BATCH, ScheduleSpec("cosine", lr, steps, WARMUP, FINAL), seed=seed
    )
    config = model.configure_optimizers()
    optimizer, scheduler = config["optimizer"], config["lr_scheduler"]["scheduler"]
    generator = torch.Generator().manual_seed(seed)
    started = time.process_time()
    for _ in range(steps):
        loss = model._loss(source.sample(BATCH, SEQ, generator))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
    seconds = time.process_time() - started
    held_out = torch.Generator().manual_seed(1_000_000_007)
    sequences = math.ceil(EVAL_TOKENS / (SEQ - 1))
    per_sequence, token_sum, token_square = [], 0.0, 0.0
    with torch.no_grad():
        for start in range(0, sequences, HELD_OUT_BATCH):
            tokens = source.sample(min(HELD_OUT_BATCH, sequences - start), SEQ, held_out)
            per_token = F.cross_entropy(model(tokens[:, :-1]).transpose(1, 2), tokens[:, 1:], reduction="none").double()
            per_sequence.append(per_token.mean(1))
            token_sum += float(per_token.sum())
            token_square += float((per_token**2).sum())
    means = torch.cat(per_sequence).numpy()
    n_tokens = means.size * (SEQ - 1)
    token_variance = token_square / n_tokens - (token_sum / n_tokens) ** 2
    return {
        "width": width,
        "steps": steps,
        "lr": lr,
        "seed": seed,
        "n": model.n_params,
        "tokens": steps * BATCH * SEQ,
        "loss": float(means.mean()),
        "se": float(means.std(ddof=1) / math.sqrt(means.size)),
        "token_variance": token_variance,
        "design_effect": float(means.var(ddof=1) * (SEQ - 1) / token_variance),
        "train_cpu_s": seconds,
    }


def bootstrap_width(frame: pd.DataFrame) -> tuple[float, list[float], float]:
    law = ComputeOptimalLaw().fit(frame["n"].to_numpy(), frame["tokens"].to_numpy(), frame["loss"].to_numpy())
    ci = bootstrap_compute_optimal(law, n_resamples=200, seed=0).ci()["a"]
    residual = frame["loss"].to_numpy() - law.predict(frame["n"].to_numpy(), frame["tokens"].to_numpy())
    return law.a_, ci, float(np.std(residual))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--skip-lr", action="store_true", help="skip the LR-rule table (a third of the time)")
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    rule = {w: LR_AT_32 * 32 / w for w in (*WIDTHS, 128)}
    grid_jobs = [(w, s, rule[w], 0) for w, s in itertools.product(WIDTHS, STEPS)]
    seed_jobs = [(w, s, rule[w], seed) for w, s in ((8, 1000), (32, 1000), (32, 250)) for seed in (1, 2, 3)]
    lr_jobs = (
        []
        if args.skip_lr
        else [(w, s, rule[w] * m, 0) for w in (8, 16, 32, 64, 128) for s in (250, 1000) for m in (0.5, 2.0)]
        + [(128, s, rule[128], 0) for s in (250, 1000)]
        + [(w, s, OLD_LR, 0) for w in (8, 128) for s in (250, 1000)]
    )
    started = time.time()
    jobs = sorted(set(grid_jobs + seed_jobs + lr_jobs), key=lambda j: -j[0] * j[1])
    with Pool(args.workers) as pool:
        results = pd.DataFrame(pool.map(train, jobs, chunksize=1))
    print(f"{len(jobs)} runs in {time.time() - started:.0f} s wall, {results['train_cpu_s'].sum():.0f} CPU-s training")
    grid = results[(results["seed"] == 0) & np.isclose(results["lr"], results["width"].map(rule))]
    grid = grid[grid["width"].isin(WIDTHS)]

    print("\n1. held-out finals (200k tokens): per-token variance, design effect, standard error")
    print(
        f"   per-token variance {grid['token_variance'].min():.2f}-{grid['token_variance'].max():.2f} nats^2, "
        f"design effect {grid['design_effect'].min():.2f}-{grid['design_effect'].max():.2f}, "
        f"SE {grid['se'].min():.4f}-{grid['se'].max():.4f}; tokens for SE 0.003 at the largest: "
        f"{(grid['se'] ** 2 * EVAL_TOKENS).max() / 0.003**2:,.0f}"
    )
    print("\n2. run-to-run SD of the final over seeds 0-3 (same held-out stream)")
    for (width, steps), group in results[results["seed"] > 0].groupby(["width", "steps"]):
        seeds = pd.concat([group, grid[(grid["width"] == width) & (grid["steps"] == steps)]])
        print(f"   width {width:3d}, {steps:4d} steps: SD {seeds['loss'].std(ddof=1):.4f} over {len(seeds)} seeds")
    if lr_jobs:
        print("\n3. the 1/width LR rule against x0.5 and x2 (loss above the best of the three)")
        table = results[(results["seed"] == 0) & results["steps"].isin([250, 1000])]
        for (width, steps), group in table[table["width"].isin([8, 16, 32, 64, 128])].groupby(["width", "steps"]):
            at_rule = group[np.isclose(group["lr"], rule[width])]["loss"].min()
            print(
                f"   width {width:3d}, {steps:4d} steps: rule {at_rule:.4f}, gap to best {at_rule - group['loss'].min():.4f}"
            )
        for (width, steps), group in table[np.isclose(table["lr"], OLD_LR)].groupby(["width", "steps"]):
            same = table[(table["width"] == width) & (table["steps"] == steps)]
            at_rule = same[np.isclose(same["lr"], rule[width])]["loss"].min()
            print(
                f"   width {width:3d}, {steps:4d} steps: one LR {OLD_LR} for every width {group['loss'].min():.4f}, "
                f"{group['loss'].min() - at_rule:+.4f} against the rule"
            )
    print("\n4. the grid (loss of each size x budget) and approach 3 on it")
    table = grid.pivot_table(index="n", columns="tokens", values="loss")
    print(table.round(4).to_string())
    se = float(grid["se"].max())
    print(
        f"   effect of N at the largest budget: {table.iloc[0, -1] - table.iloc[-1, -1]:.3f} nats "
        f"({(table.iloc[0, -1] - table.iloc[-1, -1]) / se:.0f} SE); of D at the smallest size: "
        f"{table.iloc[0, 0] - table.iloc[0, -1]:.3f} ({(table.iloc[0, 0] - table.iloc[0, -1]) / se:.0f} SE)"
    )
    subsets = {
        "7 sizes x 5 budgets (the quickstart)": grid,
        "4 sizes x 4 budgets (widths 8-64, 250-2000 steps)": grid[
            grid["width"].isin([8, 16, 32, 64]) & grid["steps"].isin([250, 500, 1000, 2000])
        ],
        "7 sizes x 4 budgets (250-2000 steps)": grid[grid["steps"] <= 2000],
        "4 sizes x 5 budgets (widths 8-64)": grid[grid["width"].isin([8, 16, 32, 64])],
    }
    for label, subset in subsets.items():
        a, ci, residual = bootstrap_width(subset)
        print(
            f"   {label:52s} a = {a:.3f}, 95 % [{ci[0]:.3f}, {ci[1]:.3f}], width {ci[1] - ci[0]:.3f}, residual SD {residual:.4f}"
        )
    print(f"\nload average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
