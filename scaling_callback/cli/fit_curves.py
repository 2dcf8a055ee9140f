"""``scaling-callback fit-curves``: fit a per-run law to logged curves and predict other schedules.

    scaling-callback fit-curves --warmup-steps W --fit PATH[#RUN] ... [--predict PATH[#RUN] ...] [--prefix F]
        [--from csv|lightning-csv|tensorboard|wandb|store] [--loss-col NAME] [--lr-col NAME] ... [--json]

Each PATH holds one or more runs in the ``--from`` format (see :mod:`scaling_callback.io`); every run
is one curve. A curve named in both ``--fit`` and ``--predict`` is used once: with ``--prefix`` its
first F of points join the fit and the rest are scored; without, it is fitted whole and its
prediction is in-sample (marked so).
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np

from scaling_callback.cli.curve_source import add_source_arguments, curve_label, read_spec, split_run
from scaling_callback.errors import InputError
from scaling_callback.fitting.curve_fitter import CurveFitter
from scaling_callback.fitting.curve_metrics import score_prediction
from scaling_callback.fitting.curve_space import BOUNDS, to_internal
from scaling_callback.fitting.curves import Curve
from scaling_callback.io import curves_from_frame
from scaling_callback.laws.loss_curves import CURVE_LAWS

COLUMN_LEGEND = (
    "mae, rmse: mean absolute and root-mean-square error of the loss; r2: 1 - SSE/SST of the loss; "
    "predE: mean |L - pred|/L; worstE: max |L - pred|/L (MPL paper's metrics, on the scored points); "
    "final, pred: last logged loss and its prediction; interval: the predictive interval of the final loss"
)
# a parameter this close to a bound of its optimizer coordinate (fraction of the coordinate's range) sits on it
BOUND_TOLERANCE = 1e-3


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--law", choices=sorted(CURVE_LAWS), default="mpl", help="loss-curve law")
    parser.add_argument("--warmup-steps", type=int, required=True, metavar="W", help="linear warmup length in steps")
    parser.add_argument("--fit", nargs="+", required=True, metavar="PATH", help="curves fitted jointly (PATH or PATH#RUN)")
    parser.add_argument("--predict", nargs="*", default=[], metavar="PATH", help="curves to predict (PATH or PATH#RUN)")
    parser.add_argument("--prefix", type=float, default=None, metavar="F",
                        help="each --predict curve also contributes its first F (0 < F <= 1) of rows to the fit")
    parser.add_argument("--level", type=float, default=0.9, help="coverage of the final-loss interval")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    add_source_arguments(parser, ("run", "step", "loss", "lr", "lr_sum"))


def run(args: argparse.Namespace) -> int:
    if args.warmup_steps < 0:
        raise InputError(f"--warmup-steps must be >= 0, got {args.warmup_steps}")
    if args.prefix is not None and not 0 < args.prefix <= 1:
        raise InputError(f"--prefix must be in (0, 1], got {args.prefix}")
    if not 0 < args.level < 1:
        raise InputError(f"--level must be in (0, 1), got {args.level}")
    fitted = _read_curves(args.fit, args)
    targets = _read_curves(args.predict, args)
    prefix = args.prefix
    predicted = {key for key, _ in targets}
    notes = []
    if prefix is not None:  # a predicted curve contributes only its prefix, even when also named in --fit
        twice = [curve.name for key, curve in fitted if key in predicted]
        fitted = [(key, curve) for key, curve in fitted if key not in predicted]
        if twice:
            notes.append(f"{', '.join(twice)} named in --fit and --predict: only its first {prefix:g} joined the fit")
    context = [curve.head(prefix) for _, curve in targets] if prefix is not None else []
    fitter = CurveFitter(law=args.law, level=args.level).fit([curve for _, curve in fitted] + context)
    fitted_keys = {key for key, _ in fitted}
    predictions = []
    for key, target in targets:
        row = score_prediction(fitter, target, prefix)
        row["in_sample"] = key in fitted_keys
        predictions.append(row)
    record = fitter.to_dict() | {"predictions": predictions}
    record["choices"]["prefix"] = prefix
    record["choices"]["schedule_rebuild"] = "per-step LRs linearly interpolated between logged rows"
    record["choices"]["source"] = args.source
    record["warnings"] = notes + _bound_warnings(record["params"])
    record["columns"] = COLUMN_LEGEND
    if args.json:
        print(json.dumps(_nan_to_none(record), default=_json_default, allow_nan=False))
    else:
        print(_table(record))
    return 0


def _read_curves(specs: list[str], args: argparse.Namespace) -> list[tuple[tuple[str, str], Curve]]:
    """Curves of every ``PATH[#RUN]``, each once, keyed by (resolved path, run)."""
    curves: dict[tuple[str, str], Curve] = {}
    for spec in specs:
        frame = read_spec(spec, args)
        path, _ = split_run(spec)
        runs = list(dict.fromkeys(frame["run"]))
        for curve in curves_from_frame(frame, args.warmup_steps, path):
            key = (str(Path(path).resolve()) if "://" not in path else path, str(curve.name))
            label = curve_label(spec, str(curve.name), len(runs))
            curves.setdefault(key, Curve(curve.schedule, curve.steps, curve.loss, label))
    return list(curves.items())


def _bound_warnings(params: dict[str, float]) -> list[str]:
    """A parameter at a bound of its search range was not determined by the data (its value is the bound's)."""
    warnings = []
    for name, value in params.items():
        if name not in BOUNDS or not np.isfinite(value):
            continue
        _, low, high = BOUNDS[name]
        lo, hi, at = (to_internal(name, v) for v in (low, high, value))
        for side, edge in (("lower", lo), ("upper", hi)):
            if abs(at - edge) <= BOUND_TOLERANCE * abs(hi - lo):
                warnings.append(f"{name} = {value:.4g} sits on its {side} bound: not determined by these curves")
    return warnings


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
    lines += [f"warning: {text}" for text in record["warnings"]]
    if record["predictions"]:
        header = f"{'curve':<28}{'mae':>8}{'rmse':>8}{'r2':>8}{'predE':>8}{'worstE':>8}{'final':>9}{'pred':>9}{'interval':>20}"
        lines += ["", header]
        for p in record["predictions"]:
            lines.append(
                f"{p['file']:<28}{p['mae']:>8.4f}{p['rmse']:>8.4f}{p['r2']:>8.4f}{p['pred_e']:>8.4f}{p['worst_e']:>8.4f}"
                f"{p['final_true']:>9.4f}{p['final_pred']:>9.4f}   [{p['final_low']:.4f}, {p['final_high']:.4f}]"
                + ("  (in-sample: also fitted)" if p["in_sample"] else "")
            )
        lines += ["", "columns: " + record["columns"]]
    return "\n".join(lines)
