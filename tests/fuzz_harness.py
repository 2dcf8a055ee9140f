"""Fuzz harness: pathological inputs, one contract per target, a tally per target.

Used by the fuzz tests (fast tier by default, ``slow`` tier ≥ 10 000 curves) and by
``benchmarks/bench_fuzz.py``. The contract of a fitter or forecaster: it returns a status (a
clear :class:`InputError` on bad input counts as an input error, any other exception is a
failure), finite numbers whenever the status says ``ok``, within a bounded time and memory.

A new forecaster is plugged in with :func:`forecaster_contract`, which takes any callable mapping a
:class:`CurveCase` to a mapping with ``status`` and the numbers that must be finite when it is ok.
"""

from __future__ import annotations

import math
import time
import tracemalloc
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from scaling_callback.errors import InputError

HANG_SECONDS = 10.0  # the bound on one fit
MAX_DENSE_STEPS = 10**7  # per-step LR arrays (the callback's FitRequest) are built up to this many steps


@dataclass
class CurveCase:
    """What a user could hand a per-run fitter: logged rows of (step, lr, loss) and the planned end."""

    label: str
    steps: np.ndarray
    loss: np.ndarray
    lrs: np.ndarray
    total_steps: int
    warmup_steps: int = 0


@dataclass
class Outcome:
    """One case: ``kind`` is status / input error / exception / hang / broken (ok with non-finite numbers)."""

    target: str
    label: str
    kind: str
    status: str
    seconds: float
    peak_bytes: int
    detail: str = ""


@dataclass
class Tally:
    """Outcomes of one target, summed."""

    target: str
    cases: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    input_errors: int = 0
    exceptions: int = 0
    hangs: int = 0
    broken: int = 0
    max_seconds: float = 0.0
    max_bytes: int = 0
    failures: list[Outcome] = field(default_factory=list)

    def add(self, outcome: Outcome) -> None:
        self.cases += 1
        self.max_seconds = max(self.max_seconds, outcome.seconds)
        self.max_bytes = max(self.max_bytes, outcome.peak_bytes)
        if outcome.kind == "status":
            key = outcome.status.split(":")[0]
            self.statuses[key] = self.statuses.get(key, 0) + 1
        elif outcome.kind == "input error":
            self.input_errors += 1
        else:
            setattr(
                self,
                {"exception": "exceptions", "hang": "hangs", "broken": "broken"}[outcome.kind],
                getattr(self, {"exception": "exceptions", "hang": "hangs", "broken": "broken"}[outcome.kind]) + 1,
            )
            self.failures.append(outcome)

    @property
    def ok(self) -> bool:
        return not (self.exceptions or self.hangs or self.broken)


def warm_imports() -> None:
    """Import every module the targets use (a first case would otherwise count the imports as its cost)."""
    import scaling_callback.callback.fit_job
    import scaling_callback.fitting.bootstrap
    import scaling_callback.fitting.broken_power
    import scaling_callback.fitting.compute_optimal
    import scaling_callback.fitting.curve_fitter
    import scaling_callback.fitting.isoflop
    import scaling_callback.fitting.loss_to_loss
    import scaling_callback.fitting.sweep_forecaster
    import scaling_callback.stopping  # noqa: F401


def call_with_contract(
    target: str,
    label: str,
    call: Callable[[], Mapping[str, Any]],
    numbers: Iterable[str] = (),
    limit_s: float = HANG_SECONDS,
    measure_memory: bool = True,
) -> Outcome:
    """Run ``call`` once; classify what it did against the contract."""
    if measure_memory:
        tracemalloc.start()
    started = time.perf_counter()
    kind, status, detail = "status", "", ""
    try:
        result = call()
        status = str(result.get("status", ""))
        if status == "ok":
            bad = [n for n in numbers if not _finite(result.get(n))]
            if bad:
                kind, detail = "broken", f"status ok with non-finite {', '.join(bad)}"
        elif not status:
            kind, detail = "broken", "no status"
    except InputError as error:
        kind, status, detail = "input error", "input error", str(error)
        if "\n" in detail or not detail:
            kind = "exception"
    except Exception as error:
        kind, status, detail = "exception", "exception", f"{type(error).__name__}: {error}"
    seconds = time.perf_counter() - started
    peak = 0
    if measure_memory:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    if seconds > limit_s and kind != "exception":
        kind, detail = "hang", f"{seconds:.1f} s ({detail or status})"
    return Outcome(target, label, kind, status, seconds, peak, detail)


def _finite(value: Any) -> bool:
    if value is None:
        return False
    if isinstance(value, Mapping):
        return all(_finite(v) for v in value.values())
    try:
        return bool(np.all(np.isfinite(np.asarray(value, dtype=float))))
    except (TypeError, ValueError):
        return False


def forecaster_contract(
    forecast: Callable[[CurveCase], Mapping[str, Any]],
    cases: Iterable[CurveCase],
    target: str = "forecaster",
    numbers: Iterable[str] = (),
    limit_s: float = HANG_SECONDS,
    measure_memory: bool = True,
) -> Tally:
    """Tally ``forecast`` over ``cases``: the per-run forecaster contract, for any callable."""
    warm_imports()
    tally = Tally(target)
    numbers = tuple(numbers)
    for case in cases:
        tally.add(call_with_contract(target, case.label, lambda c=case: forecast(c), numbers, limit_s, measure_memory))
    return tally


# ---------------------------------------------------------------- curve cases
CURVE_KINDS = (
    "clean",
    "nan_inf",
    "constant",
    "rising",
    "few_points",
    "unsorted",
    "duplicated",
    "scale",
    "zero_lr",
    "negative_lr",
    "short_schedule",
    "huge_schedule",
    "spikes",
    "noise",
    "zero_loss",
)


def curve_cases(n: int, seed: int = 0) -> Iterator[CurveCase]:
    """``n`` pathological curves, cycling through :data:`CURVE_KINDS` with random sizes and scales."""
    rng = np.random.default_rng(seed)
    for i in range(n):
        yield _curve_case(CURVE_KINDS[i % len(CURVE_KINDS)], rng, i)


def _curve_case(kind: str, rng: np.random.Generator, index: int) -> CurveCase:
    total = int(10 ** rng.uniform(2, 5)) if kind != "huge_schedule" else int(10 ** rng.uniform(7, 8))
    warmup = int(rng.choice([0, 0, total // 50, total // 10]))
    n = int(rng.integers(6, 300)) if kind != "few_points" else int(rng.integers(0, 6))
    steps = np.unique(rng.integers(warmup + 1, total + 1, size=max(n, 1)))[:n].astype(float)
    peak = 10 ** rng.uniform(-5, 0)
    shape = rng.choice(["constant", "cosine", "wsd", "step"])
    lrs = _lr_shape(shape, steps, warmup, total, peak)
    s1 = np.cumsum(np.maximum(lrs, 0) * np.diff(np.concatenate([[warmup], steps])).clip(min=1)) + 1e-12
    loss = 2.0 + 3.0 * (s1 / s1[0]) ** -rng.uniform(0.1, 1.0) if steps.size else np.zeros(0)
    loss = loss - 0.5 * (peak - lrs) / peak * rng.uniform(0, 0.5)
    loss = loss * (1 + 0.01 * rng.standard_normal(loss.size))
    scale = 1.0
    if kind == "nan_inf" and loss.size:
        where = rng.random(loss.size) < 0.2
        loss[where] = rng.choice([np.nan, np.inf, -np.inf], where.sum())
    elif kind == "constant":
        loss = np.full(loss.size, 10 ** rng.uniform(-3, 3))
    elif kind == "rising":
        loss = loss[::-1].copy()
    elif kind == "unsorted":
        order = rng.permutation(steps.size)
        steps, loss, lrs = steps[order], loss[order], lrs[order]
    elif kind == "duplicated" and steps.size:
        pick = rng.integers(0, steps.size, steps.size // 3 + 1)
        steps, loss, lrs = np.append(steps, steps[pick]), np.append(loss, loss[pick] * 1.01), np.append(lrs, lrs[pick])
    elif kind == "scale":
        scale = 10 ** rng.uniform(-9, 9)
    elif kind == "zero_lr":
        lrs = np.where(rng.random(lrs.size) < 0.5, 0.0, lrs) if rng.random() < 0.5 else np.zeros(lrs.size)
    elif kind == "negative_lr" and lrs.size:
        lrs[rng.integers(0, lrs.size)] = -peak
    elif kind == "short_schedule":
        total = max(int(steps.max() // 2) if steps.size else 1, 1)
    elif kind == "spikes" and loss.size:
        where = rng.random(loss.size) < 0.05
        loss[where] *= 10 ** rng.uniform(1, 6, where.sum())
    elif kind == "noise":
        loss = 10 ** rng.uniform(-2, 2, loss.size)
    elif kind == "zero_loss" and loss.size:
        loss[rng.integers(0, loss.size)] = rng.choice([0.0, -1.0])
    return CurveCase(f"{index}:{kind}:{shape}", steps, loss * scale, lrs, total, warmup)


def _lr_shape(shape: str, steps: np.ndarray, warmup: int, total: int, peak: float) -> np.ndarray:
    x = (steps - warmup) / max(total - warmup, 1)
    if shape == "constant":
        return np.full(steps.size, peak)
    if shape == "cosine":
        return peak * (0.1 + 0.45 * (1 + np.cos(np.pi * x)))
    if shape == "wsd":
        return np.where(x < 0.8, peak, peak * (1 - (x - 0.8) / 0.2 * 0.9))
    return np.where(x < 0.5, peak, peak * 0.1)


def per_step_lrs(case: CurveCase, max_dense: int = 10**6) -> np.ndarray | None:
    """The case's schedule as per-step LRs (the callback's form), or None beyond ``max_dense`` steps."""
    if case.total_steps > max_dense:
        return None
    grid = np.arange(1, case.total_steps + 1, dtype=float)
    order = np.argsort(case.steps, kind="stable")
    if case.steps.size == 0:
        return np.full(case.total_steps, 1e-3)
    lrs = np.interp(grid, case.steps[order], case.lrs[order])
    if case.warmup_steps:
        lrs[: case.warmup_steps] = lrs[case.warmup_steps] * grid[: case.warmup_steps] / case.warmup_steps
    return lrs


def fit_job_forecast(case: CurveCase) -> dict[str, Any]:
    """The callback's path: ``run_fit`` on a FitRequest, whose LRs are per step by design (8 bytes a step).

    Schedules beyond :data:`MAX_DENSE_STEPS` are cut there for this target (the 1e8-step cases go
    through :func:`curve_fitter_forecast`, which never builds per-step LRs).
    """
    from scaling_callback.callback.fit_job import FitRequest, run_fit

    if case.total_steps > MAX_DENSE_STEPS:
        keep = case.steps <= MAX_DENSE_STEPS
        case = CurveCase(
            case.label, case.steps[keep], case.loss[keep], case.lrs[keep], MAX_DENSE_STEPS, case.warmup_steps
        )
    lrs = per_step_lrs(case, MAX_DENSE_STEPS)
    step = int(np.nanmax(case.steps)) if case.steps.size else 0
    result = run_fit(FitRequest("fuzz", step, case.steps, case.loss, lrs))
    return _finite_view(result)


def curve_fitter_forecast(case: CurveCase) -> dict[str, Any]:
    """The CLI's path: a Schedule rebuilt from the logged rows, :class:`CurveFitter` and its final prediction."""
    from scaling_callback.fitting.curve_fitter import CurveFitter
    from scaling_callback.fitting.curves import Curve
    from scaling_callback.laws.schedule import Schedule

    schedule = Schedule.from_logged(case.steps, case.lrs, warmup_steps=case.warmup_steps, total_steps=case.total_steps)
    usable = case.steps > case.warmup_steps
    curve = Curve(schedule, case.steps[usable], case.loss[usable], "fuzz")
    fitter = CurveFitter(n_starts=2, jackknife=False).fit([curve])
    out: dict[str, Any] = {"status": fitter.status_, "params": fitter.params_}
    if fitter.status_ == "ok":
        final = fitter.predict_final(schedule)
        out["prediction"] = (
            final.loss if fitter.drop_term_ != "unconstrained" or math.isfinite(final.loss) else final.high
        )
    return out


def curve_terms_forecast(case: CurveCase) -> dict[str, Any]:
    """Everything a per-run fit does before its optimiser: schedule, binning, LR terms, each law and its Jacobian.

    Cheap (a few milliseconds), so the slow tier can put 10 000 curves through it; the optimiser
    itself is covered by the full targets on fewer curves. ``terms`` (S1, S_k(t), lags, drops) must
    be finite when the status is ok.
    """
    from scaling_callback.fitting.curves import Curve, bin_curve
    from scaling_callback.laws.loss_curves import CURVE_LAWS
    from scaling_callback.laws.lr_terms import lr_terms
    from scaling_callback.laws.schedule import Schedule

    schedule = Schedule.from_logged(case.steps, case.lrs, warmup_steps=case.warmup_steps, total_steps=case.total_steps)
    steps, loss = bin_curve(case.steps, case.loss, schedule.warmup_steps, 128)
    curve = Curve(schedule, steps, loss, "fuzz")
    if len(curve) < 3:
        return {"status": "failed: fewer than 3 usable points"}
    terms = lr_terms([schedule], [curve.steps], 128)
    final = lr_terms([schedule], [np.array([schedule.total_steps])])
    natural = {
        "L0": 0.5 * float(curve.loss.min()),
        "A": float(curve.loss.max()),
        "alpha": 0.5,
        "B": 100.0,
        "C": 1.0,
        "beta": 0.5,
        "gamma": 0.5,
        "lam": 0.999,
    }
    for law in CURVE_LAWS.values():
        vector = np.array([natural[n] for n in law.param_names])
        with np.errstate(all="ignore"):
            law.loss_and_jacobian(vector, terms)
            law.loss(vector, final)
    values = [np.ravel(part) for t in (terms, final) for part in (t.s1, t.pair_sum, t.pair_lag, t.pair_dlr, t.block_lr)]
    return {"status": "ok", "terms": np.concatenate(values)}


def _finite_view(result: Mapping[str, Any]) -> dict[str, Any]:
    """run_fit's result with the number that must be finite when ok (the upper bound when the drop is unknown)."""
    out = dict(result)
    if out.get("drop_term") == "unconstrained" and not _finite(out.get("pred_final_loss")):
        out["prediction"] = out.get("pred_final_high")
    else:
        out["prediction"] = out.get("pred_final_loss")
    return out


CHEAP_CURVE_TARGET = ("schedule, LR terms, law passes", curve_terms_forecast, ("terms",))

CURVE_TARGETS: dict[str, tuple[Callable[[CurveCase], Mapping[str, Any]], tuple[str, ...]]] = {
    "run_fit (callback fit job)": (fit_job_forecast, ("prediction", "pred_final_high")),
    "CurveFitter (logged CSV path)": (curve_fitter_forecast, ("params", "prediction")),
}
