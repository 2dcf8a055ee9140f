"""Fuzz cases across runs: pathological L(N, D) inputs for the cross-run fitters, and pathological sweeps for
the stopping policies, each with its targets and contract (see :mod:`tests.fuzz_harness`)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from tests.fuzz_harness import (
    HANG_SECONDS,
    Tally,
    call_with_contract,
    curve_cases,
    per_step_lrs,
)


# ---------------------------------------------------------------- L(N, D) inputs
@dataclass
class SweepCase:
    """Cross-run points a user could hand the L(N, D) fitter: N, D, loss (and run groups)."""

    label: str
    params: np.ndarray
    tokens: np.ndarray
    loss: np.ndarray
    groups: np.ndarray


SWEEP_KINDS = (
    "clean",
    "collinear",
    "one_size",
    "one_budget",
    "three_points",
    "tiny",
    "huge",
    "constant_loss",
    "rising_loss",
    "noise",
    "duplicates",
    "nan",
    "nonpositive",
    "mixed_scale",
)


def sweep_cases(n: int, seed: int = 0) -> Iterator[SweepCase]:
    """``n`` pathological (N, D, loss) sets, cycling through :data:`SWEEP_KINDS`."""
    rng = np.random.default_rng(seed)
    for i in range(n):
        yield _sweep_case(SWEEP_KINDS[i % len(SWEEP_KINDS)], rng, i)


def _sweep_case(kind: str, rng: np.random.Generator, index: int) -> SweepCase:
    m = int(rng.integers(3, 60)) if kind != "three_points" else 3
    n = 10 ** rng.uniform(6, 10, m)
    d = 10 ** rng.uniform(8, 12, m)
    if kind == "collinear":
        d = n * 10 ** rng.uniform(0.5, 2)
    elif kind == "one_size":
        n = np.full(m, n[0])
    elif kind == "one_budget":
        d = 1e20 / (6 * n)
    elif kind == "duplicates":
        n, d = np.repeat(n[: m // 2 + 1], 2)[:m], np.repeat(d[: m // 2 + 1], 2)[:m]
    loss = 1.7 + 400 / n**0.34 + 410 / d**0.28
    loss = loss * np.exp(0.01 * rng.standard_normal(m))
    if kind == "tiny":
        n, d, loss = n * 1e-12, d * 1e-15, loss * 1e-9
    elif kind == "huge":
        n, d, loss = n * 1e20, d * 1e25, loss * 1e12
    elif kind == "mixed_scale":
        n = n * 10 ** rng.uniform(-20, 20, m)
    elif kind == "constant_loss":
        loss = np.full(m, 10 ** rng.uniform(-3, 3))
    elif kind == "rising_loss":
        loss = 1 + 1e-3 * n**0.3
    elif kind == "noise":
        loss = 10 ** rng.uniform(-1, 1, m)
    elif kind == "nan":
        loss[rng.integers(0, m)] = rng.choice([np.nan, np.inf])
    elif kind == "nonpositive":
        d[rng.integers(0, m)] = rng.choice([0.0, -1e9])
    groups = rng.integers(0, max(m // 2, 1), m)
    return SweepCase(f"{index}:{kind}", n, d, loss, groups)


def compute_optimal_fit(case: SweepCase) -> dict[str, Any]:
    """Chinchilla approach 3 (``ComputeOptimalLaw``), its frontier at 10x the largest budget and its record."""
    from scaling_callback.fitting.compute_optimal import ComputeOptimalLaw

    law = ComputeOptimalLaw().fit(case.params, case.tokens, case.loss)
    out: dict[str, Any] = {"status": "ok" if law.status_ == "converged" else law.status_, "params": law.params_}
    law.to_dict()
    if law.status_ != "failed":
        front = law.frontier([10 * law.max_flops_])
        out["frontier"] = front[["n_opt", "d_opt"]].to_numpy()
    return out


def bootstrap_fit(case: SweepCase) -> dict[str, Any]:
    """The run-clustered bootstrap of a fitted law (few resamples, serial)."""
    from scaling_callback.fitting.bootstrap import bootstrap_compute_optimal
    from scaling_callback.fitting.compute_optimal import ComputeOptimalLaw

    law = ComputeOptimalLaw(n_best_starts=2, compare_tied=False).fit(case.params, case.tokens, case.loss)
    result = bootstrap_compute_optimal(law, groups=case.groups, n_resamples=8, n_jobs=1)
    result.to_dict()
    return {"status": "ok" if law.status_ == "converged" else law.status_, "params": law.params_}


def isoflop_fit(case: SweepCase) -> dict[str, Any]:
    """Chinchilla approach 2 on budgets grouped from C = 6ND."""
    from scaling_callback.fitting.isoflop import IsoFlopFit

    fit = IsoFlopFit().fit(case.params, 6 * case.params * case.tokens, case.loss)
    fit.to_dict()
    return {"status": getattr(fit, "status_", "ok")}


def loss_to_loss_fit(case: SweepCase) -> dict[str, Any]:
    """Loss-to-loss law between the case's loss and a shifted power of it."""
    from scaling_callback.fitting.loss_to_loss import LossToLossLaw

    law = LossToLossLaw().fit(case.loss, 0.5 + case.loss**0.8)
    law.to_dict()
    return {"status": getattr(law, "status_", "ok")}


def broken_power_fit(case: SweepCase) -> dict[str, Any]:
    """Broken power law of loss against N (BNSL, one break)."""
    from scaling_callback.fitting.broken_power import BrokenPowerLaw

    law = BrokenPowerLaw().fit(case.params, case.loss)
    law.to_dict()
    return {"status": getattr(law, "status_", "ok")}


SWEEP_TARGETS: dict[str, tuple[Callable[[SweepCase], Mapping[str, Any]], tuple[str, ...]]] = {
    "ComputeOptimalLaw (L(N, D))": (compute_optimal_fit, ("params", "frontier")),
    "bootstrap_compute_optimal": (bootstrap_fit, ("params",)),
    "IsoFlopFit": (isoflop_fit, ()),
    "LossToLossLaw": (loss_to_loss_fit, ()),
    "BrokenPowerLaw (BNSL)": (broken_power_fit, ()),
}


def sweep_contract(
    fit: Callable[[SweepCase], Mapping[str, Any]],
    cases: Iterable[SweepCase],
    target: str,
    numbers: Iterable[str] = (),
    limit_s: float = HANG_SECONDS,
    measure_memory: bool = True,
) -> Tally:
    """Tally a cross-run fitter over ``cases``."""
    tally = Tally(target)
    numbers = tuple(numbers)
    for case in cases:
        tally.add(call_with_contract(target, case.label, lambda c=case: fit(c), numbers, limit_s, measure_memory))
    return tally


# ---------------------------------------------------------------- stopping policies
@dataclass
class StoppingCase:
    """A sweep as a policy sees it mid-run: finished runs and one running run, with pathological curves."""

    label: str
    runs: list  # RunView arguments: dicts


def stopping_cases(n: int, seed: int = 0) -> Iterator[StoppingCase]:
    """``n`` sweeps whose curves come from :func:`curve_cases` (NaN, spikes, zero LR, ...)."""
    rng = np.random.default_rng(seed)
    curves = curve_cases(n * 4, seed)
    for i in range(n):
        runs = []
        for j in range(int(rng.integers(1, 4)) + 1):
            case = next(curves)
            x = np.unique(case.steps[np.isfinite(case.steps) & (case.steps > 0)])
            loss = case.loss[: x.size] if case.loss.size >= x.size else np.resize(case.loss, x.size)
            status = "running" if j == 0 else str(rng.choice(["finished", "stopped"]))
            budget = float(max(case.total_steps, x.max() if x.size else 1.0))
            if status == "running" and x.size:
                keep = x <= budget * rng.uniform(0.05, 0.95)
                x, loss = x[keep], loss[keep]
            lrs = per_step_lrs(case, 20_000) if rng.random() < 0.5 and budget <= 20_000 else None
            if lrs is not None and lrs.size != int(budget):
                lrs = None
            runs.append({"name": f"r{j}", "x": x, "loss": loss, "budget": budget, "status": status, "lrs": lrs})
        yield StoppingCase(f"{i}:" + ",".join(c.label.split(":")[1] for c in [case]), runs)


def policy_decision(make_policy: Callable[[], Any]) -> Callable[[StoppingCase], dict[str, Any]]:
    """A target: build the views, ask a fresh policy about the running run at a few of its points."""

    def decide(case: StoppingCase) -> dict[str, Any]:
        from scaling_callback.stopping.views import RunView, SweepView

        views = [RunView(**run) for run in case.runs]
        policy = make_policy()
        running = views[0]
        decision = None
        for n in sorted({max(1, running.x.size // 3), max(1, 2 * running.x.size // 3), running.x.size}):
            now = RunView(running.name, running.x[:n], running.loss[:n], running.budget, "running", running.lrs)
            sweep = SweepView(tuple([now] + views[1:]))
            decision = policy.decide(now, sweep)
        if decision is None:
            return {"status": "no points"}
        return {"status": "ok", "probability": 0.5 if decision.probability is None else decision.probability}

    return decide


def _policies() -> dict[str, Callable[[], Any]]:
    from scaling_callback.stopping import FixedBudgetPolicy, LawPolicy, MedianPolicy, SuccessiveHalvingPolicy

    return {
        "MedianPolicy": lambda: MedianPolicy(n_startup_runs=0),
        "SuccessiveHalvingPolicy": SuccessiveHalvingPolicy,
        "FixedBudgetPolicy": FixedBudgetPolicy,
        "LawPolicy": LawPolicy,
    }


def stopping_targets() -> dict[str, tuple[Callable[[StoppingCase], Mapping[str, Any]], tuple[str, ...]]]:
    """Every stopping policy as a fuzz target (numbers: the decision's probability)."""
    return {name: (policy_decision(make), ("probability",)) for name, make in _policies().items()}


def stopping_contract(
    decide: Callable[[StoppingCase], Mapping[str, Any]],
    cases: Iterable[StoppingCase],
    target: str,
    numbers: Iterable[str] = (),
    limit_s: float = HANG_SECONDS,
    measure_memory: bool = False,
) -> Tally:
    """Tally a policy over sweeps of pathological curves."""
    tally = Tally(target)
    numbers = tuple(numbers)
    for case in cases:
        tally.add(call_with_contract(target, case.label, lambda c=case: decide(c), numbers, limit_s, measure_memory))
    return tally
