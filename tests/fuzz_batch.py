"""Many fuzz cases on several processes: seeded chunks of curve or sweep cases through one target, one tally."""

from __future__ import annotations

from tests.fuzz_harness import (
    CHEAP_CURVE_TARGET,
    CURVE_TARGETS,
    Outcome,
    Tally,
    call_with_contract,
    curve_cases,
    warm_imports,
)
from tests.fuzz_sweeps import SWEEP_TARGETS, sweep_cases


# ---------------------------------------------------------------- many cases, several processes
def _curve_chunk(task: tuple[str, int, int, int, int]) -> list[Outcome]:
    target, seed, start, stop, memory_every = task
    import warnings

    warnings.simplefilter("ignore")
    forecast, numbers = CURVE_TARGETS[target] if target in CURVE_TARGETS else CHEAP_CURVE_TARGET[1:]
    outcomes = []
    for index, case in enumerate(curve_cases(stop, seed)):
        if index >= start:
            measure = memory_every > 0 and (index % memory_every == 0 or case.total_steps >= 10**7)
            outcomes.append(
                call_with_contract(target, case.label, lambda c=case: forecast(c), numbers, measure_memory=measure)
            )
    return outcomes


def _sweep_chunk(task: tuple[str, int, int, int, int]) -> list[Outcome]:
    target, seed, start, stop, memory_every = task
    import warnings

    warnings.simplefilter("ignore")
    fit, numbers = SWEEP_TARGETS[target]
    outcomes = []
    for index, case in enumerate(sweep_cases(stop, seed)):
        if index >= start:
            measure = memory_every > 0 and index % memory_every == 0
            outcomes.append(
                call_with_contract(target, case.label, lambda c=case: fit(c), numbers, measure_memory=measure)
            )
    return outcomes


def tally_many(kind: str, target: str, n: int, seed: int, workers: int = 1, memory_every: int = 0) -> Tally:
    """Put ``n`` seeded cases (``kind`` "curve" or "sweep") through ``target`` on ``workers`` processes."""
    import multiprocessing

    warm_imports()  # before forking, and so that no case pays for an import in its seconds or memory
    size = max(1, -(-n // (4 * max(workers, 1))))
    tasks = [(target, seed, a, min(a + size, n), memory_every) for a in range(0, n, size)]
    chunk = _curve_chunk if kind == "curve" else _sweep_chunk
    if workers > 1:
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            chunks = pool.map(chunk, tasks)
    else:
        chunks = [chunk(task) for task in tasks]
    tally = Tally(target)
    for outcomes in chunks:
        for outcome in outcomes:
            tally.add(outcome)
    return tally
