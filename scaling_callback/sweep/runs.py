"""From a sweep config to its runs: the grid expanded, each run's model built by its factory.

A factory is a built-in name (``tiny_lm``, ``plrf``) or an importable ``module:function`` (or
``module.function``). It is called as ``factory(size=..., tokens=..., schedule=..., seed=..., **args)``
where ``size`` is one grid entry (a mapping of size arguments), ``tokens`` the run's budget
(tokens, or samples for non-sequence models) and ``schedule`` a mapping with ``kind, peak_lr,
warmup_steps, final_lr_fraction, decay_fraction, switch_fraction``; it returns a :class:`RunSetup`.
When the config asks for a held-out evaluation (``evaluation.tokens`` > 0) the factory is also
called with ``eval_tokens=...`` and should give its datamodule a validation set of at least that
many tokens, the same for every run, and report the number in ``RunSetup.eval_tokens``.
"""

from __future__ import annotations

import importlib
import itertools
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from scaling_callback.errors import InputError
from scaling_callback.sweep.config import SweepConfig

#: Seed of the tiny LM's held-out stream: one for every run of every sweep (training streams use grid.seeds).
HELD_OUT_SEED = 1_000_000_007
#: Held-out sequences per validation batch: one forward pass over 256 × 31 tokens takes ~0.1 s on one core.
HELD_OUT_BATCH = 256


@dataclass
class RunSetup:
    """What the runner needs to train one run: the module, its data and its step budget."""

    module: Any  # lightning.pytorch.LightningModule
    max_steps: int
    tokens_per_step: int
    datamodule: Any = None
    eval_tokens: int = 0  # held-out tokens the datamodule's validation set scores (0: none)
    recorded: dict = field(default_factory=dict)  # facts of the run the factory adds to its stored config


@dataclass(frozen=True)
class RunSpec:
    """One run of the grid."""

    name: str
    size: dict
    tokens: float
    schedule: str
    seed: int
    peak_lr: float

    def config(self) -> dict:
        return asdict(self)


def expand_grid(config: SweepConfig) -> list[RunSpec]:
    """Every combination of sizes × token budgets × schedules × peak LRs × seeds, with readable unique names.

    The peak LR enters the name only when the grid sweeps it, so single-LR sweeps keep short names. With
    ``grid.design: one_run_per_size`` each size trains once, to the largest budget (the others are forecast).
    """
    runs = []
    grid = config.grid
    peak_lrs = [float(lr) for lr in grid.peak_lrs] or [float(config.optimizer.peak_lr)]
    budgets = [max(float(t) for t in grid.tokens)] if grid.design == "one_run_per_size" else grid.tokens
    for size, tokens, schedule, peak_lr, seed in itertools.product(
        grid.sizes, budgets, grid.schedules, peak_lrs, grid.seeds
    ):
        size_label = "-".join(f"{k}{v}" for k, v in sorted(size.items()))
        lr_label = f"_lr{peak_lr:.3g}" if len(peak_lrs) > 1 else ""
        name = f"{size_label}_t{float(tokens):.3g}_{schedule}{lr_label}_s{seed}".replace("+", "")
        runs.append(RunSpec(name, dict(size), float(tokens), schedule, int(seed), peak_lr))
    names = [r.name for r in runs]
    duplicate = next((n for n in names if names.count(n) > 1), None)
    if duplicate:
        raise InputError(f"config key 'grid': two runs would share the name {duplicate!r} (repeated grid entry?)")
    return runs


def resolve_factory(name: str) -> Callable[..., RunSetup]:
    """The built-in factory of that name, or the function at ``module:function``."""
    if name in BUILT_IN_FACTORIES:
        return BUILT_IN_FACTORIES[name]
    module_name, _, attribute = name.replace(":", ".").rpartition(".")
    if not module_name:
        raise InputError(
            f"config key 'model.factory': unknown factory {name!r} (built-ins: {', '.join(BUILT_IN_FACTORIES)}; or module:function)"
        )
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise InputError(f"config key 'model.factory': cannot import {module_name!r} ({error})") from None
    factory = getattr(module, attribute, None)
    if not callable(factory):
        raise InputError(f"config key 'model.factory': {module_name!r} has no callable {attribute!r}")
    return factory


def schedule_args(config: SweepConfig, kind: str, peak_lr: float | None = None) -> dict:
    """The schedule mapping handed to factories (``peak_lr`` from the grid, else the optimizer section)."""
    optimizer = config.optimizer
    return {
        "kind": kind,
        "peak_lr": optimizer.peak_lr if peak_lr is None else float(peak_lr),
        "warmup_steps": optimizer.warmup_steps,
        "final_lr_fraction": optimizer.final_lr_fraction,
        "decay_fraction": optimizer.decay_fraction,
        "switch_fraction": optimizer.switch_fraction,
    }


def build_run(config: SweepConfig, run: RunSpec) -> RunSetup:
    """Call the configured factory for ``run``; a failure is an InputError naming the factory."""
    factory = resolve_factory(config.model.factory)
    evaluation = {"eval_tokens": config.evaluation.tokens} if config.evaluation.tokens else {}
    try:
        setup = factory(
            size=run.size,
            tokens=run.tokens,
            schedule=schedule_args(config, run.schedule, run.peak_lr),
            seed=run.seed,
            **evaluation,
            **config.model.args,
        )
    except (TypeError, ValueError) as error:
        raise InputError(
            f"config key 'model': factory {config.model.factory!r} rejected run {run.name}: {error}"
        ) from None
    if evaluation and not setup.eval_tokens:
        raise InputError(
            f"config key 'evaluation.tokens': factory {config.model.factory!r} set up no held-out evaluation "
            "(RunSetup.eval_tokens is 0); set evaluation.tokens: 0 to use training-loss finals"
        )
    if not isinstance(setup, RunSetup):
        raise InputError(
            f"config key 'model.factory': {config.model.factory!r} returned {type(setup).__name__}, not RunSetup"
        )
    return setup


def tiny_lm_factory(
    size: dict,
    tokens: float,
    schedule: dict,
    seed: int,
    vocab_size: int = 64,
    seq_len: int = 32,
    batch_size: int = 16,
    zipf_exponent: float = 1.1,
    context_weight: float = 0.7,
    eval_tokens: int = 0,
    lr_width_reference: int | None = None,
    **model_args: Any,
) -> RunSetup:
    """The toy tiny transformer LM on a Zipfian Markov corpus (toy_models.tiny_lm).

    ``eval_tokens`` > 0: a held-out set of at least that many predicted tokens, drawn with one seed
    for every run (``HELD_OUT_SEED``), scored in batches of up to ``HELD_OUT_BATCH`` sequences.
    ``lr_width_reference`` W: the peak LR is the grid's × W / d_model, so it is the grid's at width W
    and falls as 1/width, as μP scales Adam's LR of hidden matrices (Yang et al. 2022, Tensor
    Programs V), here applied to every parameter. On the quickstart's corpus it is within 0.008
    nats of the best of ×0.5, ×1 and ×2 at every width from 8 to 128 and every budget from 128k to
    1M tokens, where the old quickstart's one LR (0.004) for every width loses up to 0.09 at width 8
    (measured, docs/toy-models.md).
    """
    from toy_models.schedules import ScheduleSpec
    from toy_models.tiny_lm import TinyLM
    from toy_models.zipf_corpus import ZipfDataModule

    tokens_per_step = batch_size * seq_len
    max_steps = max(schedule["warmup_steps"] + 2, math.ceil(tokens / tokens_per_step))
    size_args = dict(size)
    d_model = int(size_args.pop("d_model", 32))
    n_layers = int(size_args.pop("n_layers", 1))
    n_heads = int(size_args.pop("n_heads", max(1, d_model // 16)))
    recorded = {}
    if lr_width_reference is not None:
        if not lr_width_reference > 0:
            raise ValueError(f"lr_width_reference must be a positive width, got {lr_width_reference!r}")
        schedule = schedule | {"peak_lr": schedule["peak_lr"] * lr_width_reference / d_model}
        recorded = {"lr_width_reference": lr_width_reference, "effective_peak_lr": schedule["peak_lr"]}
    spec = ScheduleSpec(max_steps=max_steps, **schedule)
    module = TinyLM(
        vocab_size, d_model, n_layers, n_heads, seq_len, batch_size, spec, seed=seed, **size_args, **model_args
    )
    sequences = math.ceil(eval_tokens / (seq_len - 1)) if eval_tokens > 0 else 0  # a sequence predicts seq_len - 1
    val_batches = math.ceil(sequences / HELD_OUT_BATCH)
    per_batch = math.ceil(sequences / val_batches) if val_batches else 1  # equal batches, at most HELD_OUT_BATCH
    data = ZipfDataModule(
        vocab_size,
        zipf_exponent,
        context_weight,
        batch_size=batch_size,
        seq_len=seq_len,
        val_batches=max(val_batches, 1),
        seed=seed,
        source_seed=0,
        val_batch_size=per_batch,
        val_seed=HELD_OUT_SEED,
    )
    return RunSetup(module, max_steps, tokens_per_step, data, val_batches * per_batch * (seq_len - 1), recorded)


def plrf_factory(
    size: dict,
    tokens: float,
    schedule: dict,
    seed: int,
    v: int = 512,
    alpha: float = 1.0,
    beta: float = 1.5,
    batch_size: int = 8,
    **module_args: Any,
) -> RunSetup:
    """The trainable power-law random-feature model (toy_models.plrf_module); ``tokens`` counts samples."""
    from toy_models.plrf_module import make_plrf_module

    max_steps = max(schedule["warmup_steps"] + 2, math.ceil(tokens / batch_size))
    module = make_plrf_module(
        d=int(size["d"]),
        v=v,
        alpha=alpha,
        beta=beta,
        batch_size=batch_size,
        max_steps=max_steps,
        kind=schedule["kind"],
        warmup_steps=schedule["warmup_steps"],
        peak_lr=schedule["peak_lr"],
        final_lr_fraction=schedule["final_lr_fraction"],
        feature_seed=seed,
        data_seed=seed,
        **module_args,
    )
    return RunSetup(module, max_steps, batch_size)


BUILT_IN_FACTORIES: dict[str, Callable[..., RunSetup]] = {"tiny_lm": tiny_lm_factory, "plrf": plrf_factory}
