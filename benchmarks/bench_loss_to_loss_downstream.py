"""Loss-to-loss and FLP downstream prediction on synthetic sweeps with known parameters; importers on real curves.

1. Loss-to-loss train→test at 20× the largest fitted compute: sweeps of 6 sizes × 5 tokens-per-
   parameter on Chinchilla's L(N, D) (Besiroglu et al. 2024's fit), test loss K·(L0 − E0)^κ + E1
   with K, κ, E1 drawn per sweep, log-normal noise. The free-offset fit (E0 freed with K, κ) and
   the paper's fit (E0, E1 from compute laws) side by side: failures (loss below E0), mean and
   worst relative error, recovery of E0, E1, κ, and coverage of the bootstrap interval.
2. FLP downstream: 12 models (1e18–1e22 FLOPs) on L(C) = E + A·C^−a, several tasks per sweep with
   a sigmoid loss → accuracy link (chance 0.25, drawn ceiling, midpoint, width) and binomial
   evaluation noise; fit on the 10 smallest, predict the 2 largest. FLP against the direct
   FLOPs → accuracy baseline (the same sigmoid in log C): mean absolute error, interval coverage.
3. Importers on the MPL paper's real curves (needs ../shared/reference/mpl_curves): each curve
   written by a real ``CSVLogger`` and a real ``SummaryWriter`` the way Lightning logs (``self.log``
   steps one behind the optimizer step) and fitted with ``fit-curves --from ...``: largest relative
   difference of the fitted parameters against the same curves in our CSV.

    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_loss_to_loss_downstream.py [--sweeps 24] [--bootstrap 100]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from scaling_callback.cli import main as cli
from scaling_callback.fitting.downstream import ComputeLossStage, DownstreamLaw, SigmoidLink
from scaling_callback.fitting.loss_to_loss import LossToLossLaw
from scaling_callback.fitting.loss_to_loss_compute import LossToLossFromCompute
from scaling_callback.laws.downstream import sigmoid_link
from scaling_callback.laws.loss_to_loss import shifted_power_law

CHINCHILLA = dict(E=1.82, A=482.0, B=2085.0, alpha=0.348, beta=0.366)  # Besiroglu et al. 2024, their eq. fit
MPL_CURVES = Path(__file__).resolve().parents[2] / "shared" / "reference" / "mpl_curves"
MPL_WARMUP = 2160


def chinchilla(n: np.ndarray, d: np.ndarray) -> np.ndarray:
    c = CHINCHILLA
    return c["E"] + c["A"] / n ** c["alpha"] + c["B"] / d ** c["beta"]


def loss_to_loss(n_sweeps: int, n_bootstrap: int) -> None:
    rng = np.random.default_rng(0)
    rows = []
    for sweep in range(n_sweeps):
        K, kappa, E1, noise = rng.uniform(0.6, 1.6), rng.uniform(0.8, 1.5), rng.uniform(1.5, 2.5), (0.001, 0.002, 0.004)[sweep % 3]
        n, tpp = np.meshgrid(np.geomspace(2e7, 4e8, 6), [5, 10, 20, 40, 80])
        n, d = n.ravel(), (n * tpp).ravel()
        compute = 6 * n * d
        l0 = chinchilla(n, d)
        l1 = shifted_power_law(l0, K, kappa, CHINCHILLA["E"], E1)
        l0, l1 = (v * np.exp(rng.normal(0, noise, v.size)) for v in (l0, l1))
        target_n = np.sqrt(20 * compute.max() / (6 * 20))
        x = float(chinchilla(target_n, 20 * target_n))
        truth = float(shifted_power_law(x, K, kappa, CHINCHILLA["E"], E1))
        free = LossToLossLaw().fit(l0, l1)
        started = time.perf_counter()
        paper = LossToLossFromCompute(n_bootstrap=n_bootstrap, level=0.9, random_state=sweep).fit(l0, l1, compute)
        seconds = time.perf_counter() - started
        low, high = paper.interval(loss0=[x])[0]
        rows.append({
            "noise": noise,
            "free_fails": bool(free.below_E0([x])[0]),
            "free_err": abs(free.predict([x])[0] / truth - 1) if not free.below_E0([x])[0] else np.nan,
            "paper_fails": bool(paper.below_E0([x])[0]),
            "paper_err": abs(paper.predict([x])[0] / truth - 1),
            "E0_err": paper.E0_ - CHINCHILLA["E"], "E1_err": paper.E1_ - E1, "kappa_err": paper.kappa_ - kappa,
            "covered": bool(low <= truth <= high), "seconds": seconds,
        })
    frame = pd.DataFrame(rows)
    print(f"\n## Loss-to-loss train->test at 20x the largest fitted compute ({n_sweeps} synthetic sweeps, 30 models each)\n")
    print("| noise | method | loss below E0 | mean rel. error | worst rel. error |")
    print("|---|---|---|---|---|")
    for noise, part in frame.groupby("noise"):
        print(f"| {noise:.1%} | E0 freed with K, kappa | {int(part.free_fails.sum())}/{len(part)} | "
              f"{np.nanmean(part.free_err):.2%} | {np.nanmax(part.free_err):.2%} |")
        print(f"| {noise:.1%} | E0, E1 from compute laws | {int(part.paper_fails.sum())}/{len(part)} | "
              f"{part.paper_err.mean():.2%} | {part.paper_err.max():.2%} |")
    print(f"| all | E0 freed with K, kappa | {int(frame.free_fails.sum())}/{len(frame)} | {np.nanmean(frame.free_err):.2%} | "
          f"{np.nanmax(frame.free_err):.2%} |")
    print(f"| all | E0, E1 from compute laws | {int(frame.paper_fails.sum())}/{len(frame)} | {frame.paper_err.mean():.2%} | "
          f"{frame.paper_err.max():.2%} |")
    print(f"\nrecovery (fitted - true, mean ± sd): E0 {frame.E0_err.mean():+.3f} ± {frame.E0_err.std():.3f}, "
          f"E1 {frame.E1_err.mean():+.3f} ± {frame.E1_err.std():.3f}, kappa {frame.kappa_err.mean():+.3f} ± {frame.kappa_err.std():.3f}; "
          f"90 % bootstrap interval ({n_bootstrap} resamples) covers the truth in {int(frame.covered.sum())}/{len(frame)}; "
          f"{frame.seconds.mean():.1f} s per fit with bootstrap")


def downstream(n_sweeps: int, n_tasks: int, n_bootstrap: int) -> None:
    rng = np.random.default_rng(1)
    rows = []
    for sweep in range(n_sweeps):
        compute = np.geomspace(1e18, 1e22, 12)
        loss = (1.9 + 1.6 * (compute / 1e18) ** -0.15) * np.exp(rng.normal(0, 0.003, compute.size))
        started = time.perf_counter()
        stage1 = ComputeLossStage(n_bootstrap=n_bootstrap, random_state=sweep).fit(compute[:10], loss[:10])
        stage1_seconds = time.perf_counter() - started
        for _ in range(n_tasks):
            truth = {"floor": 0.25, "ceiling": rng.uniform(0.7, 0.95), "mid": rng.uniform(2.4, 3.0), "scale": rng.uniform(0.05, 0.2)}
            n_questions = int(rng.choice([500, 1000, 3000]))
            accuracy = rng.binomial(n_questions, sigmoid_link(loss, **truth)) / n_questions
            started = time.perf_counter()
            law = DownstreamLaw(chance=0.25, level=0.9).fit(compute[:10], loss[:10], accuracy[:10], stage1=stage1)
            seconds = time.perf_counter() - started + stage1_seconds / n_tasks
            predicted, (low, high) = law.predict(compute[10:]), law.interval(compute[10:]).T
            direct = SigmoidLink(chance=0.25, direction=-1).fit(np.log(compute[:10]), accuracy[:10])
            rows.append({
                "flp_err": float(np.mean(np.abs(predicted - accuracy[10:]))),
                "direct_err": float(np.mean(np.abs(direct.predict(np.log(compute[10:])) - accuracy[10:]))),
                "covered": int(np.sum((low <= accuracy[10:]) & (accuracy[10:] <= high))),
                "width": float(np.mean(high - low)), "link": law.link_,
                "mid_err": law.params_.get("mid", np.nan) - truth["mid"], "seconds": seconds,
            })
    frame = pd.DataFrame(rows)
    n = len(frame)
    print(f"\n## FLP downstream: accuracy of the 2 largest of 12 models from the 10 smallest ({n_sweeps} sweeps x {n_tasks} tasks)\n")
    print("| method | mean abs. error | 90 % interval covers | mean width |")
    print("|---|---|---|---|")
    print(f"| FLP (compute -> loss -> accuracy) | {frame.flp_err.mean():.4f} | {int(frame.covered.sum())}/{2 * n} "
          f"({frame.covered.sum() / (2 * n):.0%}); tasks with both covered {int((frame.covered == 2).sum())}/{n} | {frame.width.mean():.3f} |")
    print(f"| direct FLOPs -> accuracy (same sigmoid in log C) | {frame.direct_err.mean():.4f} | - | - |")
    print(f"\nlinks chosen: {frame.link.value_counts().to_dict()}; sigmoid midpoint error {np.nanmean(frame.mid_err):+.3f} ± "
          f"{np.nanstd(frame.mid_err):.3f}; {frame.seconds.mean():.1f} s per task ({n_bootstrap} resamples, stage 1 shared)")


def importers(curves: Path) -> None:
    if not curves.is_dir():
        print(f"\n(importers on real curves skipped: {curves} is absent)")
        return
    from lightning.pytorch.loggers import CSVLogger
    from torch.utils.tensorboard import SummaryWriter

    print("\n## Importers on the MPL paper's real curves: fit-curves --from X against our CSV\n")
    print("| size | source | largest rel. difference of the 7 MPL parameters | final-loss prediction difference |")
    print("|---|---|---|---|")
    for size in ("25M", "100M", "400M"):
        with tempfile.TemporaryDirectory() as folder:
            root = Path(folder)
            ours = sorted((curves / size).glob("*.csv"))
            for path in ours:
                frame = pd.read_csv(path)
                logger = CSVLogger(root / "csv", name=path.stem, version="0")
                with SummaryWriter(root / "tb" / path.stem) as writer:
                    (root / "tb" / path.stem / "hparams.yaml").write_text("{}\n")  # as TensorBoardLogger leaves it
                    for step, lr, loss in frame[["step", "lr", "loss"]].itertuples(index=False):
                        logger.log_metrics({"val_loss": loss, "lr-AdamW": lr}, step=int(step) - 1)  # Lightning's self.log step
                        writer.add_scalar("val_loss", loss, int(step) - 1)
                        writer.add_scalar("lr-AdamW", lr, int(step) - 1)
                logger.save()
            reference = _fit(["--fit", *map(str, ours[:2]), "--predict", str(ours[2])])
            for source, location in (("lightning-csv", root / "csv"), ("tensorboard", root / "tb")):
                runs = {p.stem: f"{location}#{p.stem}/0" if source == "lightning-csv" else f"{location}#{p.stem}" for p in ours}
                record = _fit(["--from", source, "--fit", runs[ours[0].stem], runs[ours[1].stem], "--predict", runs[ours[2].stem]])
                gap = max(abs(record["params"][k] / v - 1) for k, v in reference["params"].items() if v)
                final = abs(record["predictions"][0]["final_pred"] - reference["predictions"][0]["final_pred"])
                print(f"| {size} | {source} | {gap:.2e} | {final:.2e} |")


def _fit(args: list[str]) -> dict:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = cli(["fit-curves", "--warmup-steps", str(MPL_WARMUP), *args, "--json"])
    if code != 0:
        raise SystemExit(f"fit-curves failed on {args}")
    return json.loads(out.getvalue())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sweeps", type=int, default=24, help="loss-to-loss sweeps (default 24)")
    parser.add_argument("--downstream-sweeps", type=int, default=6, help="FLP sweeps (default 6)")
    parser.add_argument("--tasks", type=int, default=5, help="tasks per FLP sweep (default 5)")
    parser.add_argument("--bootstrap", type=int, default=100, help="bootstrap resamples (default 100)")
    parser.add_argument("--curves", type=Path, default=MPL_CURVES)
    parser.add_argument("--skip", nargs="*", default=[], choices=("l2l", "flp", "io"))
    args = parser.parse_args()
    if "l2l" not in args.skip:
        loss_to_loss(args.sweeps, args.bootstrap)
    if "flp" not in args.skip:
        downstream(args.downstream_sweeps, args.tasks, args.bootstrap)
    if "io" not in args.skip:
        importers(args.curves)


if __name__ == "__main__":
    main()
