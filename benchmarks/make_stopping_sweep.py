"""Record the early-stopping benchmark sweep once: loss curves of power-law random-feature models.

The curves are the *expected* population loss of one-pass SGD on power-law random features
(Paquette et al. 2024), computed exactly by :func:`toy_models.plrf.sgd_expected_loss`, plus label
noise of variance σ² (an irreducible loss σ²/2 that also feeds the SGD noise, so a high LR holds
the loss on a plateau that an LR decay removes — the mechanism behind WSD's late drop) and a
small multiplicative evaluation noise (a finite validation set). Two sweeps (``group``):

- ``main``: widths {256, 512, 1024} × peak LRs {0.5, 1.5, 4}/tr(D) × schedules {cosine, WSD,
  constant}, 27 runs. The best run is a WSD run that ranks only ~8th just before its decay
  (WSD-before-decay), and high-LR runs start slower than mid-LR ones (crossing curves).
- ``crossing``: 8 runs whose early leaders (small widths, mid LR) end worst while the eventual
  best (width 1024, low LR) starts slowest.

Every run: 4000 optimizer steps, linear warmup of 80 steps, batch 32, one logged point every
40 steps (``step, samples, flops, lr, loss``; FLOPs = 6·d per sample, forward and backward of
the d-parameter readout). Takes ~20 s::

    OPENBLAS_NUM_THREADS=1 python benchmarks/make_stopping_sweep.py [--out benchmarks/stopping_sweep.csv]
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd

from toy_models.plrf import PLRFProblem, nested_spectra, sgd_expected_loss
from toy_models.schedules import ScheduleSpec, lr_at

DEFAULT_OUT = Path(__file__).with_name("stopping_sweep.csv")
ALPHA, BETA, DIMENSION, SEED = 0.7, 0.05, 6000, 0
LABEL_NOISE_VARIANCE = 1.0
BATCH, STEPS, WARMUP, LOG_EVERY = 32, 4000, 80, 40
EVAL_NOISE = 0.001  # relative SD of a logged loss
MAIN = [(d, lr, kind) for d in (256, 512, 1024) for lr in (0.5, 1.5, 4.0) for kind in ("cosine", "wsd", "constant")]
CROSSING = [
    (64, 0.5, "cosine"),
    (64, 0.5, "constant"),
    (128, 0.5, "cosine"),
    (128, 0.5, "constant"),
    (1024, 0.1, "cosine"),
    (1024, 0.1, "constant"),
    (1024, 0.2, "cosine"),
    (1024, 0.2, "constant"),
]


def sweep_frame() -> pd.DataFrame:
    """Both sweeps as one long table, one row per logged point."""
    problem = PLRFProblem(alpha=ALPHA, beta=BETA, v=DIMENSION)
    widths = sorted({d for d, _, _ in MAIN + CROSSING})
    spectra = {
        s.d: dataclasses.replace(s, optimum_loss=s.optimum_loss + LABEL_NOISE_VARIANCE / 2.0)
        for s in nested_spectra(problem, np.array(widths), seed=SEED)
    }
    unit_lr = 1.0 / float(problem.data_variances.sum())
    checkpoints = np.arange(LOG_EVERY, STEPS + 1, LOG_EVERY)
    rng = np.random.default_rng(SEED + 1)
    frames = []
    for group, configs in (("main", MAIN), ("crossing", CROSSING)):
        for width, lr_mult, kind in configs:
            spec = ScheduleSpec(kind=kind, peak_lr=1.0, max_steps=STEPS, warmup_steps=WARMUP, final_lr_fraction=0.0)
            multipliers = np.array(lr_at(spec, STEPS))
            expected = sgd_expected_loss(
                [spectra[width]],
                checkpoints,
                batch_size=BATCH,
                learning_rate=lr_mult * unit_lr,
                lr_multipliers=multipliers,
            )[0]
            observed = expected * np.exp(EVAL_NOISE * rng.standard_normal(expected.size))
            frames.append(
                pd.DataFrame(
                    {
                        "group": group,
                        "run": f"w{width}-lr{lr_mult:g}-{kind}",
                        "width": width,
                        "lr_mult": lr_mult,
                        "schedule": kind,
                        "step": checkpoints,
                        "samples": checkpoints * BATCH,
                        "flops": 6.0 * width * BATCH * checkpoints,
                        "lr": lr_mult * unit_lr * multipliers[checkpoints - 1],
                        "loss": observed,
                        "expected_loss": expected,
                    }
                )
            )
    return pd.concat(frames, ignore_index=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="CSV to write")
    args = parser.parse_args()
    frame = sweep_frame()
    frame.to_csv(args.out, index=False, float_format="%.7g")
    finals = frame.groupby(["group", "run"])["loss"].last().sort_values()
    print(f"wrote {len(frame)} rows, {finals.size} runs to {args.out}")
    for group in ("main", "crossing"):
        print(group, "best:", finals[group].index[0], f"{finals[group].iloc[0]:.4f}")


if __name__ == "__main__":
    main()
