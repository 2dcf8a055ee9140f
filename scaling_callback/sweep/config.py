"""The sweep's YAML configuration: parsed into typed sections, every bad key named in one line.

A config has the sections below; every key is optional except ``model.factory`` and
``grid.sizes``. Unknown keys and values of the wrong type raise :class:`InputError` naming the
key path (``grid.tokens[1]``), before anything is written.

.. code-block:: yaml

    name: quickstart
    model: {factory: tiny_lm, args: {vocab_size: 64, seq_len: 32, batch_size: 16}}
    grid: {sizes: [{d_model: 16, n_layers: 1}], tokens: [100000], schedules: [cosine], seeds: [0]}
    # optional LR axis: grid.peak_lrs: [0.003, 0.001]  (default: optimizer.peak_lr)
    # one run per size instead of the grid: grid.design: one_run_per_size, grid.schedules: [wsd] (or constant);
    # each size trains once to the largest of grid.tokens and forecasts of fully decayed runs
    # (grid.forecast_schedule: wsd with optimizer.decay_fraction, or cosine) stand in for the others
    optimizer: {peak_lr: 0.003, warmup_steps: 20, final_lr_fraction: 0.1}
    callback: {fit_every_n_steps: 50, law: mpl}
    evaluation: {tokens: 196608, every_n_steps: 0, target_sd: 0.003}  # held-out finals (tokens 0: none)
    stopping: {policy: law, threshold: 0.05}
    # stopping.synchronous: true   each check waits for its fit: reproducible stops, slower (docs/early-stopping.md)
    frontier: {bootstrap: 200, target_flops: [1.0e13]}
    store: null     # default sqlite:///<out>/sweep.sqlite
    workers: 2
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, get_args, get_origin, get_type_hints

import yaml

from scaling_callback.errors import InputError
from scaling_callback.stopping.law_policy import OBJECTIVES

SCHEDULE_KINDS = ("cosine", "wsd", "constant", "two_stage")
STOPPING_POLICIES = ("law", "median", "asha", "none")
DESIGNS = ("grid", "one_run_per_size")
ONE_RUN_SCHEDULES = ("wsd", "constant")  # schedules whose LR stays at its peak until (near) the end
FORECAST_SCHEDULES = ("wsd", "cosine")  # fitting.decayed_finals.TARGET_KINDS


@dataclass(frozen=True)
class ModelSection:
    factory: str = ""
    args: dict = field(default_factory=dict)


@dataclass(frozen=True)
class GridSection:
    sizes: list = field(default_factory=list)
    tokens: list = field(default_factory=lambda: [100_000])
    schedules: list = field(default_factory=lambda: ["cosine"])
    peak_lrs: list = field(default_factory=list)  # empty: optimizer.peak_lr only
    seeds: list = field(default_factory=lambda: [0])
    design: str = "grid"  # or one_run_per_size: each size once to max(tokens), forecasts for the other budgets
    forecast_schedule: str = "wsd"  # one_run_per_size: the fully decayed run a forecast stands for


@dataclass(frozen=True)
class OptimizerSection:
    peak_lr: float = 3e-3
    warmup_steps: int = 20
    final_lr_fraction: float = 0.1
    decay_fraction: float = 0.2
    switch_fraction: float = 0.5


@dataclass(frozen=True)
class CallbackSection:
    fit_every_n_steps: int = 50
    law: str = "mpl"
    max_fit_fraction: float = 0.02
    fit_niceness: int = 10
    log_every_n_steps: int = 10


@dataclass(frozen=True)
class EvaluationSection:
    """The sweep's held-out evaluation: the same ``tokens`` for every run, at its end and every ``every_n_steps``.

    ``tokens`` 0 evaluates nothing (finals then come from the training loss, with a wider standard
    error). ``every_n_steps`` 0 evaluates at the end only. ``target_sd``: the standard error of an
    evaluated final the stream is meant to reach; the report says when it does not, and how many
    tokens would (from the per-token variance the evaluations measured).
    """

    tokens: int = 0
    every_n_steps: int = 0
    target_sd: float = 0.003


@dataclass(frozen=True)
class StoppingSection:
    policy: str = "law"
    objective: str = "frontier"
    threshold: float = 0.05
    confirmations: int = 2
    n_startup_runs: int = 2
    n_warmup_steps: int = 0
    interval_steps: int = 50
    synchronous: bool = False  # default off: training never waits for a fit (measured cost: docs/benchmarks.md)


@dataclass(frozen=True)
class FrontierSection:
    bootstrap: int = 200
    n_convention: str = "total"
    target_flops: list = field(default_factory=list)
    tie_exponents: bool = False


@dataclass(frozen=True)
class SweepConfig:
    name: str = "sweep"
    model: ModelSection = field(default_factory=ModelSection)
    grid: GridSection = field(default_factory=GridSection)
    optimizer: OptimizerSection = field(default_factory=OptimizerSection)
    callback: CallbackSection = field(default_factory=CallbackSection)
    evaluation: EvaluationSection = field(default_factory=EvaluationSection)
    stopping: StoppingSection = field(default_factory=StoppingSection)
    frontier: FrontierSection = field(default_factory=FrontierSection)
    store: str | None = None
    workers: int = 1
    checkpoint_every_n_steps: int = 50


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing a key given twice in one mapping (PyYAML keeps the last silently)."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                duplicate = key in seen
            except TypeError:  # an unhashable key (a list or mapping): let PyYAML raise its own error
                break
            if duplicate:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} appears twice (line {key_node.start_mark.line + 1})", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def read_config_mapping(path: str | Path) -> dict:
    """The YAML mapping of a sweep config file: a UTF-8 text file under 1 MiB holding one YAML mapping."""
    from scaling_callback.files import read_text

    text = read_text(path, "config file")
    try:
        raw = yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.YAMLError as error:
        first = (str(error).splitlines() or [type(error).__name__])[0]
        raise InputError(f"{path}: not valid YAML ({first})") from None
    except RecursionError:
        raise InputError(f"{path}: YAML nested too deeply to be a sweep config") from None
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise InputError(f"{path}: a sweep config is a YAML mapping of sections, got a {type(raw).__name__}")
    return raw


def load_config(path: str | Path) -> SweepConfig:
    """Read and validate a sweep config file (errors name the file and the key)."""
    raw = read_config_mapping(path)
    try:
        return parse_config(raw, str(path))
    except InputError as error:
        raise InputError(f"{path}: {error}") from None


def parse_config(raw: Any, source: str = "config") -> SweepConfig:
    """Validate a parsed YAML mapping into a :class:`SweepConfig`."""
    config = _build(SweepConfig, raw, "")
    _check_values(config)
    return config


def _build(cls, raw: Any, prefix: str):
    if not isinstance(raw, dict):
        raise InputError(f"config key '{prefix or '<top>'}': expected a mapping, got {type(raw).__name__}")
    hints = get_type_hints(cls)
    known = {f.name for f in fields(cls)}
    for key in raw:
        if key not in known:
            raise InputError(f"config key '{prefix}{key}': unknown key (expected one of {', '.join(sorted(known))})")
    values = {}
    for name, value in raw.items():
        values[name] = _coerce(hints[name], value, f"{prefix}{name}")
    return cls(**values)


def _coerce(hint, value: Any, key: str):
    if hasattr(hint, "__dataclass_fields__"):
        return _build(hint, value if value is not None else {}, key + ".")
    origin = get_origin(hint)
    if origin is not None and type(None) in get_args(hint):  # Optional[...]
        if value is None:
            return None
        hint = next(a for a in get_args(hint) if a is not type(None))
        origin = get_origin(hint)
    if hint is bool:
        if not isinstance(value, bool):
            raise InputError(f"config key '{key}': expected true/false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise InputError(f"config key '{key}': expected an integer, got {value!r}")
        return value
    if hint is float:
        return _number(value, key)
    if hint is str:
        if not isinstance(value, str):
            raise InputError(f"config key '{key}': expected a string, got {value!r}")
        return value
    if hint is dict or origin is dict:
        if not isinstance(value, dict):
            raise InputError(f"config key '{key}': expected a mapping, got {value!r}")
        return dict(value)
    if hint is list or origin is list:
        if not isinstance(value, list):
            raise InputError(f"config key '{key}': expected a list, got {value!r}")
        return list(value)
    raise InputError(f"config key '{key}': unsupported value {value!r}")  # pragma: no cover


def _number(value: Any, key: str) -> float:
    """A finite number (YAML 1.1 reads 3e-3 as a string, so numeric strings are accepted)."""
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            pass
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InputError(f"config key '{key}': expected a number, got {value!r}")
    try:
        number = float(value)
    except OverflowError:
        raise InputError(f"config key '{key}': {value!r} is too large") from None
    if not math.isfinite(number):
        raise InputError(f"config key '{key}': must be finite, got {value!r}")
    return number


def _check_range(
    key: str, value: float, low: float, high: float, low_open: bool = False, high_open: bool = False
) -> None:
    below = value <= low if low_open else value < low
    above = value >= high if high_open else value > high
    if below or above:
        interval = f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
        raise InputError(f"config key '{key}': must be in {interval}, got {value!r}")


def _check_values(config: SweepConfig) -> None:
    name = config.name
    if not name.strip() or name in (".", "..") or any(c in name for c in "/\\\0") or name != name.strip():
        raise InputError(
            f"config key 'name': {name!r} cannot name the sweep's folder (no slashes, not empty, not . or ..)"
        )
    o, c, s, e = config.optimizer, config.callback, config.stopping, config.evaluation
    for key, value, low, high, low_open in (
        ("optimizer.final_lr_fraction", o.final_lr_fraction, 0.0, 1.0, False),
        ("optimizer.decay_fraction", o.decay_fraction, 0.0, 1.0, True),
        ("optimizer.switch_fraction", o.switch_fraction, 0.0, 1.0, True),
        ("callback.max_fit_fraction", c.max_fit_fraction, 0.0, 1.0, True),
        ("stopping.threshold", s.threshold, 0.0, 1.0, False),  # a probability: stop when P(beats best) < it
        ("evaluation.target_sd", e.target_sd, 0.0, math.inf, True),
    ):
        _check_range(key, value, low, high, low_open)
    for key, value, low in (
        ("optimizer.warmup_steps", o.warmup_steps, 0),
        ("callback.log_every_n_steps", c.log_every_n_steps, 1),
        ("evaluation.tokens", e.tokens, 0),
        ("evaluation.every_n_steps", e.every_n_steps, 0),
        ("stopping.confirmations", s.confirmations, 1),
        ("stopping.n_startup_runs", s.n_startup_runs, 0),
        ("stopping.n_warmup_steps", s.n_warmup_steps, 0),
        ("stopping.interval_steps", s.interval_steps, 1),
    ):
        if value < low:
            raise InputError(f"config key '{key}': must be >= {low}, got {value}")
    if not -20 <= c.fit_niceness <= 19:
        raise InputError(f"config key 'callback.fit_niceness': must be a nice value in -20..19, got {c.fit_niceness}")
    if config.store is not None and not config.store.strip():
        raise InputError("config key 'store': empty (leave it out for DIR/sweep.sqlite)")
    if not config.model.factory:
        raise InputError("config key 'model.factory': missing (a built-in name such as tiny_lm, or module:function)")
    if not config.grid.sizes:
        raise InputError("config key 'grid.sizes': needs at least one model size")
    for i, size in enumerate(config.grid.sizes):
        if not isinstance(size, dict):
            raise InputError(f"config key 'grid.sizes[{i}]': expected a mapping of factory arguments, got {size!r}")
    for i, tokens in enumerate(config.grid.tokens):
        if _number(tokens, f"grid.tokens[{i}]") <= 0:
            raise InputError(f"config key 'grid.tokens[{i}]': must be positive, got {tokens!r}")
    for i, kind in enumerate(config.grid.schedules):
        if kind not in SCHEDULE_KINDS:
            raise InputError(
                f"config key 'grid.schedules[{i}]': unknown schedule {kind!r} (one of {', '.join(SCHEDULE_KINDS)})"
            )
    for i, peak_lr in enumerate(config.grid.peak_lrs):
        if _number(peak_lr, f"grid.peak_lrs[{i}]") <= 0:
            raise InputError(f"config key 'grid.peak_lrs[{i}]': must be positive, got {peak_lr!r}")
    for i, seed in enumerate(config.grid.seeds):
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise InputError(f"config key 'grid.seeds[{i}]': expected an integer, got {seed!r}")
    _check_design(config)
    if config.stopping.policy not in STOPPING_POLICIES:
        raise InputError(
            f"config key 'stopping.policy': unknown policy {config.stopping.policy!r} (one of {', '.join(STOPPING_POLICIES)})"
        )
    if config.stopping.synchronous and config.stopping.policy == "none":
        raise InputError("config key 'stopping.synchronous': true needs a stopping policy, got policy none")
    if config.stopping.objective not in OBJECTIVES:
        raise InputError(
            f"config key 'stopping.objective': must be one of {', '.join(OBJECTIVES)}, got {config.stopping.objective!r}"
        )
    if config.callback.law not in ("mpl", "opl", "lldl", "momentum"):
        raise InputError(f"config key 'callback.law': unknown law {config.callback.law!r}")
    for key, value in (
        ("workers", config.workers),
        ("callback.fit_every_n_steps", config.callback.fit_every_n_steps),
        ("checkpoint_every_n_steps", config.checkpoint_every_n_steps),
    ):
        if value < 1:
            raise InputError(f"config key '{key}': must be >= 1, got {value}")
    if config.optimizer.peak_lr <= 0:
        raise InputError(f"config key 'optimizer.peak_lr': must be positive, got {config.optimizer.peak_lr}")
    if config.frontier.n_convention not in ("total", "non-embedding"):
        raise InputError(
            f"config key 'frontier.n_convention': must be total or non-embedding, got {config.frontier.n_convention!r}"
        )
    if config.frontier.bootstrap < 0:
        raise InputError(f"config key 'frontier.bootstrap': must be >= 0, got {config.frontier.bootstrap}")
    for i, flops in enumerate(config.frontier.target_flops):
        if _number(flops, f"frontier.target_flops[{i}]") <= 0:
            raise InputError(f"config key 'frontier.target_flops[{i}]': must be positive, got {flops!r}")


def _check_design(config: SweepConfig) -> None:
    """``grid.design``: the grid, or one run per size (peak-LR schedules, no early stop, two sizes or more)."""
    grid = config.grid
    if grid.design not in DESIGNS:
        raise InputError(f"config key 'grid.design': unknown design {grid.design!r} (one of {', '.join(DESIGNS)})")
    if grid.forecast_schedule not in FORECAST_SCHEDULES:
        raise InputError(
            f"config key 'grid.forecast_schedule': must be one of {', '.join(FORECAST_SCHEDULES)}, "
            f"got {grid.forecast_schedule!r}"
        )
    if grid.design != "one_run_per_size":
        return
    for i, kind in enumerate(grid.schedules):
        if kind not in ONE_RUN_SCHEDULES:
            raise InputError(
                f"config key 'grid.schedules[{i}]': design one_run_per_size trains each size with a schedule that stays "
                f"at its peak LR ({' or '.join(ONE_RUN_SCHEDULES)}), got {kind!r}"
            )
    if len(grid.sizes) < 2:
        raise InputError("config key 'grid.sizes': design one_run_per_size needs at least two model sizes")
    if config.stopping.policy != "none":
        raise InputError(
            f"config key 'stopping.policy': design one_run_per_size needs every size's run whole; set it to none "
            f"(got {config.stopping.policy!r})"
        )
