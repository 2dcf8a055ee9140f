"""FLOPs of a training micro-batch and the parameter counts N (total and non-embedding).

Sources, in order of precedence (the one used is recorded as ``source``):

1. ``user``: a value the user gives per micro-batch;
2. ``module``: the module's ``flops_per_batch`` attribute (a number, or a callable taking the batch),
   the attribute Lightning's ``ThroughputMonitor`` reads;
3. ``measured``: one forward+backward counted by ``torch.utils.flop_counter.FlopCounterMode`` on a
   meta-device copy of the module (no memory, no data, about 25 ms), once per input shape. Like
   ``lightning.fabric.utilities.throughput.measure_flops`` it counts matmuls, convolutions and
   attention (2·m·n·k per matmul), not biases, norms, activations or the optimizer (docs/reference.md §1);
   ``measured live``: when the copy cannot run (a ``training_step`` that calls ``.item()``, for
   instance), the adapter counts the real first micro-batch of that shape with the same mode instead;
4. ``6ND``: Kaplan et al. 2020 / Hoffmann et al. 2022, C ≈ 6·N·D with total N and D the tokens of
   the batch when counted, else its samples.

Parameter counts follow Kaplan et al. 2020 §2.1 (non-embedding N excludes token and position
embeddings: every ``nn.Embedding``/``nn.EmbeddingBag`` weight) and Hoffmann et al. 2022 (total N).
"""

from __future__ import annotations

import copy
import logging
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Hashable, Mapping

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

log = logging.getLogger("scaling_callback")

MAX_MEASURED_SHAPES = 16  # beyond this many distinct input shapes, extrapolate per sample/token


@dataclass(frozen=True)
class ParameterCounts:
    """Total N (Chinchilla) and non-embedding N (Kaplan) of a module, shared parameters counted once."""

    total: int
    non_embedding: int


def count_parameters(module: nn.Module) -> ParameterCounts:
    """Count unique parameters; embedding weights are excluded from the non-embedding count."""
    unique = {id(p): p.numel() for p in module.parameters()}
    embedding_ids = {
        id(p)
        for sub in module.modules()
        if isinstance(sub, (nn.Embedding, nn.EmbeddingBag))
        for p in sub.parameters(recurse=False)
    }
    total = sum(unique.values())
    return ParameterCounts(total, total - sum(unique[i] for i in embedding_ids if i in unique))


def batch_size_and_tokens(batch: Any, tokens_per_sample: int | None = None) -> tuple[int, int | None]:
    """Samples in ``batch`` (first dimension of its first tensor) and tokens when known.

    Tokens are ``samples · tokens_per_sample`` when given, else the element count of a token-shaped
    first tensor (integer dtype, two dimensions: batch × sequence), else None.
    """
    first = first_tensor(batch)
    if first is None:
        return 1, None if tokens_per_sample is None else tokens_per_sample
    samples = int(first.shape[0]) if first.ndim else 1
    if tokens_per_sample is not None:
        return samples, samples * int(tokens_per_sample)
    if first.ndim == 2 and not first.is_floating_point() and not first.is_complex() and first.dtype != torch.bool:
        return samples, int(first.numel())
    return samples, None


def first_tensor(batch: Any) -> torch.Tensor | None:
    """The first tensor found in a (nested) tuple, list or mapping batch."""
    if isinstance(batch, torch.Tensor):
        return batch
    items = batch.values() if isinstance(batch, Mapping) else batch if isinstance(batch, (list, tuple)) else ()
    for item in items:
        found = first_tensor(item)
        if found is not None:
            return found
    return None


def shape_key(batch: Any) -> Hashable:
    """Shapes of every tensor in the batch: a micro-batch's samples, tokens and FLOPs depend only on them.

    Dtypes are left out (they do not change between batches of a run), which halves the per-batch cost.
    """
    if isinstance(batch, (list, tuple)):
        return tuple([t.shape if isinstance(t, torch.Tensor) else shape_key(t) for t in batch])
    if isinstance(batch, torch.Tensor):
        return batch.shape
    if isinstance(batch, Mapping):
        return tuple((k, shape_key(v)) for k, v in batch.items())
    return type(batch).__name__


class MicroBatchFlops:
    """Samples, tokens and FLOPs (forward + backward) of a training micro-batch, worked out once per input shape.

    Args:
        module: the model (a LightningModule's ``training_step`` is measured when it has one).
        n_params: total parameter count, for the 6·N·D fallback.
        user_flops: FLOPs per micro-batch given by the user (source ``user``).
        measure: whether to try ``FlopCounterMode`` measurement before the 6·N·D fallback.
        tokens_per_sample: tokens in a sample, when the batch does not show them (see :func:`batch_size_and_tokens`).
    """

    def __init__(self, module: nn.Module, n_params: int, user_flops: float | None = None, measure: bool = True,
                 tokens_per_sample: int | None = None) -> None:
        self.module = module
        self.n_params = n_params
        self.user_flops = user_flops
        self.measure = measure
        self.tokens_per_sample = tokens_per_sample
        self._module_value = _module_flops(module)
        self._per_batch = self._module_value if callable(self._module_value) and user_flops is None else None
        self.source = "user" if user_flops is not None else "module" if self._module_value is not None else None
        self._by_shape: dict[Hashable, tuple[int, int | None, float]] = {}
        self._per_unit: list[float] = []
        self._meta_copy: nn.Module | None = None
        self._meta_works = measure
        self._last: tuple[Any, Hashable] = (None, None)
        # look at a batch before it runs only while the meta copy is untried or failed: a live count may be needed
        self.watch_batch_start = measure and self.source is None

    def wants_live_count(self, batch: Any) -> bool:
        """Called before a micro-batch runs: True when its FLOPs must be counted live (the meta copy failed on it)."""
        if not self.watch_batch_start:
            return False
        key = self._key(batch)
        if key in self._by_shape or len(self._by_shape) >= MAX_MEASURED_SHAPES:
            return False
        if self._meta_works:
            flops = self._measure(batch)
            if flops is not None:
                self._remember(key, batch, flops, "measured")
                self.watch_batch_start = False  # later shapes are measured on the copy after their batch
                return False
        return True

    def facts(self, batch: Any, live_flops: float | None = None) -> tuple[int, int | None, float]:
        """(samples, tokens or None, FLOPs) of this micro-batch; ``live_flops`` when :meth:`wants_live_count` asked."""
        key = self._last[1] if batch is self._last[0] else shape_key(batch)
        known = self._by_shape.get(key)
        if known is not None and self._per_batch is None:
            return known  # the common case: a shape seen before
        if known is None:
            if live_flops is not None and live_flops > 0:
                known = self._remember(key, batch, float(live_flops), "measured live")
            else:
                known = self._new_shape(key, batch)
        if self._per_batch is not None:
            return known[0], known[1], float(self._per_batch(batch))  # the module's own per-batch count
        return known

    def _key(self, batch: Any) -> Hashable:
        last_batch, last_key = self._last
        if batch is last_batch:
            return last_key
        key = shape_key(batch)
        self._last = (batch, key)
        return key

    def _remember(self, key: Hashable, batch: Any, flops: float, source: str | None) -> tuple[int, int | None, float]:
        samples, tokens = batch_size_and_tokens(batch, self.tokens_per_sample)
        if source is not None:
            self.source = source
            self._per_unit.append(flops / max(tokens if tokens is not None else samples, 1))
        self._by_shape[key] = (samples, tokens, flops)
        return self._by_shape[key]

    @property
    def convention(self) -> str:
        """One line saying how FLOPs were counted, for the fit record."""
        return {
            "user": "user-given FLOPs per micro-batch",
            "module": "module.flops_per_batch",
            "measured": "FlopCounterMode forward+backward per input shape on a meta copy (matmul/conv/attention only)",
            "measured live": "FlopCounterMode on the first real micro-batch of each input shape (matmul/conv/attention only)",
            "6ND": "6 * N_total * D (D = tokens when counted, else samples)",
        }.get(self.source or "", "not yet known")

    def _new_shape(self, key: Hashable, batch: Any) -> tuple[int, int | None, float]:
        samples, tokens = batch_size_and_tokens(batch, self.tokens_per_sample)
        units = tokens if tokens is not None else samples
        if self.user_flops is not None:
            return self._remember(key, batch, float(self.user_flops), None)
        if self._module_value is not None:
            value = self._module_value
            return self._remember(key, batch, float(value(batch) if callable(value) else value), None)
        if self.measure and len(self._by_shape) >= MAX_MEASURED_SHAPES and self._per_unit:
            return samples, tokens, sum(self._per_unit) / len(self._per_unit) * units  # many shapes: scale, not cached
        flops = self._measure(batch) if self._meta_works else None
        if flops is not None:
            return self._remember(key, batch, flops, "measured")
        if self.measure and not self._meta_works and self.watch_batch_start is False:
            self.watch_batch_start = True  # the copy just failed on this shape: count its next batch live
            return samples, tokens, 6.0 * self.n_params * units  # this one batch: 6·N·D, not remembered
        self.source = self.source or "6ND"
        return self._remember(key, batch, 6.0 * self.n_params * units, None)

    def _measure(self, batch: Any) -> float | None:
        try:
            if self._meta_copy is None:
                self._meta_copy = meta_copy(self.module)
            return measure_micro_batch_flops(self._meta_copy, to_meta(batch))
        except Exception as error:  # noqa: BLE001 - any failure falls back (live count, 6·N·D), never into training
            log.info("scaling_callback: FLOP measurement on a meta copy failed (%s: %s)", type(error).__name__, error)
            self._meta_works = False
            return None


def _module_flops(module: nn.Module) -> float | Callable[[Any], float] | None:
    value = getattr(module, "flops_per_batch", None)
    return value if value is not None and (callable(value) or isinstance(value, (int, float))) else None


def meta_copy(module: nn.Module) -> nn.Module:
    """A deep copy of ``module`` whose parameters, buffers and tensor attributes live on the meta device.

    Tensors are never copied (no memory, no time), and a LightningModule's Trainer/Fabric references
    are dropped so that ``self.log`` in ``training_step`` is a no-op on the copy.
    """
    memo: dict[int, Any] = {}
    for sub in module.modules():
        for name, value in list(vars(sub).items()):
            if isinstance(value, torch.Tensor) and not isinstance(value, nn.Parameter):
                memo[id(value)] = _meta_like(value)
        for parameter in sub.parameters(recurse=False):
            memo.setdefault(id(parameter), nn.Parameter(_meta_like(parameter), requires_grad=parameter.requires_grad))
        for buffer in sub.buffers(recurse=False):
            memo.setdefault(id(buffer), _meta_like(buffer))
        for attribute in ("_trainer", "_fabric"):
            value = vars(sub).get(attribute)
            if value is not None:
                memo[id(value)] = None
    clone = copy.deepcopy(module, memo)
    for sub in clone.modules():
        if hasattr(sub, "_device"):
            sub._device = torch.device("meta")  # LightningModule.device
    return clone.train()


def _meta_like(tensor: torch.Tensor) -> torch.Tensor:
    return torch.empty_like(tensor, device="meta")


def to_meta(batch: Any) -> Any:
    """The batch with every tensor replaced by an empty meta tensor of the same shape and dtype."""
    if isinstance(batch, torch.Tensor):
        return _meta_like(batch)
    if isinstance(batch, Mapping):
        return type(batch)({k: to_meta(v) for k, v in batch.items()}) if isinstance(batch, dict) else {k: to_meta(v) for k, v in batch.items()}
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):
        return type(batch)(*(to_meta(v) for v in batch))
    if isinstance(batch, (list, tuple)):
        return type(batch)(to_meta(v) for v in batch)
    return batch


def measure_micro_batch_flops(module: nn.Module, batch: Any) -> float:
    """FLOPs of one forward + backward of ``module`` on ``batch`` counted by ``FlopCounterMode``.

    The loss is ``module.training_step(batch, 0)`` when the module has one and it works on the
    copy, otherwise the sum of ``module(first tensor of batch)``.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with FlopCounterMode(display=False) as counter:
            loss = _loss(module, batch)
            if loss.requires_grad:
                loss.backward()
    return float(counter.get_total_flops())


def _loss(module: nn.Module, batch: Any) -> torch.Tensor:
    step = getattr(module, "training_step", None)
    if callable(step):
        try:
            output = step(batch, 0)
            loss = output.get("loss") if isinstance(output, Mapping) else output
            if isinstance(loss, torch.Tensor):
                return loss.sum()
        except Exception as error:  # noqa: BLE001 - e.g. a training_step that needs the Trainer
            log.debug("scaling_callback: training_step on the meta copy failed (%s); measuring forward", error)
    first = first_tensor(batch)
    if first is None:
        raise ValueError("the batch holds no tensor")
    return module(first).sum()
