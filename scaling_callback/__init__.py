"""scaling-callback: fit scaling laws while a training sweep runs."""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["ScalingLawCallback", "SweepStore", "__version__"]

_LAZY = {  # imported on first use so that `import scaling_callback` stays light (no torch, no SQLAlchemy)
    "ScalingLawCallback": "scaling_callback.callback.scaling_law_callback",
    "SweepStore": "scaling_callback.store.sweep_store",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'scaling_callback' has no attribute {name!r}")
