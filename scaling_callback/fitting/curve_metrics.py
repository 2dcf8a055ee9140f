"""Accuracy of a predicted loss curve, as reported by Luo et al. 2025 (MPL code and Table 1)."""

from __future__ import annotations

import numpy as np

from scaling_callback.fitting.curve_fitter import CurveFitter
from scaling_callback.fitting.curves import Curve


def curve_metrics(observed: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """MAE and RMSE of the raw loss, R², PredE = mean |L − L̂|/L and WorstE = max |L − L̂|/L."""
    observed = np.asarray(observed, dtype=float)
    predicted = np.asarray(predicted, dtype=float)
    if observed.size == 0:
        nan = float("nan")
        return {"mae": nan, "rmse": nan, "r2": nan, "pred_e": nan, "worst_e": nan}
    error = predicted - observed
    spread = float(np.sum((observed - observed.mean()) ** 2))
    relative = np.abs(error) / observed
    return {
        "mae": float(np.mean(np.abs(error))),
        "rmse": float(np.sqrt(np.mean(error**2))),
        "r2": 1.0 - float(np.sum(error**2)) / spread if spread > 0 else float("nan"),
        "pred_e": float(np.mean(relative)),
        "worst_e": float(np.max(relative)),
    }


def score_prediction(fitter: CurveFitter, target: Curve, prefix: float | None = None) -> dict:
    """Metrics of ``fitter`` on ``target`` (on the rows after its first ``prefix`` when given) and its final-loss prediction."""
    scored = target.tail(prefix) if prefix is not None else target
    ok = fitter.status_ == "ok"
    if ok:
        metrics = curve_metrics(scored.loss, fitter.predict(scored.schedule, scored.steps))
    else:
        metrics = curve_metrics(np.zeros(0), np.zeros(0))
    final = fitter.predict_final(target.schedule) if ok else None
    nan = float("nan")
    return {
        "file": target.name,
        **metrics,
        "points_scored": len(scored),
        "final_true": float(target.loss[-1]),
        "final_pred": final.loss if final else nan,
        "final_low": final.low if final else nan,
        "final_high": final.high if final else nan,
        "drop_term": final.drop_term if final else fitter.drop_term_,
    }
