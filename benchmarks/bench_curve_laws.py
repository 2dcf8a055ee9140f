"""Per-run laws on the MPL paper's curves: leave-one-curve-out and online (prefix) prediction.

For each model size (25M, 100M, 400M) and law: fit two of the three curves and predict the
third (LOO), and fit two curves plus the first F (0.3, 0.5, 0.7) of the third and predict its
rest (``--prefix`` mode), and fits the WSD curve alone to predict the other two (``one WSD``:
a schedule of another shape and 1.5x the length). Prints MAE, WorstE, |final-loss error|, interval coverage of the final
loss and fit seconds. Needs ../shared/reference/mpl_curves (never committed).

    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_curve_laws.py [--laws mpl opl] [--curves DIR]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from scaling_callback.cli.curve_files import read_curve_csv
from scaling_callback.fitting.curve_fitter import CurveFitter
from scaling_callback.fitting.curve_metrics import score_prediction

DEFAULT_CURVES = Path(__file__).resolve().parents[2] / "shared" / "reference" / "mpl_curves"
WARMUP_STEPS = 2160


def run_mode(curves, law: str, prefix: float | None) -> dict[str, float]:
    """Leave each curve out in turn (keeping its first ``prefix`` in the fit when given)."""
    rows, seconds = [], []
    for held_out in range(len(curves)):
        target = curves[held_out]
        context = [c for i, c in enumerate(curves) if i != held_out]
        if prefix is not None:
            context.append(target.head(prefix))
        fitter = CurveFitter(law=law).fit(context)
        seconds.append(fitter.fit_seconds_)
        rows.append(score_prediction(fitter, target, prefix))
    final_error = [abs(r["final_pred"] - r["final_true"]) for r in rows]
    covered = [r["final_low"] <= r["final_true"] <= r["final_high"] for r in rows]
    return {
        "mae": float(np.mean([r["mae"] for r in rows])),
        "worst_e": float(np.mean([r["worst_e"] for r in rows])),
        "final_err": float(np.mean(final_error)),
        "covered": f"{sum(covered)}/{len(covered)}",
        "seconds": float(np.mean(seconds)),
    }


def one_curve_transfer(curves, law: str, source: str = "wsdcon_9") -> list[str]:
    """Fit ``source`` alone and predict each other curve's final: signed error, half-width, inside."""
    fitted = [c for c in curves if Path(c.name).stem == source]
    if not fitted:
        return []
    fitter = CurveFitter(law=law).fit(fitted)
    rows = []
    for target in curves:
        if target is fitted[0]:
            continue
        row = score_prediction(fitter, target)
        error = row["final_pred"] - row["final_true"]
        inside = row["final_low"] <= row["final_true"] <= row["final_high"]
        half = (row["final_high"] - row["final_low"]) / 2
        rows.append(f"{Path(target.name).stem}: error {error:+.4f}, half-width {half:.4f}, inside {inside}")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--curves", type=Path, default=DEFAULT_CURVES)
    parser.add_argument("--laws", nargs="+", default=["mpl", "momentum", "lldl", "opl"])
    parser.add_argument("--sizes", nargs="+", default=["25M", "100M", "400M"])
    args = parser.parse_args()
    if not args.curves.is_dir():
        raise SystemExit(f"reference curves not found at {args.curves}")
    print(f"{'size':<6}{'law':<10}{'mode':<12}{'MAE':>8}{'WorstE':>8}{'|final err|':>13}{'covered':>9}{'fit s':>8}")
    for size in args.sizes:
        curves = [read_curve_csv(p, WARMUP_STEPS) for p in sorted((args.curves / size).glob("*.csv"))]
        for law in args.laws:
            all_three = CurveFitter(law=law).fit(curves)
            print(f"{size:<6}{law:<10}{'fit all 3':<12}{'':>8}{'':>8}{'':>13}{'':>9}{all_three.fit_seconds_:>8.2f}")
            for prefix in (None, 0.3, 0.5, 0.7):
                row = run_mode(curves, law, prefix)
                mode = "LOO" if prefix is None else f"prefix {prefix}"
                print(
                    f"{size:<6}{law:<10}{mode:<12}{row['mae']:>8.4f}{row['worst_e']:>8.4f}"
                    f"{row['final_err']:>13.4f}{row['covered']:>9}{row['seconds']:>8.2f}",
                    flush=True,
                )
            for line in one_curve_transfer(curves, law):
                print(f"{size:<6}{law:<10}one WSD -> {line}", flush=True)


if __name__ == "__main__":
    main()
