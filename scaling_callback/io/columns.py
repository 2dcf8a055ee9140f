"""Which logged metric is the loss, the LR, the step...: names given by flag, else detected from common names.

The names below are what the tools people log with write by default: Lightning's ``self.log``
(``train_loss``), ``LearningRateMonitor`` (``lr-AdamW``, ``lr-AdamW/pg1``), ``WandbLogger``
(``trainer/global_step``), W&B's own counter (``_step``), Hugging Face's ``Trainer`` (``loss``,
``learning_rate``), and this project's callback (``scaling/*``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, fields

from scaling_callback.errors import InputError

# role -> candidate names, most specific first (compared case-insensitively)
CANDIDATES: dict[str, tuple[str, ...]] = {
    "run": ("run", "run_name", "run_id", "name", "trial"),
    "step": ("step", "trainer/global_step", "global_step", "train/global_step", "_step", "Step", "iteration", "iter"),
    "loss": (
        "loss",
        "train_loss",
        "train/loss",
        "training_loss",
        "train_loss_step",
        "train/loss_step",
        "loss_step",
        "train_loss_epoch",
        "scaling/loss",
    ),
    "lr": ("lr", "learning_rate", "train/learning_rate", "train/lr", "trainer/lr", "scaling/lr"),
    "lr_sum": ("lr_sum", "scaling/lr_sum"),
    "tokens": (
        "tokens",
        "scaling/tokens",
        "train/tokens",
        "num_tokens",
        "tokens_seen",
        "num_input_tokens_seen",
        "train/num_input_tokens_seen",
    ),
    "flops": ("flops", "scaling/flops", "train/flops", "total_flos", "train/total_flos"),
    "samples": ("samples", "scaling/samples", "train/samples", "num_samples"),
}
# LearningRateMonitor names an optimizer's LR "lr-<Optimizer>" (and "lr-<Optimizer>/pg<i>" per extra param group)
_MONITOR_LR = re.compile(r"^lr-[A-Za-z0-9_]+(/pg0)?$")
ROLES = ("step", "loss", "lr", "lr_sum", "tokens", "flops", "samples")


@dataclass(frozen=True)
class ColumnMap:
    """Metric names chosen by the user (None: detect); ``step_offset`` None: the source's convention."""

    run: str | None = None
    step: str | None = None
    loss: str | None = None
    lr: str | None = None
    lr_sum: str | None = None
    tokens: str | None = None
    flops: str | None = None
    samples: str | None = None
    step_offset: int | None = None

    @classmethod
    def from_args(cls, args: object) -> ColumnMap:
        """From an argparse namespace with ``<role>_col`` attributes (missing ones are None)."""
        values = {f.name: getattr(args, f"{f.name}_col", None) for f in fields(cls) if f.name != "step_offset"}
        return cls(**values, step_offset=getattr(args, "step_offset", None))


def detect(role: str, names: Iterable[str], given: str | None, where: str, required: bool = False) -> str | None:
    """The metric name playing ``role``: the given one (which must exist), else the first common name present."""
    present = list(dict.fromkeys(str(n) for n in names))
    if given is not None and given not in present and given.lower() == role:
        given = None  # "--lr-col lr" on a log that names it otherwise: the LR, however it is named
    if given is not None:
        if given not in present:
            raise InputError(f"{where}: no {role} column {given!r}; it has {_listing(present)}")
        return given
    lowered = {n.lower(): n for n in present}
    for candidate in CANDIDATES[role]:
        if candidate.lower() in lowered:
            return lowered[candidate.lower()]
    if role == "lr":
        monitored = [n for n in present if _MONITOR_LR.match(n)]
        if monitored:
            return monitored[0]
    if role == "loss":
        losses = [n for n in present if "loss" in n.lower() and not n.startswith("scaling/pred")]
        if len(losses) == 1:
            return losses[0]
        if len(losses) > 1:
            raise InputError(f"{where}: several loss columns ({_listing(losses)}); choose one with --loss-col")
    if required:
        raise InputError(
            f"{where}: no {role} column (looked for {', '.join(CANDIDATES[role][:4])}, ...); it has "
            f"{_listing(present)}; name it with --{role.replace('_', '-')}-col"
        )
    return None


def _listing(names: list[str], limit: int = 12) -> str:
    shown = ", ".join(names[:limit])
    return (shown + f", ... ({len(names)} in all)") if len(names) > limit else (shown or "no columns")
