"""``scaling-callback fit-curves``: fit a per-run law to logged curves and predict other schedules."""

from __future__ import annotations

import argparse
import json
import math

import numpy as np

from scaling_callback.cli.curve_files import read_curve_csv
from scaling_callback.errors import InputError
from scaling_callback.fitting.curve_fitter import CurveFitter
from scaling_callback.fitting.curve_metrics import score_prediction
from scaling_callback.laws.loss_curves import CURVE_LAWS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--law", choices=sorted(CURVE_LAWS), default="mpl", help="loss-curve law")
    parser.add_argument("--warmup-steps", type=int, required=True, metavar="W", help="linear warmup length in steps")
    parser.add_argument("--fit", nargs="+", required=True, metavar="CSV", help="curves fitted jointly (columns step,lr,loss)")
    parser.add_argument("--predict", nargs="*", default=[], metavar="CSV", help="curves to predict")
    parser.add_argument("--prefix", type=float, default=None, metavar="F",
                        help="each --predict curve also contributes its first F (0 < F <= 1) of rows to the fit")
    parser.add_argument("--level", type=float, default=0.9, help="coverage of the final-loss interval")
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def run(args: argparse.Namespace) -> int:
    if args.warmup_steps < 0:
        raise InputError(f"--warmup-steps must be >= 0, got {args.warmup_steps}")
    if args.prefix is not None and not 0 < args.prefix <= 1:
        raise InputError(f"--prefix must be in (0, 1], got {args.prefix}")
    if not 0 < args.level < 1:
        raise InputError(f"--level must be in (0, 1), got {args.level}")
    fitted = [read_curve_csv(path, args.warmup_steps) for path in args.fit]
    targets = [read_curve_csv(path, args.warmup_steps) for path in args.predict]
    prefix = args.prefix
    context = [t.head(prefix) for t in targets] if prefix is not None else []
    fitter = CurveFitter(law=args.law, level=args.level).fit(fitted + context)
    predictions = [score_prediction(fitter, target, prefix) for target in targets]
    record = fitter.to_dict() | {"predictions": predictions}
    record["choices"]["prefix"] = prefix
    record["choices"]["schedule_rebuild"] = "per-step LRs linearly interpolated between logged rows"
    if args.json:
        print(json.dumps(_nan_to_none(record), default=_json_default, allow_nan=False))
    else:
        print(_table(record))
    return 0


def _json_default(value):
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    raise TypeError(f"not JSON-serialisable: {type(value).__name__}")


def _nan_to_none(record):
    if isinstance(record, float) and not math.isfinite(record):
        return None
    if isinstance(record, dict):
        return {k: _nan_to_none(v) for k, v in record.items()}
    if isinstance(record, list):
        return [_nan_to_none(v) for v in record]
    return record


def _table(record: dict) -> str:
    params = "  ".join(f"{k}={v:.4g}" for k, v in record["params"].items())
    lines = [
        f"law {record['law']}  status {record['status']}  converged {record['converged']}  "
        f"drop term {record['drop_term']}  {record['n_points']} points  {record['fit_seconds']:.2f} s",
        f"params: {params}",
    ]
    if record["predictions"]:
        header = f"{'file':<28}{'mae':>8}{'rmse':>8}{'r2':>8}{'predE':>8}{'worstE':>8}{'final':>9}{'pred':>9}{'interval':>20}"
        lines += ["", header]
        for p in record["predictions"]:
            lines.append(
                f"{p['file']:<28}{p['mae']:>8.4f}{p['rmse']:>8.4f}{p['r2']:>8.4f}{p['pred_e']:>8.4f}{p['worst_e']:>8.4f}"
                f"{p['final_true']:>9.4f}{p['final_pred']:>9.4f}   [{p['final_low']:.4f}, {p['final_high']:.4f}]"
            )
    return "\n".join(lines)
